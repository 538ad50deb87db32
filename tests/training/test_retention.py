"""Checkpoint retention: a running phase keeps its newest checkpoint(s), a finished phase one slim
final checkpoint of the weights synthesis and later phases read, ``keep_all`` everything; resume,
kills at any moment and synthesis are unaffected (the images are bit-identical)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from radsynth.config import build_config
from radsynth.errors import InputError
from radsynth.synth.cosingan import PRESETS, CoSinGAN, CoSinGANConfig, phase_name
from radsynth.synth.globallocal import GlobalLocal, GlobalLocalConfig
from radsynth.training.checkpoint import Retention, latest_checkpoint, read_checkpoint, save_final
from radsynth.training.schedule import LinearDecay
from radsynth.training.trainer import Trainer, TrainerOptions
from tests.reliability.helpers import TINY_PIX2PIX


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Two shared cores: one torch thread is faster than two fighting threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def names(folder: Path) -> list[str]:
    """Every file in a phase's checkpoint folder (hidden temporaries included), sorted; [] before the first."""
    checkpoints = folder / "checkpoints"
    return sorted(p.name for p in checkpoints.iterdir()) if checkpoints.exists() else []


# --- the engine, on a toy two-module method ---------------------------------------------------


class Toy:
    """A 'generator' ``net`` and a 'critic' with their own Adam states; only ``net`` is needed afterwards."""

    def __init__(self, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
        self.critic = torch.nn.Linear(4, 1)
        self._optimizers = {"net": torch.optim.Adam(self.net.parameters(), lr=0.05), "critic": torch.optim.Adam(self.critic.parameters(), lr=0.05)}

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"net": self.net, "critic": self.critic}

    def kept_modules(self) -> tuple[str, ...]:
        return ("net",)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._optimizers

    def schedules(self) -> dict[str, LinearDecay]:
        return {"net": LinearDecay(0.05, 4, 8), "critic": LinearDecay(0.05, 4, 8)}

    def train_step(self, step: int, generator: torch.Generator) -> dict[str, float]:
        loss = self.critic(self.net(torch.randn(4, 3, generator=generator))).pow(2).mean()
        for optimizer in self._optimizers.values():
            optimizer.zero_grad()
        loss.backward()
        for optimizer in self._optimizers.values():
            optimizer.step()
        return {"loss": loss.item()}

    def samples(self) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        return [np.zeros((4, 4), np.float32)], [None]


def _train(run: Path, retention: Retention = Retention(), steps: int = 8, resume: bool = False, on_step=None, method: Toy | None = None) -> Toy:
    method = method or Toy()
    options = TrainerOptions(steps=steps, checkpoint_every=2, sample_every=1000, log_every=2, retention=retention)
    Trainer(method, run, options, on_step=on_step).fit(resume=resume)
    return method


def test_a_running_phase_keeps_only_its_newest_checkpoint_and_a_finished_one_a_slim_file(tmp_path):
    seen = {}
    method = _train(tmp_path, on_step=lambda done: seen.setdefault(done, names(tmp_path / "train")))
    assert seen[1] == [] and seen[2] == ["latest.json", "step_0000002.json", "step_0000002.safetensors"]
    assert seen[7] == ["latest.json", "step_0000006.json", "step_0000006.safetensors"]
    assert names(tmp_path / "train") == ["final_0000008.json", "final_0000008.safetensors", "latest.json"]
    final = read_checkpoint(latest_checkpoint(tmp_path / "train"))
    assert final.step == 8 and final.meta["kept"] == ["net"] and final.meta["optimizers"] == {}
    assert sorted(final.tensors) == sorted(f"module.net.{k}" for k in method.net.state_dict())  # no critic, no optimizer state
    assert all(torch.equal(final.tensors[f"module.net.{k}"], v) for k, v in method.net.state_dict().items())


