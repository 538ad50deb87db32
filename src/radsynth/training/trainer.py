"""The training loop every synthesizer shares.

A method supplies its networks, optimizers, LR schedules and one ``train_step``; the ``Trainer``
does the rest: per-step seeding (so a resumed run repeats an uninterrupted one exactly on CPU),
LR schedules, progress with losses (``radsynth.progress``: a bar on a terminal, paced plain lines in a log), a CSV log (and TensorBoard when installed),
periodic sample grids, atomic checkpoints, ``resume``, a checkpoint on Ctrl-C, and a stop with a
clear message on a non-finite loss that leaves the last good checkpoint in place.

Checkpoints kept on disk (``TrainerOptions.retention``, see ``checkpoint.Retention``): while the
phase runs, the newest ``keep_last`` (older ones deleted after ``latest.json`` names the new one);
once it has run all its steps, one slim final checkpoint of the modules the method's optional
``kept_modules()`` names (default: all modules; never optimizer state), written and made latest
before the full ones are deleted. A resume of a finished phase restores just those modules and
finishes the clean-up a kill interrupted. ``Retention(keep_all=True)`` keeps everything.

Under ``torchrun`` (see ``radsynth.distributed``) every rank runs the same steps on its share of
each global batch; gradients are averaged over ranks before each optimizer step, logged losses are
the mean over ranks, a Ctrl-C on any rank stops all of them after the same step, and only rank 0
writes the log, samples and checkpoints (the other ranks wait for it at a barrier).
"""

from __future__ import annotations

import csv
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from rich.console import Console

from radsynth import distributed
from radsynth.errors import InputError, NonFiniteLoss
from radsynth.progress import progress_bar
from radsynth.report.grids import save_grid
from radsynth.training.checkpoint import (
    FINAL,
    Retention,
    is_final,
    latest_checkpoint,
    prune_checkpoints,
    read_checkpoint,
    restore,
    save_checkpoint,
    save_final,
)
from radsynth.training.schedule import LinearDecay


class TrainableMethod(Protocol):
    """What a synthesizer gives the trainer for one training phase.

    Optionally also ``kept_modules() -> tuple[str, ...]``: the names (keys of ``modules()``) whose
    weights synthesis or a later phase reads once this phase has finished; only those stay on disk
    (without ``keep_checkpoints``). Without it every module is kept (optimizer state never is).
    """

    def modules(self) -> dict[str, torch.nn.Module]: ...

    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...

    def schedules(self) -> dict[str, LinearDecay]: ...

    def train_step(self, step: int, generator: torch.Generator) -> dict[str, float]: ...

    def samples(self) -> tuple[list[np.ndarray], list[np.ndarray | None]]: ...


@dataclass(frozen=True)
class TrainerOptions:
    """How often to log, draw samples and checkpoint (all in steps), and which checkpoints stay on disk."""

    steps: int
    seed: int = 0
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 200
    phase: str = "train"
    retention: Retention = Retention()


def step_seed(seed: int, phase: str, step: int) -> int:
    """A 63-bit seed that depends only on (run seed, phase, step)."""
    digest = np.random.SeedSequence([seed, step, *phase.encode()]).generate_state(2, dtype=np.uint32)
    return int(digest[0]) << 31 | int(digest[1]) >> 1


