"""The benchmark suite: every case at every size, optimised and plain reference, in one process.

Each case runs the reference (plain eager fp32) and the optimised path back to back on the same
networks and batch, so ``speedup = optimised / reference`` holds on a noisy shared machine where
the absolute numbers do not. CoSinGAN is measured per scale and stage of its preset pyramid (the
lower scales frozen, as in training).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

from radsynth.bench.cases import CASES, build_case, build_cosingan_stage, cosingan_config
from radsynth.bench.measure import measure_variants
from radsynth.errors import InputError

VARIANTS = ("optimised", "reference")  # built in this order: the optimised peak is measured first, alone


@dataclass(frozen=True)
class BenchOptions:
    """What to run. ``quick``: the methods' quick presets with halved widths, 64 px, 2 timed steps."""

    sizes: tuple[int, ...] = (128, 256, 512)  # issue 12
    cases: tuple[str, ...] = CASES
    quick: bool = False
    steps: int = 10  # timed training steps per case and variant
    warmup: int = 2  # untimed steps first (allocator, oneDNN / cuDNN algorithm choice)
    synth_repeats: int = 5
    synth_batch: int = 8
    reference: bool = True

    @classmethod
    def quick_run(cls, **changes) -> BenchOptions:
        values = {"sizes": (64,), "quick": True, "steps": 2, "warmup": 1, "synth_repeats": 2, "synth_batch": 4}
        return cls(**{**values, **changes})

    def check(self) -> None:
        unknown = [c for c in self.cases if c not in CASES]
        if unknown:
            raise InputError("--cases", f"unknown {', '.join(unknown)} (choose from {', '.join(CASES)})")
        if not self.sizes or any(s < 32 or s % 32 for s in self.sizes):
            raise InputError("--sizes", f"sizes must be multiples of 32 px, at least 32; got {self.sizes}")
        if self.steps < 1 or self.warmup < 0 or self.synth_repeats < 1:
            raise InputError("--steps", "need at least one timed step and one synthesis batch")


@dataclass(frozen=True)
class Job:
    """One row of the table: a case at a size (CoSinGAN: one scale and stage of the pyramid cut at that size)."""

    case: str
    size: int
    cosingan_stage: tuple[int, int] | None = None  # (scale index, stage)

    @property
    def label(self) -> str:
        if self.cosingan_stage is None:
            return self.case
        index, stage = self.cosingan_stage
        return f"cosingan s{index} st{stage}"


def jobs(options: BenchOptions) -> list[Job]:
    """The rows: every case at every size; CoSinGAN once per scale and stage up to the largest size."""
    out = []
    for case in options.cases:
        if case == "cosingan":
            config = cosingan_config(options.quick, max(options.sizes), plain=False)
            out += [Job(case, size, (i, stage)) for i, size in enumerate(config.scales) for stage in (1, 2)]
        else:
            out += [Job(case, size) for size in options.sizes]
    return out


def _build(job: Job, options: BenchOptions, device: torch.device, plain: bool):
    if job.cosingan_stage is not None:
        index, stage = job.cosingan_stage
        return build_cosingan_stage(index, stage, max(options.sizes), options.quick, device, plain, options.synth_batch)
    return build_case(job.case, job.size, options.quick, device, plain, options.synth_batch)


def run_job(job: Job, options: BenchOptions, device: torch.device) -> dict:
    """Both variants of one row, timed in turn, as a JSON-ready dict."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    variants = VARIANTS if options.reference else ("optimised",)
    results, built = measure_variants(
        lambda variant: _build(job, options, device, plain=variant == "reference"),
        variants, device, options.steps, options.warmup, options.synth_repeats,
    )
    row: dict = {"case": job.case, "label": job.label, "size": job.size, "train_batch": built.train_batch,
                 "synth_batch": built.synth_batch, "note": built.note}
    row.update({variant: asdict(result) for variant, result in results.items()})
    if options.reference:
        ref, opt = results["reference"], results["optimised"]
        row["train_speedup"] = opt.train_steps_per_s / ref.train_steps_per_s
        row["synth_speedup"] = opt.synth_images_per_s / ref.synth_images_per_s
        row["train_speedup_cpu_time"] = statistics.median(ref.step_cpu_seconds) / statistics.median(opt.step_cpu_seconds)
    return row


def run_suite(options: BenchOptions, device: torch.device, on_row: Callable[[int, dict], None] | None = None) -> tuple[list[dict], float]:
    """All rows and the wall time in seconds."""
    options.check()
    start = time.perf_counter()
    rows = []
    for i, job in enumerate(jobs(options)):
        rows.append(run_job(job, options, device))
        if on_row is not None:
            on_row(i + 1, rows[-1])
    return rows, time.perf_counter() - start
