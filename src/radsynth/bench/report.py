"""Bench output: bench.json (machine, options, every row) and bench.md (machine line + table)."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict
from pathlib import Path

import torch

from radsynth.atomic import atomic_write_text
from radsynth.bench.suite import BenchOptions
from radsynth.provenance import provenance

JSON_FILE = "bench.json"
MARKDOWN_FILE = "bench.md"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    """What the numbers were measured on; the load average shows whether the machine was shared."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "device": str(device),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def machine_line(info: dict) -> str:
    gpu = f", GPU {info['gpu']}" if "gpu" in info else ""
    return (
        f"{info['cpu']} ({info['usable_cores']} of {info['cpu_count']} cores usable{gpu}), torch {info['torch']}, "
        f"{info['torch_threads']} torch threads (OMP_NUM_THREADS {info['OMP_NUM_THREADS']}), device {info['device']}, "
        f"load average {info['load_average_1m']:.2f} at the start"
    )


def _rate(value: float) -> str:
    return f"{value:.3g}"


def markdown(rows: list[dict], info: dict, options: BenchOptions, seconds: float) -> str:
    """The table: one row per case and size; ratios are optimised / reference from the same run."""
    lines = [
        f"Machine: {machine_line(info)}",
        f"Run: {'quick' if options.quick else 'full'}, sizes {', '.join(map(str, options.sizes))} px, "
        f"{options.warmup} warm-up + {options.steps} timed steps per variant (median step), {seconds:.0f} s wall time",
        "",
        "| case | px | batch | train it/s | ref it/s | train x | cpu x | synth img/s | ref img/s | synth x | peak MiB | +MiB | ref +MiB | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        opt, ref = row["optimised"], row.get("reference")
        lines.append(
            "| " + " | ".join([
                row["label"], str(row["size"]), str(row["train_batch"]),
                _rate(opt["train_steps_per_s"]), _rate(ref["train_steps_per_s"]) if ref else "-",
                f"{row['train_speedup']:.2f}" if ref else "-",
                f"{row['train_speedup_cpu_time']:.2f}" if ref else "-",
                _rate(opt["synth_images_per_s"]), _rate(ref["synth_images_per_s"]) if ref else "-",
                f"{row['synth_speedup']:.2f}" if ref else "-",
                f"{opt['peak_memory_mib']:.0f}", f"{opt['peak_increase_mib']:.0f}",
                f"{ref['peak_increase_mib']:.0f}" if ref else "-", row["note"],
            ]) + " |"
        )
    kind = rows[0]["optimised"]["memory_kind"] if rows else ""
    lines += [
        "",
        "ref: the same networks and batch in a plain eager fp32 loop; x: optimised / ref, both timed in turn in this run; "
        "cpu x: the same ratio in process CPU time per step (the one to trust on a shared machine). "
        f"peak MiB: {kind} while the optimised variant was built and warmed up; +MiB: that peak above the level "
        "before the variant was built (ref +MiB: the same for the reference).",
    ]
    return "\n".join(lines) + "\n"


def write_report(out_dir: Path, rows: list[dict], info: dict, options: BenchOptions, seconds: float) -> tuple[Path, Path]:
    """bench.json and bench.md in ``out_dir`` (written atomically)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"machine": info, "options": asdict(options), "wall_seconds": seconds, "rows": rows, "provenance": provenance(None, asdict(options))}
    json_path, md_path = out_dir / JSON_FILE, out_dir / MARKDOWN_FILE
    atomic_write_text(json_path, json.dumps(record, indent=1))
    atomic_write_text(md_path, markdown(rows, info, options, seconds))
    return json_path, md_path
