"""Several processes (``torchrun``): process group, rank helpers, and data-parallel plumbing.

``torchrun --nproc_per_node N -m radsynth.cli train ...`` starts N copies of the command with
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. ``init`` joins
them into one process group: NCCL when the run is on CUDA (each rank on ``cuda:LOCAL_RANK``), gloo
on the CPU. Without those variables (or with ``WORLD_SIZE=1``) nothing here does anything, so a
plain run is exactly what it was before.

The contract (docs/architecture.md, "Distributed runs"): ``batch_size`` in a config is the
*global* batch. Every rank draws and augments the whole global batch from the same per-step
generator and keeps its own contiguous slice of it (``rank_share``); the ``Trainer`` averages
gradients over ranks before every optimizer step (what DistributedDataParallel does), so N ranks
with B/N each follow a one-process run with batch B up to float rounding, BatchNorm statistics
(per rank, as in plain DDP) and per-rank dropout masks. Only rank 0 writes files.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.distributed as dist
from torch.utils.hooks import RemovableHandle

from radsynth.errors import InputError

T = TypeVar("T")
TIMEOUT = datetime.timedelta(minutes=30)  # a rank waiting longer than this at a collective is stuck


def launched() -> bool:
    """True when started by torchrun with more than one process (before or after ``init``)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """True once the process group of a multi-process run is up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if active() else 0


def is_main() -> bool:
    """True on rank 0 (and in a one-process run): the rank that writes files and shows progress."""
    return rank() == 0


def backend_for(device: str) -> str:
    """'nccl' for a CUDA run ('auto' with a GPU, 'cuda', 'cuda:N'), else 'gloo'."""
    if device == "auto":
        return "nccl" if torch.cuda.is_available() else "gloo"
    return "nccl" if device.startswith("cuda") else "gloo"


def init(device: str = "auto") -> None:
    """Join torchrun's process group (no-op in a one-process run or when already joined)."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return
    if not dist.is_available():
        raise InputError("torchrun", "this PyTorch build has no torch.distributed")
    backend = backend_for(device)
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise InputError("--device", "CUDA was asked for but no GPU is available")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise InputError("torchrun", f"LOCAL_RANK {local} but only {torch.cuda.device_count()} GPU(s); use --nproc_per_node <= the GPU count")
        torch.cuda.set_device(local)
    dist.init_process_group(backend, timeout=TIMEOUT)