def test_keep_last_and_keep_all(tmp_path):
    seen = {}
    _train(tmp_path / "k2", Retention(keep_last=2), on_step=lambda done: seen.setdefault(done, names(tmp_path / "k2" / "train")))
    assert [n for n in seen[7] if n.endswith(".safetensors")] == ["step_0000004.safetensors", "step_0000006.safetensors"]
    assert names(tmp_path / "k2" / "train") == ["final_0000008.json", "final_0000008.safetensors", "latest.json"]
    _train(tmp_path / "all", Retention(keep_all=True))
    assert names(tmp_path / "all" / "train") == ["latest.json", *(f"step_{s:07d}.{e}" for s in (2, 4, 6, 8) for e in ("json", "safetensors"))]
    assert "kept" not in read_checkpoint(latest_checkpoint(tmp_path / "all" / "train")).meta
    with pytest.raises(InputError, match="keep-last"):
        Retention(keep_last=0)


def test_interrupted_then_resumed_equals_uninterrupted_and_slim_resume_restores_the_kept_modules(tmp_path):
    straight = _train(tmp_path / "straight")

    def stop(done: int) -> None:
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "cut", on_step=stop)
    assert names(tmp_path / "cut" / "train") == ["latest.json", "step_0000005.json", "step_0000005.safetensors"]  # Ctrl-C checkpoint only
    _train(tmp_path / "cut", resume=True)
    a, b = (read_checkpoint(latest_checkpoint(tmp_path / r / "train")) for r in ("straight", "cut"))
    assert a.tensors.keys() == b.tensors.keys() and all(torch.equal(a.tensors[k], b.tensors[k]) for k in a.tensors)

    # a finished phase resumes from its slim file: the kept module is restored, the rest stays as built, nothing is rewritten
    before = {p.name: p.read_bytes() for p in (tmp_path / "straight" / "train" / "checkpoints").iterdir()}
    fresh = Toy(seed=1)
    critic = {k: v.clone() for k, v in fresh.critic.state_dict().items()}
    _train(tmp_path / "straight", resume=True, method=fresh)
    assert all(torch.equal(v, straight.net.state_dict()[k]) for k, v in fresh.net.state_dict().items())
    assert all(torch.equal(v, critic[k]) for k, v in fresh.critic.state_dict().items())
    assert fresh.optimizers()["net"].state_dict()["state"] == {}
    assert {p.name: p.read_bytes() for p in (tmp_path / "straight" / "train" / "checkpoints").iterdir()} == before
    with pytest.raises(InputError, match="cannot continue to 12 steps"):  # a slim file has no optimizer state to go on with
        _train(tmp_path / "straight", resume=True, steps=12)


def test_kills_between_slim_write_and_clean_up_are_finished_on_resume(tmp_path):
    reference = tmp_path / "reference"
    _train(reference)
    slim = (reference / "train" / "checkpoints" / "final_0000008.safetensors").read_bytes()

    # killed after the slim file was written and made latest, before the full ones were deleted
    left = tmp_path / "left"
    method = _train(left, Retention(keep_all=True))
    save_final(left / "train", 8, {"net": method.net}, {"phase": "train"})
    (left / "train" / "checkpoints" / ".step_0000010.safetensors.tmp-x").write_bytes(b"partial")  # a killed write's temporary
    assert len(names(left / "train")) == 12
    _train(left, resume=True)
    assert names(left / "train") == ["final_0000008.json", "final_0000008.safetensors", "latest.json"]

    # killed after the slim tensor file was written but before latest.json named it: latest is still the full checkpoint
    early = tmp_path / "early"
    _train(early, Retention(keep_all=True))
    (early / "train" / "checkpoints" / "final_0000008.safetensors").write_bytes(b"\x00" * 40)
    _train(early, resume=True)
    assert names(early / "train") == ["final_0000008.json", "final_0000008.safetensors", "latest.json"]
    assert (early / "train" / "checkpoints" / "final_0000008.safetensors").read_bytes() == slim  # the same file as an unbroken run


# --- CoSinGAN: the acceptance case, on a tiny pyramid -----------------------------------------------

