"""The four classifiers (shapes, parameter counts of the ImageNet originals, Grad-CAM on each) and
Liang's transfer recipe (body frozen, then the last block tuned at 1e-5)."""

from __future__ import annotations

import pytest
import torch

from radsynth.evaluate.classify_config import ClassifyConfig
from radsynth.evaluate.classify_data import ClassPool
from radsynth.evaluate.classify_figures import gradcam_maps, occlusion_maps
from radsynth.evaluate.classify_train import ClassifierMethod, new_classifier
from radsynth.nets.classifiers import CLASSIFIERS, build_classifier

# body parameters of the torchvision ImageNet models (without their 1000-class heads)
BODY_PARAMETERS = {"resnet18": 11_176_512, "resnet50": 23_508_032, "vgg16": 14_714_688, "densenet121": 6_953_856}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_classifier_shapes_and_gradcam(name):
    net = build_classifier(name, 3, 3)
    assert sum(p.numel() for p in net.body.parameters()) == BODY_PARAMETERS[name]
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    config = ClassifyConfig(model=name, size=64)
    net.eval()
    assert net(x.expand(-1, 3, -1, -1)).shape == (2, 3)
    maps = gradcam_maps(net, x, config, torch.tensor([0, 2]))
    assert maps.shape == (2, 64, 64) and float(maps.min()) >= 0 and float(maps.max()) <= 1


def test_liang_transfer_freezes_the_body_then_tunes_the_last_block():
    config = ClassifyConfig(model="resnet18", size=32, epochs=2, frozen_epochs=1, batch_size=4, decay_start=1.0, augment="none", equal_samples=False)
    images = torch.rand(8, 1, 32, 32) * 2 - 1
    targets = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    rows = [{"id": str(i), "patient": str(i), "source": "real", "set": "s", "unit": str(i)} for i in range(8)]
    pool = ClassPool(images, targets, rows, ("a", "b", "c"), reference_size=8)
    method = ClassifierMethod(config, pool, new_classifier(config, 3), torch.device("cpu"), "none")
    assert method.steps_per_epoch == 2
    net = method.net
    first, last, head = net.body.conv1.weight.clone(), net.body.layer4[1].conv2.weight.clone(), net.fc.weight.clone()
    for step in range(2):  # epoch 0: frozen
        method.schedules()["classifier"].apply(method.optimizers()["classifier"], step)
        method.train_step(step, torch.Generator().manual_seed(step))
    assert torch.equal(net.body.conv1.weight, first) and torch.equal(net.body.layer4[1].conv2.weight, last)
    assert not torch.equal(net.fc.weight, head)
    assert not net.body.bn1.training  # frozen batch norms keep their statistics
    for step in range(2, 4):  # epoch 1: last block unfrozen at finetune_lr
        lr = method.schedules()["classifier"].apply(method.optimizers()["classifier"], step)
        method.train_step(step, torch.Generator().manual_seed(step))
    assert lr == pytest.approx(1e-5)
    assert torch.equal(net.body.conv1.weight, first) and not torch.equal(net.body.layer4[1].conv2.weight, last)


class RegionLogit(torch.nn.Module):
    """A binary 'classifier' whose logit is the mean brightness of rows/cols 12..19: that square is the
    whole of its evidence."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # occlusion_maps reads the device from the parameters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1, 12:20, 12:20].mean(dim=(2, 3)) + self.anchor


def test_occlusion_map_covers_exactly_the_evidence():
    # 32 px, 8 px squares (occlusion_size 0.25) every 4 px (overlap 0.5): a pixel scores when some square over it
    # also overlaps rows/cols 12..19, so the map is non-zero on 5..26 and zero beyond; it peaks on the evidence
    config = ClassifyConfig(size=32, occlusion_size=0.25, occlusion_overlap=0.5)
    image = torch.full((1, 1, 32, 32), 0.5)
    image[0, 0, :, :4] = -1.0  # a dark strip: the 0.1 quantile, the fill, is -1
    positive = occlusion_maps(RegionLogit(), image, config, torch.tensor([1]))[0]
    assert positive.shape == (32, 32) and float(positive.max()) == 1.0
    inside = torch.zeros(32, 32, dtype=torch.bool)
    inside[4:28, 4:28] = True
    assert float(positive[~inside].max()) == 0.0
    assert float(positive[12:20, 12:20].min()) > float(positive[4:8, 4:8].max())
    # class 0 is explained by the evidence against the positive logit: darkening only raises that, so no map
    assert float(occlusion_maps(RegionLogit(), image, config, torch.tensor([0]))[0].max()) == 0.0