class _Logger:
    """CSV log (always) and TensorBoard (when installed)."""

    def __init__(self, run_dir: Path, phase: str) -> None:
        self.path = run_dir / f"log_{phase}.csv"
        self.columns: list[str] | None = None
        if self.path.exists():
            with open(self.path, newline="") as handle:
                self.columns = next(csv.reader(handle), None)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard" / phase))
        except Exception:  # tensorboard is optional
            self.tb = None

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (they belong to work a resume is about to redo)."""
        if not self.path.exists():
            return
        with open(self.path, newline="") as handle:
            rows = list(csv.reader(handle))
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
        with open(self.path, "w", newline="") as handle:
            csv.writer(handle).writerows(kept)

    def write(self, step: int, values: dict[str, float]) -> None:
        if self.columns is None:
            self.columns = ["step", *values]
            with open(self.path, "w", newline="") as handle:
                csv.writer(handle).writerow(self.columns)
        with open(self.path, "a", newline="") as handle:
            csv.writer(handle).writerow([step, *(f"{values.get(c, float('nan')):.6g}" for c in self.columns[1:])])
        if self.tb is not None:
            for key, value in values.items():
                self.tb.add_scalar(key, value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


class Trainer:
    """Runs ``options.steps`` steps of ``method`` in ``run_dir``, resumable from its checkpoints."""

    def __init__(
        self,
        method: TrainableMethod,
        run_dir: Path,
        options: TrainerOptions,
        console: Console | None = None,
        on_step: Callable[[int], None] | None = None,
        extra_state: Callable[[], dict] | None = None,
    ) -> None:
        self.method = method
        self.run_dir = Path(run_dir)
        self.options = options
        self.console = console or Console(stderr=True)
        self.on_step = on_step  # called after each finished step (tests use it to interrupt)
        self.extra_state = extra_state or dict

    @property
    def _folder(self) -> Path:
        return self.run_dir / self.options.phase

    def _checkpoint(self, step: int) -> None:
        """Rank 0 saves, then (unless keeping all) deletes the checkpoints beyond the newest ``keep_last``;
        every rank waits until that is done."""
        if distributed.is_main():
            extra = {"phase": self.options.phase, **self.extra_state()}
            save_checkpoint(self._folder, step, self.method.modules(), self.method.optimizers(), extra)
            if not self.options.retention.keep_all:
                prune_checkpoints(self._folder, self.options.retention.keep_last)
        distributed.barrier()

    def kept_modules(self) -> dict[str, torch.nn.Module]:
        """The modules a finished phase keeps on disk: the method's ``kept_modules()``, else all."""
        modules = self.method.modules()
        names = self.method.kept_modules() if hasattr(self.method, "kept_modules") else tuple(modules)
        unknown = [n for n in names if n not in modules]
        if unknown:
            raise ValueError(f"kept_modules names {unknown}, which are not among the phase's modules {list(modules)}")
        return {n: modules[n] for n in names}

    def _finish(self, step: int) -> None:
        """The phase has run all its steps: reduce its checkpoints to one slim final checkpoint.

        Written (and made latest) before the full checkpoints are deleted, so a kill at any moment
        leaves a loadable latest checkpoint; an already slim latest only has leftovers deleted.
        Nothing happens with ``keep_all``.
        """
        if self.options.retention.keep_all:
            return
        distributed.barrier()  # every rank has read the checkpoint it resumed from before rank 0 deletes it
        if distributed.is_main():
            latest = latest_checkpoint(self._folder)
            if latest is not None and not latest.stem.startswith(f"{FINAL}_"):
                save_final(self._folder, step, self.kept_modules(), {"phase": self.options.phase, **self.extra_state()})
            prune_checkpoints(self._folder, self.options.retention.keep_last)
        distributed.barrier()

    def resume_step(self) -> int:
        """Restore the newest checkpoint of this phase; returns the first step still to run.

        A finished phase's slim checkpoint restores only the modules it holds (no optimizers).
        """
        path = latest_checkpoint(self._folder)
        if path is None:
            return 0
        checkpoint = read_checkpoint(path)
        if is_final(checkpoint):
            if checkpoint.step < self.options.steps:
                raise InputError(path, f"is the final checkpoint of a phase trained for {checkpoint.step} steps, kept without optimizer "
                                       f"state, so it cannot continue to {self.options.steps} steps (--keep-checkpoints keeps full ones)")
            modules = self.method.modules()
            unknown = [n for n in checkpoint.meta["kept"] if n not in modules]
            if unknown:
                raise InputError(path, f"holds modules {unknown} that this phase does not have")
            restore(checkpoint, {n: modules[n] for n in checkpoint.meta["kept"]}, {})
            return checkpoint.step
        restore(checkpoint, self.method.modules(), self.method.optimizers())
        return checkpoint.step

    def fit(self, resume: bool = False) -> int:
        """Train; returns the number of steps done. Ctrl-C saves a checkpoint and re-raises."""
        start = self.resume_step() if resume else 0
        if start >= self.options.steps:
            self._finish(start)
            return start
        main = distributed.is_main()
        logger = _Logger(self.run_dir, self.options.phase) if main else None
        if logger is not None:
            logger.truncate_after(start)
        samples_dir = self.run_dir / "samples"
        if main:
            samples_dir.mkdir(parents=True, exist_ok=True)
        for module in self.method.modules().values():
            distributed.broadcast_module(module)  # every rank starts from rank 0's weights (as DDP does)
        hooks = [distributed.sync_optimizer(o) for o in self.method.optimizers().values()] if distributed.active() else []
        done, mid_step = start, False
        stop = _DeferredInterrupt()
        try:
            with stop, progress_bar(self.options.phase, self.options.steps, self.console, start=start) as update:
                tick = time.perf_counter()
                for step in range(start, self.options.steps):
                    mid_step = True
                    losses, stopping = self._one_step(step, lambda: stop.requested)
                    done, mid_step = step + 1, False
                    now = time.perf_counter()
                    rate = 1.0 / max(now - tick, 1e-9)
                    tick = now
                    if logger is not None and (done % self.options.log_every == 0 or done == self.options.steps):
                        logger.write(done, {**losses, "it_per_s": rate})
                    update(done, losses)
                    if main and (done % self.options.sample_every == 0 or done == self.options.steps):
                        images, labels = self.method.samples()
                        save_grid(samples_dir / f"{self.options.phase}_step_{done:07d}.png", images, labels, columns=4)
                    if done % self.options.checkpoint_every == 0 or done == self.options.steps:
                        self._checkpoint(done)
                    if self.on_step is not None:
                        self.on_step(done)
                    if stopping or (stop.requested and not distributed.active()):  # ranks stop after the same step
                        raise KeyboardInterrupt
        except KeyboardInterrupt:
            if not mid_step:  # weights are exactly those after step `done`
                self._checkpoint(done)
            raise
        finally:
            for hook in hooks:
                hook.remove()
            if logger is not None:
                logger.close()
        for module in self.method.modules().values():
            distributed.broadcast_module(module)  # every rank ends with the checkpointed (rank 0) buffers
        self._finish(done)
        return done

    def _one_step(self, step: int, stop_requested: Callable[[], bool] = lambda: False) -> tuple[dict[str, float], bool]:
        """One step; returns its losses (mean over ranks) and whether any rank asked to stop by its end."""
        seed = step_seed(self.options.seed, self.options.phase, step)
        rank = distributed.rank()  # dropout etc. differ between ranks; rank 0 (and a one-process run) as before
        torch.manual_seed(seed if rank == 0 else step_seed(self.options.seed, f"{self.options.phase}-rank{rank}", step))
        generator = torch.Generator().manual_seed(seed)  # data sampling and augmentation: the same global batch on every rank
        for name, optimizer in self.method.optimizers().items():
            self.method.schedules()[name].apply(optimizer, step)
        losses = self.method.train_step(step, generator)
        losses, stopping = distributed.mean_over_ranks(losses, stop_requested())
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if bad:
            raise NonFiniteLoss(
                f"step {step + 1}: non-finite loss {bad}; stopped. The last good checkpoint is kept in "
                f"{self.run_dir / self.options.phase / 'checkpoints'}; lower the learning rate or check the data."
            )
        return losses, stopping


class _DeferredInterrupt:
    """While active, SIGINT only sets ``requested``; the loop stops after the step in progress.

    So a Ctrl-C never saves weights that are half-way through a step (discriminator updated,
    generator not). A second Ctrl-C interrupts at once. Only the main thread can own signals;
    elsewhere this does nothing.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def amp_autocast(device: torch.device, amp: bool) -> torch.autocast:
    """bf16 autocast on CUDA when ``amp``; a no-op context on CPU (bf16 needs no loss scaling)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cpu' / 'cuda' / 'cuda:1' as given.

    Under torchrun with several ranks, a CUDA device is ``cuda:LOCAL_RANK`` (see ``radsynth.distributed``).
    """
    if name == "auto":
        return distributed.rank_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError("--device", f"unknown device '{name}'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", "CUDA was asked for but no GPU is available")
    return distributed.rank_device(device)
