from dataclasses import dataclass

import pytest

from radsynth.config import build_config, config_from_dict, parse_set
from radsynth.errors import InputError
from radsynth.synth.pix2pix import PRESETS, Pix2PixConfig
from radsynth.training.schedule import LinearDecay


def test_linear_decay_matches_cosingan_stage1():
    # 4000 epochs, lr 2e-4, decayed by 0.05 % of it per epoch after 2000 (CoSinGAN 3.2.1)
    schedule = LinearDecay(2e-4, 2000, 4000)
    assert schedule.lr(0) == schedule.lr(1999) == 2e-4
    assert schedule.lr(2001) == pytest.approx(2e-4 * (1 - 0.0005))
    assert schedule.lr(3000) == pytest.approx(1e-4)
    assert schedule.lr(4000) == 0.0


def test_presets_and_overrides():
    config = build_config(Pix2PixConfig, PRESETS, "quick", parse_set(["steps=12", "wppl_weights=[0.2, 0.5, 1.0]"]))
    assert (config.size, config.steps, config.wppl_weights) == (64, 12, (0.2, 0.5, 1.0))
    paper = build_config(Pix2PixConfig, PRESETS, "paper", {})
    assert (paper.size, paper.steps, paper.lr, paper.beta1, paper.batch_size) == (512, 4000, 2e-4, 0.5, 4)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"stepz": 3}, "unknown key"),
        ({"steps": "many"}, "expected an integer"),
        ({"lr": True}, "expected a number"),
        ({"steps": 0}, "steps must be >= 1"),
        ({"variant": "fancy"}, "variant must be one of"),
        ({"size": 48, "num_downs": 5}, "not divisible"),
        ({"wppl_weights": [1, 2]}, "expected 3 values"),
    ],
)
def test_bad_config_values_are_named(overrides, message):
    with pytest.raises(InputError, match=message):
        build_config(Pix2PixConfig, PRESETS, None, overrides)


def test_unknown_preset_and_bad_set():
    with pytest.raises(InputError, match="unknown preset"):
        build_config(Pix2PixConfig, PRESETS, "fast", {})
    with pytest.raises(InputError, match="key=value"):
        parse_set(["steps"])


def test_nested_dataclasses():
    @dataclass(frozen=True)
    class Inner:
        a: int = 1

    @dataclass(frozen=True)
    class Outer:
        inner: Inner = Inner()
        name: str = "x"

    assert config_from_dict(Outer, {"inner": {"a": 5}}).inner.a == 5
    with pytest.raises(InputError, match=r"config.inner: unknown key"):
        config_from_dict(Outer, {"inner": {"b": 5}})


def test_check_range_names_the_first_value_out_of_range():
    from radsynth.config import check_range

    values = {"steps": 5, "batch_size": 0, "fraction": 1.5}
    check_range(values, ("steps",), low=1)
    with pytest.raises(ValueError, match=r"batch_size must be >= 1, got 0"):
        check_range(values, ("steps", "batch_size"), low=1)
    with pytest.raises(ValueError, match=r"fraction must be in \[0, 1\], got 1.5"):
        check_range(values, ("fraction",), low=0, high=1)
