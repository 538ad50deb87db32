import json
import pickle

import pytest
import torch

from radsynth.errors import InputError
from radsynth.training.checkpoint import latest_checkpoint, read_checkpoint, restore, save_checkpoint


def _model_and_optimizer(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    model(torch.randn(2, 1, 8, 8)).mean().backward()
    optimizer.step()
    return model, optimizer


def test_round_trip_restores_weights_buffers_and_optimizer(tmp_path):
    model, optimizer = _model_and_optimizer(0)
    save_checkpoint(tmp_path, 7, {"net": model}, {"opt": optimizer}, {"stage": 2})
    path = latest_checkpoint(tmp_path)
    assert path.name == "step_0000007.safetensors"
    fresh_model, fresh_optimizer = _model_and_optimizer(1)
    checkpoint = read_checkpoint(path)
    restore(checkpoint, {"net": fresh_model}, {"opt": fresh_optimizer})
    assert checkpoint.step == 7 and checkpoint.meta["extra"] == {"stage": 2}
    for (k, a), (_, b) in zip(model.state_dict().items(), fresh_model.state_dict().items()):
        assert torch.equal(a, b), k
    state_a, state_b = optimizer.state_dict(), fresh_optimizer.state_dict()
    assert state_a["param_groups"] == state_b["param_groups"]
    for index in state_a["state"]:
        for key, value in state_a["state"][index].items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(state_b["state"][index][key]))


def test_no_checkpoint_yet(tmp_path):
    assert latest_checkpoint(tmp_path) is None


def test_truncated_tensor_file_is_refused(tmp_path):
    model, optimizer = _model_and_optimizer(0)
    path = save_checkpoint(tmp_path, 1, {"net": model}, {"opt": optimizer})
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(InputError, match="does not match the hash"):
        read_checkpoint(path)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch"])
def test_malicious_pickle_checkpoint_never_runs(tmp_path, writer):
    """A pickle posing as a checkpoint (with a matching hash, so only the format can stop it) is refused."""
    marker = tmp_path / "pwned"
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    path = folder / "step_0000001.safetensors"
    if writer == "pickle":
        path.write_bytes(pickle.dumps(_Exploit(marker)))
    else:
        torch.save({"w": _Exploit(marker)}, path)
    import hashlib

    (folder / "step_0000001.json").write_text(json.dumps({"step": 1, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "optimizers": {}}))
    with pytest.raises(InputError, match="not a safetensors file"):
        read_checkpoint(path)
    assert not marker.exists()
    # control: unpickling the same bytes really would have created the marker
    if writer == "pickle":
        pickle.loads(path.read_bytes())
        assert marker.exists()