PYRAMID = {"scales": [32, 48, 64], "generator_downs": [4, 4, 5], "discriminator_convs": [6, 6, 7]}
TINY = {**PYRAMID, "ngf": 8, "ndf": 8, "stage1_steps": 6, "stage2_steps": 4, "feature_unet_steps": 4,
        "checkpoint_every": 2, "sample_every": 6, "log_every": 2, "slice_ids": ["000002"]}


def _phases(config: CoSinGANConfig) -> list[str]:
    return [phase_name(config, i, s) for i in range(len(config.scales)) for s in (1, 2)]


@pytest.fixture(scope="module")
def cosingan_runs(phantom_prepared64, tmp_path_factory) -> tuple[CoSinGANConfig, Path, Path]:
    """The same tiny pyramid trained twice: with the default retention and with every checkpoint kept."""
    config = build_config(CoSinGANConfig, PRESETS, None, TINY)
    root = tmp_path_factory.mktemp("retention")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        CoSinGAN.fit(phantom_prepared64, config, root / "slim", device="cpu")
        CoSinGAN.fit(phantom_prepared64, config, root / "kept", device="cpu", retention=Retention(keep_all=True))
    finally:
        torch.set_num_threads(before)
    return config, root / "slim", root / "kept"


def test_finished_cosingan_keeps_one_slim_generator_file_per_phase(cosingan_runs):
    config, slim, kept = cosingan_runs
    for phase in _phases(config):
        steps = config.stage1_steps if phase.endswith("stage1") else config.stage2_steps
        assert names(slim / phase) == [f"final_{steps:07d}.json", f"final_{steps:07d}.safetensors", "latest.json"], phase
        final = read_checkpoint(latest_checkpoint(slim / phase))
        assert final.step == steps and final.meta["kept"] == ["generator"] and final.meta["optimizers"] == {}
        assert final.tensors and all(k.startswith("module.generator.") for k in final.tensors)  # no discriminator, no optimizer state
        full = read_checkpoint(latest_checkpoint(kept / phase))
        assert any(k.startswith("module.discriminator.") for k in full.tensors) and any(k.startswith("optim.") for k in full.tensors)
        assert all(torch.equal(v, full.tensors[k]) for k, v in final.tensors.items())
        assert names(kept / phase) == ["latest.json", *(f"step_{s:07d}.{e}" for s in range(2, steps + 1, 2) for e in ("json", "safetensors"))]
    assert json.loads((slim / "run.json").read_text())["config"] == json.loads((kept / "run.json").read_text())["config"]


def test_synthesis_from_a_slim_run_equals_synthesis_from_a_run_that_kept_everything(cosingan_runs, phantom_prepared64, cli, tmp_path):
    _, slim, kept = cosingan_runs
    a, b = CoSinGAN.load(slim, "cpu"), CoSinGAN.load(kept, "cpu")
    labels = torch.stack(_labels(phantom_prepared64))
    for diversify in ("none", "dropout", "rc"):
        assert torch.equal(a.generate(labels, seed=3, diversify=diversify), b.generate(labels, seed=3, diversify=diversify)), diversify
    for run in (slim, kept):
        result = cli("synth", run, "--conditions", phantom_prepared64, "--out", tmp_path / run.name, "--limit", "4",
                     "--n-per-condition", "2", "--seed", "7", "--diversify", "dropout", "--device", "cpu")
        assert result.code == 0, result.err
    images = sorted(p.relative_to(tmp_path / "slim") for p in (tmp_path / "slim" / "images").iterdir())
    assert len(images) == 8
    assert [p for p in images if (tmp_path / "slim" / p).read_bytes() != (tmp_path / "kept" / p).read_bytes()] == []


def _labels(prepared: Path) -> list[torch.Tensor]:
    from radsynth.data.slices import SliceSet

    data = SliceSet(prepared, split="test")
    return [data[i][1] for i in range(4)]


