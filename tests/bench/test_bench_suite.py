"""The bench suite on tiny cases: JSON and Markdown shapes, positive numbers (never timing thresholds)."""

from __future__ import annotations

import json

import pytest

from radsynth.bench.cases import CASES
from radsynth.bench.suite import BenchOptions, jobs

TINY = {"sizes": (32,), "steps": 1, "warmup": 1, "synth_repeats": 1, "synth_batch": 2}


def test_jobs_cover_every_case_and_cosingan_per_scale_and_stage():
    options = BenchOptions.quick_run(sizes=(64, 128))
    rows = jobs(options)
    labels = {(j.label, j.size) for j in rows}
    for case in CASES:
        if case != "cosingan":
            assert {(case, 64), (case, 128)} <= labels
    # the quick pyramid cut at 128 px: scales 32, 48, 64, 96, 128, two stages each
    cosingan = [j for j in rows if j.case == "cosingan"]
    assert [(j.size, j.cosingan_stage[1]) for j in cosingan] == [(s, st) for s in (32, 48, 64, 96, 128) for st in (1, 2)]


def test_bad_options_are_input_errors():
    from radsynth.errors import InputError

    with pytest.raises(InputError, match="unknown"):
        BenchOptions.quick_run(cases=("nope",)).check()
    with pytest.raises(InputError, match="multiples of 32"):
        BenchOptions.quick_run(sizes=(40,)).check()


def test_cli_writes_json_and_table(cli, tmp_path):
    out = tmp_path / "bench"
    result = cli("bench", "--quick", "--sizes", "32", "--steps", "1", "--cases", "cosingan", "--threads", "1", "--device", "cpu", "--out", out)
    assert result.code == 0, result.err
    record = json.loads((out / "bench.json").read_text())
    table = (out / "bench.md").read_text()
    assert record["machine"]["torch_threads"] == 1 and record["machine"]["cpu"]
    assert record["wall_seconds"] > 0
    labels = [row["label"] for row in record["rows"]]
    assert labels == ["cosingan s0 st1", "cosingan s0 st2"]  # the quick pyramid cut at 32 px: one scale, two stages
    for row in record["rows"]:
        for variant in ("reference", "optimised"):
            numbers = row[variant]
            assert numbers["train_steps_per_s"] > 0 and numbers["synth_images_per_s"] > 0 and numbers["peak_memory_mib"] > 0
            assert len(numbers["step_seconds"]) == 1 and numbers["peak_increase_mib"] >= 0
        assert row["train_speedup"] > 0 and row["synth_speedup"] > 0 and row["train_speedup_cpu_time"] > 0
        assert row["train_batch"] >= 1
    # one Markdown line per row, under a machine line and a header, and printed as well
    body = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| case")]
    assert len(body) == 2 and all(line.count("|") == 15 for line in body)
    assert table.startswith("Machine: ") and "cosingan s0 st2" in result.out


@pytest.mark.parametrize("case", ["pix2pix", "enhanced-pix2pix", "spade", "cyclegan", "pix2pix-cxr", "unet-segmenter", "resnet18-classifier"])
def test_other_cases_run(case):
    import torch

    from radsynth.bench.suite import run_job

    options = BenchOptions.quick_run(cases=(case,), reference=False, **TINY)
    (job,) = jobs(options)
    row = run_job(job, options, torch.device("cpu"))
    assert row["optimised"]["train_steps_per_s"] > 0 and row["optimised"]["synth_images_per_s"] > 0
    assert "reference" not in row