def shutdown() -> None:
    """Leave the process group (no-op when none)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: torch.device) -> torch.device:
    """The device this rank uses: ``cuda:LOCAL_RANK`` for a CUDA run of several ranks, else ``device``."""
    if not active() or device.type != "cuda":
        return device
    if device.index is not None:
        raise InputError("--device", f"under torchrun each rank uses cuda:LOCAL_RANK; give --device cuda or auto, not {device}")
    return torch.device("cuda", local_rank())


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def barrier() -> None:
    """Wait until every rank gets here (no-op in a one-process run)."""
    if active():
        dist.barrier(device_ids=[torch.cuda.current_device()] if dist.get_backend() == "nccl" else None)


def rank_share(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """This rank's contiguous slice (dim 0) of each global-batch tensor; all of it in a one-process run.

    Every tensor has the same length B; rank r gets part r of ``torch.tensor_split(t, N)``: B/N
    rows when N divides B (then the mean of the ranks' mean losses is the global mean exactly);
    otherwise the first B mod N ranks get one row more, and the averaged gradient weights those
    rows slightly less (e.g. an epoch's short last batch). A batch smaller than N (batch size 1,
    or a short last batch) gives rank r row r mod B, so no rank is idle and a batch of one is
    exactly the one-process step.
    """
    if not active():
        return tensors
    size, world = tensors[0].shape[0], world_size()
    if size == 0:
        raise InputError("batch_size", "an empty batch cannot be shared by several processes")
    if size < world:
        row = rank() % size
        return tuple(t[row : row + 1] for t in tensors)
    return tuple(torch.tensor_split(t, world)[rank()] for t in tensors)


def rank_slice(count: int) -> range:
    """Indices of ``range(count)`` that this rank handles: round robin (r, r + N, r + 2N, ...)."""
    return range(rank(), count, world_size())


def average_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """Replace each ``.grad`` by its mean over ranks (one all-reduce per dtype and device).

    Parameters without a gradient are skipped; every rank runs the same code, so the set is the same.
    """
    if not active():
        return
    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for p in parameters:
        if p.grad is not None:
            groups.setdefault((p.grad.dtype, p.grad.device), []).append(p.grad)
    world = world_size()
    for grads in groups.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()


def sync_optimizer(optimizer: torch.optim.Optimizer) -> RemovableHandle:
    """Average gradients over ranks before every ``optimizer.step()``; returns the hook handle.

    This is DistributedDataParallel's gradient all-reduce, done at step time instead of during
    backward, so it holds for any train step (GAN steps that freeze D, sub-modules called directly,
    several forwards per backward) without wrapping modules.
    """

    def hook(opt: torch.optim.Optimizer, args, kwargs) -> None:
        average_gradients([p for group in opt.param_groups for p in group["params"]])

    return optimizer.register_step_pre_hook(hook)


def broadcast_module(module: torch.nn.Module) -> None:
    """Copy rank 0's parameters and buffers into every rank's ``module`` (in place)."""
    if not active():
        return
    with torch.no_grad():
        for tensor in (*module.parameters(), *module.buffers()):
            dist.broadcast(tensor.data, src=0)


def mean_over_ranks(values: dict[str, float], flag: bool = False) -> tuple[dict[str, float], bool]:
    """The mean of each value over ranks, and whether ``flag`` is set on any rank (one all-reduce).

    Every rank must pass the same keys in the same order.
    """
    if not active():
        return values, flag
    packed = torch.tensor([*values.values(), float(flag)], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(packed)
    means = (packed[:-1] / world_size()).tolist()
    return dict(zip(values, means, strict=True)), bool(packed[-1].item() > 0)


def _run_on_main(fn: Callable[[], T], share: bool) -> T | None:
    """Run ``fn`` on rank 0 only; tell every rank how it went (and, with ``share``, its result).

    An ``InputError`` (or any exception) on rank 0 is raised on every rank, so no rank waits
    forever for a rank that has stopped.
    """
    box: list = [None]
    result = None
    if is_main():
        try:
            result = fn()
            box[0] = ("ok", result if share else None)
        except InputError as exc:
            box[0] = ("input", (exc.where, exc.problem))
        except Exception as exc:  # noqa: BLE001 - re-raised below on rank 0, reported on the others
            box[0] = ("error", repr(exc))
            dist.broadcast_object_list(box, src=0)
            raise
    dist.broadcast_object_list(box, src=0)
    kind, payload = box[0]
    if kind == "input":
        raise InputError(*payload)
    if kind == "error":
        raise RuntimeError(f"rank 0 failed: {payload}")
    return result if is_main() else payload


def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only (e.g. create the run directory) and hand its result (picklable) to
    every rank; rank 0's ``InputError`` is raised on every rank."""
    if not active():
        return fn()
    return _run_on_main(fn, share=True)


def main_first(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0, then (if it succeeded) on the other ranks: e.g. rank 0 trains and saves
    a helper network, the others then find the saved file and load it."""
    if not active():
        return fn()
    result = _run_on_main(fn, share=False)
    return result if is_main() else fn()


def gather_to_main(items: list[T]) -> list[list[T]] | None:
    """Every rank's ``items`` (picklable), by rank, on rank 0; None on the other ranks."""
    if not active():
        return [items]
    out: list | None = [None] * world_size() if is_main() else None
    dist.gather_object(items, out, dst=0)
    return out