def test_cosingan_interrupted_mid_phase_then_resumed_equals_uninterrupted(cosingan_runs, phantom_prepared64, tmp_path):
    config, slim, _ = cosingan_runs
    calls = {"n": 0}
    seen = {}

    def interrupt(step: int) -> None:  # stop inside the second scale's first stage, after its step 3
        calls["n"] += 1
        if calls["n"] == 6 + 4 + 3:
            seen["finished"] = names(tmp_path / "broken" / phase_name(config, 0, 2))
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        CoSinGAN.fit(phantom_prepared64, config, tmp_path / "broken", device="cpu", on_step=interrupt)
    running = tmp_path / "broken" / phase_name(config, 1, 1)
    assert names(running) == ["latest.json", "step_0000003.json", "step_0000003.safetensors"]
    assert seen["finished"] == ["final_0000004.json", "final_0000004.safetensors", "latest.json"]
    CoSinGAN.fit(phantom_prepared64, config, tmp_path / "broken", resume=True, device="cpu")
    for phase in _phases(config):
        a = (slim / phase / "checkpoints").glob("final_*.safetensors")
        b = (tmp_path / "broken" / phase / "checkpoints").glob("final_*.safetensors")
        assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b], phase


def test_cosingan_resume_cleans_a_full_checkpoint_left_next_to_a_slim_one(cosingan_runs, phantom_prepared64, tmp_path):
    """What a kill between writing a phase's slim final checkpoint and deleting its full ones leaves."""
    config, slim, kept = cosingan_runs
    run = tmp_path / "run"
    shutil.copytree(slim, run)
    phase = phase_name(config, 1, 2)
    for name in ("step_0000002", "step_0000004"):
        for suffix in (".json", ".safetensors"):
            shutil.copy(kept / phase / "checkpoints" / f"{name}{suffix}", run / phase / "checkpoints")
    final = {p: (run / p / "checkpoints" / ("final_0000006.safetensors" if p.endswith("1") else "final_0000004.safetensors")).read_bytes()
             for p in _phases(config)}
    model = CoSinGAN.fit(phantom_prepared64, config, run, resume=True, device="cpu")
    assert names(run / phase) == ["final_0000004.json", "final_0000004.safetensors", "latest.json"]
    for p, blob in final.items():
        assert next((run / p / "checkpoints").glob("final_*.safetensors")).read_bytes() == blob
    labels = torch.stack(_labels(phantom_prepared64))
    assert torch.equal(model.generate(labels, seed=1), CoSinGAN.load(slim, "cpu").generate(labels, seed=1))


# --- global-local cGAN: step 3 continues step 2's discriminator --------------------------------------

GL_TINY = {"size": 32, "ngf": 8, "ndf": 8, "batch_size": 2, "global_downsampling": 2, "global_blocks": 1, "local_blocks": 1,
           "patch_size": 24, "log_every": 2, "sample_every": 1000, "checkpoint_every": 2, "steps": 4}


def test_globallocal_step3_from_the_slim_finals_of_steps_1_and_2_equals_an_unbroken_run(phantom_prepared, tmp_path):
    config = GlobalLocalConfig(**GL_TINY)
    straight = GlobalLocal.fit(phantom_prepared, config, tmp_path / "straight", device="cpu")
    kept = {phase: read_checkpoint(latest_checkpoint(tmp_path / "straight" / phase)).meta["kept"] for phase in config.phases}
    assert kept == {"step1_global": ["global"], "step2_local": ["discriminator", "local"], "step3_joint": ["generator"]}

    calls = {"n": 0}

    def interrupt(step: int) -> None:
        calls["n"] += 1
        if calls["n"] == 4 + 4 + 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        GlobalLocal.fit(phantom_prepared, config, tmp_path / "broken", device="cpu", on_step=interrupt)
    shutil.rmtree(tmp_path / "broken" / "step3_joint")  # as if killed before step 3's first checkpoint
    resumed = GlobalLocal.fit(phantom_prepared, config, tmp_path / "broken", resume=True, device="cpu")
    a, b = straight.networks.generator.state_dict(), resumed.networks.generator.state_dict()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


