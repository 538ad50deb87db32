"""CoSinGAN quick preset: optimised vs plain path, per scale and stage, and the whole schedule.

Every stage of the quick preset pyramid (32 -> 128 px, ngf = ndf = 32, batch 4) is built twice -
the default (optimised) path and the ``plain=True`` reference path (whole feature UNet per loss,
per-tensor Adam), which give bit-identical weights (tests/bench/test_fast_paths.py) - and their
training steps are timed in turn. The schedule estimate weights each stage's median step time with
the preset's step counts (300 stage-1 and 150 stage-2 steps per scale); it leaves out the feature
UNet (300 steps, the same on both paths) and sample grids. Checkpoints are timed once per scale
and counted apart: the preset now writes one every 150 steps (15 in all) where it wrote one every
50 (45, 6.8 GB); the weights do not depend on it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cosingan_quick_preset.py [--steps 5] [--out cosingan_quick.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from radsynth.bench.cases import Built, feature_losses
from radsynth.bench.data import ct_slices
from radsynth.bench.measure import measure_variants
from radsynth.config import build_config
from radsynth.synth import cosingan
from radsynth.training.checkpoint import save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per stage and path (median taken)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="also write the numbers as JSON here")
    args = parser.parse_args()
    device = torch.device("cpu")
    config = build_config(cosingan.CoSinGANConfig, cosingan.PRESETS, "quick", {"slice_ids": ["bench"]})
    data = ct_slices(config.scales[-1], n=1)
    pairs = cosingan.training_pairs(data, config.scales, device)
    checkpoint_seconds: dict[int, float] = {}
    rows, totals, cpu_totals = [], {"optimised": 0.0, "reference": 0.0}, {"optimised": 0.0, "reference": 0.0}
    print(f"torch threads {torch.get_num_threads()}; quick preset scales {config.scales}")
    for index, size in enumerate(config.scales):
        for stage in (1, 2):
            def build(variant: str) -> Built:
                plain = variant == "reference"
                torch.manual_seed(config.seed)
                pyramid = cosingan.Pyramid(config)  # each path its own networks
                method = cosingan.StageMethod(config, pyramid, index, stage, pairs, feature_losses(device, not plain), device, plain=plain)
                return Built(method, lambda: torch.zeros(()), config.batch_for(size), 1)

            results, last = measure_variants(build, ("optimised", "reference"), device, args.steps, args.warmup, 1)
            if stage == 1:
                with tempfile.TemporaryDirectory() as folder:
                    start = time.perf_counter()
                    save_checkpoint(Path(folder), 1, last.method.modules(), last.method.optimizers())
                    checkpoint_seconds[size] = time.perf_counter() - start
            steps = config.stage1_steps if stage == 1 else config.stage2_steps
            row = {"scale": index, "size": size, "stage": stage, "preset_steps": steps}
            for variant, result in results.items():
                cpu = statistics.median(result.step_cpu_seconds)
                row[f"{variant}_steps_per_s"] = result.train_steps_per_s
                row[f"{variant}_cpu_s_per_step"] = cpu
                totals[variant] += steps / result.train_steps_per_s
                cpu_totals[variant] += steps * cpu
            row["speedup"] = row["optimised_steps_per_s"] / row["reference_steps_per_s"]
            row["speedup_cpu_time"] = row["reference_cpu_s_per_step"] / row["optimised_cpu_s_per_step"]
            rows.append(row)
            print(f"scale {index} ({size} px) stage {stage}: optimised {row['optimised_steps_per_s']:.3f} it/s, "
                  f"plain {row['reference_steps_per_s']:.3f} it/s, x{row['speedup']:.2f} (CPU time x{row['speedup_cpu_time']:.2f})", flush=True)
    for every, label in ((50, "before (checkpoint_every 50)"), (150, "now (checkpoint_every 150)")):
        count = config.stage1_steps // every + config.stage2_steps // every
        print(f"checkpoints {label}: {count * len(config.scales)}, {sum(count * t for t in checkpoint_seconds.values()) / 60:.1f} min")
    speedup = totals["reference"] / totals["optimised"]
    speedup_cpu = cpu_totals["reference"] / cpu_totals["optimised"]
    print(f"whole quick schedule (pyramid only, wall): optimised {totals['optimised'] / 60:.1f} min, plain {totals['reference'] / 60:.1f} min, x{speedup:.2f}")
    print(f"whole quick schedule (pyramid only, CPU time): optimised {cpu_totals['optimised'] / 60:.1f} min, plain {cpu_totals['reference'] / 60:.1f} min, x{speedup_cpu:.2f}")
    if args.out:
        record = {"rows": rows, "checkpoint_seconds": checkpoint_seconds, "schedule_seconds": totals, "schedule_cpu_seconds": cpu_totals, "speedup": speedup,
                  "speedup_cpu_time": speedup_cpu, "threads": torch.get_num_threads()}
        args.out.write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
