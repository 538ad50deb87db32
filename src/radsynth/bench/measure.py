"""Timing and peak memory of a case: training steps/s after warm-up, synthesis images/s.

Steps are seeded as the ``Trainer`` seeds them (``step_seed``, global RNG and a per-step
``torch.Generator``) and the LR schedules are applied, so a timed step is the step training runs.
The variants of a case (reference and optimised) are timed step by step in turn, and each rate is
taken from the median step, so a load change on a shared machine hits both alike and the ratio
holds where the absolute numbers do not.

Peak memory, per variant during its build and warm-up: the process's peak resident set (VmHWM,
reset through /proc/self/clear_refs where Linux allows it) on the CPU, ``max_memory_allocated`` on
CUDA; ``peak_increase_mib`` is that peak minus the level just before the variant was built.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from radsynth.bench.cases import Built
from radsynth.training.trainer import step_seed

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class Measurement:
    """Rates per second of wall time (median step / median synthesis batch); memory in MiB."""

    train_steps_per_s: float
    train_images_per_s: float
    synth_images_per_s: float
    peak_memory_mib: float
    peak_increase_mib: float
    memory_kind: str
    step_seconds: tuple[float, ...]
    step_cpu_seconds: tuple[float, ...]  # process CPU time per step: barely moved by other jobs on a shared machine


def _status_kib(field: str) -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def memory_now_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    kib = _status_kib("VmRSS")
    return kib / 1024 if kib is not None else 0.0


def reset_peak_memory(device: torch.device) -> bool:
    """Start a new peak; False when the platform cannot reset it (the peak is then the process's so far)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_memory_mib(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20, "CUDA max allocated"
    kib = _status_kib("VmHWM")
    if kib is not None:
        return kib / 1024, "peak RSS"
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak RSS (whole process)"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def one_step(method, step: int, seed: int = 0, phase: str = "bench") -> dict[str, float]:
    """One training step exactly as ``Trainer._one_step`` runs it (without the loss check)."""
    seeded = step_seed(seed, phase, step)
    torch.manual_seed(seeded)
    generator = torch.Generator().manual_seed(seeded)
    for name, optimizer in method.optimizers().items():
        method.schedules()[name].apply(optimizer, step)
    return method.train_step(step, generator)


def _timed(call: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    start, cpu = time.perf_counter(), time.process_time()
    call()
    _sync(device)
    return time.perf_counter() - start, time.process_time() - cpu


def measure_variants(
    build: Callable[[str], Built], variants: tuple[str, ...], device: torch.device, steps: int, warmup: int, synth_repeats: int
) -> tuple[dict[str, Measurement], Built]:
    """Build each variant (memory measured over build + warm-up), then time them step by step in turn.

    Returns the measurements and the last variant's ``Built`` (for batch sizes and the note).
    """
    built: dict[str, Built] = {}
    memory: dict[str, tuple[float, float, str]] = {}
    for variant in variants:
        before = memory_now_mib(device)
        reset_peak_memory(device)
        built[variant] = build(variant)
        for step in range(max(warmup, 1)):
            one_step(built[variant].method, step)
        with torch.no_grad():
            built[variant].synthesize()
        _sync(device)
        peak, kind = peak_memory_mib(device)
        memory[variant] = (peak, max(peak - before, 0.0), kind)
    times: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, list[float]] = {v: [] for v in variants}
    synth: dict[str, list[float]] = {v: [] for v in variants}
    for step in range(warmup, warmup + steps):
        for variant in variants:
            wall, used = _timed(lambda: one_step(built[variant].method, step), device)
            times[variant].append(wall)
            cpu[variant].append(used)
    with torch.no_grad():
        for _ in range(synth_repeats):
            for variant in variants:
                synth[variant].append(_timed(built[variant].synthesize, device)[0])
    out = {}
    for variant in variants:
        step_time, synth_time, b = statistics.median(times[variant]), statistics.median(synth[variant]), built[variant]
        peak, increase, kind = memory[variant]
        out[variant] = Measurement(
            train_steps_per_s=1.0 / step_time,
            train_images_per_s=b.train_batch / step_time,
            synth_images_per_s=b.synth_batch / synth_time,
            peak_memory_mib=peak,
            peak_increase_mib=increase,
            memory_kind=kind,
            step_seconds=tuple(times[variant]),
            step_cpu_seconds=tuple(cpu[variant]),
        )
    return out, built[variants[-1]]