# --- the CLI flag, other methods, the segmenter -----------------------------------------------------


def test_keep_checkpoints_is_a_storage_flag_not_a_config_value(cli, phantom_prepared, tmp_path):
    args = ("train", "pix2pix", "--data", phantom_prepared, "--steps", "10", *TINY_PIX2PIX)
    assert cli(*args, "--out", tmp_path / "slim").code == 0
    assert cli(*args, "--out", tmp_path / "kept", "--keep-checkpoints").code == 0
    assert names(tmp_path / "slim" / "train") == ["final_0000010.json", "final_0000010.safetensors", "latest.json"]
    assert names(tmp_path / "kept" / "train") == ["latest.json", "step_0000005.json", "step_0000005.safetensors",
                                                  "step_0000010.json", "step_0000010.safetensors"]
    assert read_checkpoint(latest_checkpoint(tmp_path / "slim" / "train")).meta["kept"] == ["generator"]
    records = [json.loads((tmp_path / r / "run.json").read_text()) for r in ("slim", "kept")]
    assert records[0]["config"] == records[1]["config"]
    # --resume accepts the run either way; without the flag a finished full run is reduced to its slim file
    assert cli(*args, "--out", tmp_path / "slim", "--resume", "--keep-checkpoints").code == 0
    assert cli(*args, "--out", tmp_path / "kept", "--resume").code == 0
    assert names(tmp_path / "kept" / "train") == names(tmp_path / "slim" / "train")
    assert (tmp_path / "kept" / "train" / "checkpoints" / "final_0000010.safetensors").read_bytes() == \
        (tmp_path / "slim" / "train" / "checkpoints" / "final_0000010.safetensors").read_bytes()
    refused = cli(*args, "--out", tmp_path / "x", "--keep-checkpoints", "--keep-last", "2")
    assert refused.code == 2 and "--keep-last" in refused.err


def test_cyclegan_keeps_both_generators_and_translates_from_them(tmp_path):
    from radsynth.data import phantom
    from radsynth.data.detect import open_source
    from radsynth.data.prepare import PrepareOptions, prepare
    from radsynth.synth.cyclegan import CycleGAN, CycleGANConfig

    phantom.write_cxr_phantom(tmp_path / "raw", n_per_class=6, size=32, seed=0, classes=("Normal", "COVID-19"))
    prepare(open_source(tmp_path / "raw"), tmp_path / "set", PrepareOptions(size=32))
    config = CycleGANConfig(size=32, ngf=8, ndf=8, n_blocks=1, steps=4, augment=False, checkpoint_every=2, sample_every=1000)
    trained = CycleGAN.fit(tmp_path / "set", config, tmp_path / "run", device="cpu")
    final = read_checkpoint(latest_checkpoint(tmp_path / "run" / "train"))
    assert final.meta["kept"] == ["G_A", "G_B"] and {k.split(".")[1] for k in final.tensors} == {"G_A", "G_B"}
    images = torch.zeros(2, 1, 32, 32)
    loaded = CycleGAN.load(tmp_path / "run", "cpu")
    assert torch.equal(loaded.translate(images, 0), trained.translate(images, 0))
    assert torch.equal(loaded.reconstruct(images), trained.reconstruct(images))


def test_a_finished_segmenter_run_keeps_only_the_net(cli, phantom_prepared, tmp_path):
    out = tmp_path / "seg"
    result = cli("evaluate", "segment", "--train", "sin:auto", "--test", phantom_prepared, "--model", "enet", "--out", out, "--epochs", "1",
                 "--size", "32", "--set", "batch_size=4", "--set", "unet_features=[4,8,8,16,16,4]", "--device", "cpu")
    assert result.code == 0, result.err
    final = read_checkpoint(latest_checkpoint(out / "train"))
    assert names(out / "train")[-1] == "latest.json" and len(names(out / "train")) == 3
    assert final.meta["kept"] == ["segmenter"] and all(k.startswith("module.segmenter.") for k in final.tensors)
