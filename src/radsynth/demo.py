"""``radsynth demo``: the pipeline on the embedded phantom, end to end, on a CPU in a few minutes.

1. Write phantom chest CT volumes (NIfTI in HU) and read them back through the same reader real
   data goes through; 2. prepare a patient-split 64 px slice set; 3. train CoSinGAN (a 32 -> 64 px
   pyramid) and its pix2pix baseline on ONE annotated slice, the few-example setting radsynth is
   for; 4. synthesize a labelled set from the masks of the training patients (CoSinGAN with
   randomized conditions, RC) and, for the grids, from the masks of the held-out test patients;
   5. train a segmenter on (a) the single slice with strong augmentation (Sin-TS), (b) the
   synthetic set (RC-STS), (c) every real training slice (OC-TS) as the reference and (d) the single
   slice with new lesions added by the lesion model learned from it (``radsynth.lesions``), test all
   on the held-out patients and print the comparison table; 6. the same data path for phantom chest
   X-rays by class; 7. write ``report/index.html``.

``radsynth demo --data DIR`` runs steps 3-5 and 7 on a real CT set instead (prepared, or any
source ``radsynth data prepare`` reads, which is then prepared at 64 px).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from radsynth.atomic import atomic_output_dir, atomic_write_text
from radsynth.config import build_config
from radsynth.data import phantom
from radsynth.data.detect import open_source
from radsynth.data.inspect import summarise
from radsynth.data.prepare import PrepareOptions, prepare
from radsynth.data.representative import auto_slice
from radsynth.data.slices import SliceSet
from radsynth.errors import InputError
from radsynth.evaluate.config import PRESETS as SEGMENT_PRESETS
from radsynth.evaluate.config import SegmentConfig
from radsynth.evaluate.segment import evaluate_segmentation, read_results
from radsynth.evaluate.tables import dsc_table
from radsynth.experiments.stages import RECORD
from radsynth.lesions.run import edit_set, train_lesions
from radsynth.report.grids import save_grid
from radsynth.report.html import Section, write_report
from radsynth.synth.cosingan import PRESETS as COSINGAN_PRESETS
from radsynth.synth.cosingan import CPU_SHORT_SCHEDULE, CoSinGAN, CoSinGANConfig
from radsynth.synth.generate import synthesize_set
from radsynth.synth.pix2pix import PRESETS, Pix2Pix, Pix2PixConfig

DEMO_CT = {"patients": 10, "slices": 12, "size": 64}  # 10 patients: 2 held out for testing (0.7/0.1/0.2 split)
DEMO_CXR = {"per_class": 12, "size": 128}
DEMO_STEPS = 300
# CoSinGAN at CPU-demo size: the 32 -> 64 part of the paper's pyramid, narrow nets, few steps (with the
# short-schedule learning rates, WPPL weight and SA strength of cosingan.CPU_SHORT_SCHEDULE)
DEMO_COSINGAN = {
    **CPU_SHORT_SCHEDULE,
    "scales": [32, 48, 64], "generator_downs": [4, 4, 5], "discriminator_convs": [6, 6, 7], "ngf": 16, "ndf": 16,
    "stage1_steps": 300, "stage2_steps": 150, "feature_unet_steps": 100, "sample_every": 150, "checkpoint_every": 150,
}
# segmenters of step 5: CoSinGAN 3.3.2's recipe (weighted CE, strong augmentation, equal samples per
# protocol) shortened for a CPU: 64 px, a narrow UNet, 20 epochs of 64 samples
DEMO_SEGMENT = {"size": 64, "epochs": 20, "samples_per_epoch": 64, "batch_size": 8, "unet_features": (16, 16, 32, 64, 128, 16),
                "sample_every": 1000, "checkpoint_every": 1000, "log_every": 20}
DEMO_SYNTH_LIMIT = 160  # at most this many training-patient masks become the synthetic set (b)
DEMO_EDITS = 64  # (d): edits of the one slice, each with new lesions drawn by its lesion model


def _grid_of(prepared: Path, path: Path, count: int = 8) -> Path:
    dataset = SliceSet(prepared)
    step = max(1, len(dataset) // count)
    items = [dataset[i] for i in range(0, len(dataset), step)][:count]
    labels = [label.numpy() if meta["has_label"] == "1" else None for _, label, meta in items]
    return save_grid(path, [image[0].numpy() for image, _, _ in items], labels, columns=4)


def _real_vs_synthetic(conditions: Path, synthetic: Path, path: Path, count: int = 8) -> Path:
    """Rows of (real test slice, its mask, the image synthesized from that mask)."""
    real, fake = SliceSet(conditions), SliceSet(synthetic)
    by_id = {row["id"]: i for i, row in enumerate(real.rows)}
    images: list[np.ndarray] = []
    labels: list[np.ndarray | None] = []
    for i in np.linspace(0, len(fake) - 1, min(count, len(fake))).astype(int):
        image, label, meta = fake[int(i)]
        source = real[by_id[meta["condition_id"]]][0]
        images += [source[0].numpy(), image[0].numpy()]
        labels += [label.numpy(), None]
    return save_grid(path, images, labels, columns=6)


def _is_prepared(path: Path) -> bool:
    return (Path(path) / "dataset.json").exists()


def _protocols(slice_id: str, synthetic: Path) -> list[tuple[str, str, str]]:
    """(folder, SPEC, table row) of the demo's segmenters."""
    return [
        ("seg-a-one-slice", f"sin:{slice_id}", "(a) one real slice + strong augmentation"),
        ("seg-b-synthetic", f"synth:{synthetic}", "(b) CoSinGAN synthetic set (from one slice)"),
        ("seg-c-all-real", "oc", "(c) every real training slice (reference)"),
        ("seg-d-lesion-edits", f"synth:{synthetic.parent / 'ct-lesion-edits'}", "(d) one real slice + new lesions added (lesion edits)"),
    ]


def _segment(prepared: Path, tmp: Path, slice_id: str, seed: int, console: Console) -> str:
    """Train the demo's segmenters, test them on the held-out patients; return the comparison table."""
    config = build_config(SegmentConfig, SEGMENT_PRESETS, "quick", {**DEMO_SEGMENT, "seed": seed})
    results = []
    for folder, spec, name in _protocols(slice_id, tmp / "ct-synthetic-train"):
        console.print(f"   {name}: [dim]{spec.split(':')[0]}[/]")
        results.append(evaluate_segmentation(spec, [prepared], tmp / folder, config, name=name, console=console))
    table = dsc_table(results)
    atomic_write_text(tmp / "comparison.md", "# Segmenters tested on held-out patients\n\n" + table + "\n")
    return table


def build_demo_report(out: Path) -> Path:
    """(Re)write ``out/report/index.html`` from a demo folder."""
    out = Path(out)
    record = json.loads((out / RECORD).read_text(encoding="utf-8"))
    results = [read_results(out / folder) for folder, _, _ in _protocols(record["slice_id"], Path("-")) if (out / folder / "results.json").exists()]
    sections = []
    if results:
        sections.append(Section(
            "Does the synthetic set help? Segmenters tested on held-out patients",
            [f"One annotated slice ({record['slice_id']}) is all CoSinGAN and the single-slice segmenter (a) see. "
             "Each segmenter sees the same number of training samples (CoSinGAN 3.3.1); DSC in % on the real test patients."],
            [("Dice (DSC, %) per class", dsc_table(results), None)],
            links=[(out / folder / "results.md", folder) for folder, _, _ in _protocols(record["slice_id"], Path("-"))],
        ))
    sections.append(Section(
        "Real vs synthetic", ["Rows of (real test slice, its mask, the image synthesized from that mask)."],
        images=[(out / "ct-real-vs-cosingan.png", "CoSinGAN (randomized conditions)"), (out / "ct-real-vs-pix2pix.png", "pix2pix baseline"),
                (out / "ct-synthetic-train" / "preview.png", "the synthetic training set (b)"),
                (out / "ct-lesion-edits" / "preview.png", "the one slice with new lesions (d)")],
    ))
    sections.append(Section(
        "Training data and the synthesizer",
        images=[(out / "ct-prepared-grid.png", "prepared CT slices"), (out / "cosingan-run" / "scales.png", "CoSinGAN, one output per scale"),
                (out / "cxr-prepared-grid.png", "phantom chest X-rays")],
        links=[(out / "cosingan-run" / "run.json", "cosingan-run/run.json")],
    ))
    intro = [f"radsynth demo on {record['data']}, seed {record['seed']}, {record.get('seconds', 0):.0f} s."]
    return write_report(out, "radsynth demo: learning from one annotated CT slice", sections, intro)


def run_demo(out: Path, seed: int = 0, force: bool = False, console: Console | None = None, data: Path | None = None) -> Path:
    """Run the demo into ``out`` (atomically) and return it; ``data``: a real CT set instead of the phantom."""
    console = console or Console()
    start = time.perf_counter()
    if data is not None and not Path(data).exists():
        raise InputError(data, "does not exist")
    with atomic_output_dir(out, force) as tmp:
        if data is None:
            console.print(f"[bold]1. phantom chest CT[/]: {DEMO_CT['patients']} patients x {DEMO_CT['slices']} slices, NIfTI in HU")
            phantom.write_ct_phantom(tmp / "phantom-ct", DEMO_CT["patients"], DEMO_CT["slices"], 256, seed)
            source_path = tmp / "phantom-ct"
        else:
            source_path = Path(data)
            console.print(f"[bold]1. real CT set[/] {source_path}")
        if data is not None and _is_prepared(source_path):
            prepared = source_path.resolve()
            size = json.loads((prepared / "dataset.json").read_text(encoding="utf-8")).get("size")
            if size != DEMO_CT["size"]:
                raise InputError(data, f"is prepared at {size} px; the demo's synthesizers make {DEMO_CT['size']} px images: give the "
                                 f"source folder instead (the demo prepares it) or prepare it with --size {DEMO_CT['size']}")
        else:
            ct = open_source(source_path)
            for line in summarise(ct).lines()[1:]:
                console.print("   " + line)
            console.print(f"[bold]2. prepare[/]: {DEMO_CT['size']} px, patient-level split")
            prepared = tmp / "ct-prepared"
            prepare(ct, prepared, PrepareOptions(size=DEMO_CT["size"], seed=seed))
        _grid_of(prepared, tmp / "ct-prepared-grid.png")
        slice_id = auto_slice(prepared)  # the single annotated example
        console.print(f"[bold]3a. train CoSinGAN on ONE slice[/] ({slice_id}): 32 -> 64 px pyramid, two stages per scale")
        cosingan_config = build_config(CoSinGANConfig, COSINGAN_PRESETS, None, {**DEMO_COSINGAN, "slice_ids": [slice_id], "seed": seed})
        cosingan = CoSinGAN.fit(prepared, cosingan_config, tmp / "cosingan-run", device="auto", console=console)
        console.print(f"[bold]3b. train the pix2pix baseline on the same slice[/], {DEMO_STEPS} steps")
        config = build_config(Pix2PixConfig, PRESETS, "quick", {"size": DEMO_CT["size"], "steps": DEMO_STEPS, "slice_ids": [slice_id], "seed": seed})
        pix2pix = Pix2Pix.fit(prepared, config, tmp / "pix2pix-run", device="auto", console=console)
        console.print("[bold]4. synthesize[/] a labelled training set from the training patients' masks (randomized conditions), "
                      "and, for the grids, from the held-out test patients' masks")
        synthesize_set(cosingan, "cosingan", cosingan.output_size, prepared, tmp / "ct-synthetic-train", split="train", seed=seed,
                       diversify="rc", limit=DEMO_SYNTH_LIMIT)
        synthesize_set(cosingan, "cosingan", cosingan.output_size, prepared, tmp / "ct-synthetic-cosingan", split="test", seed=seed, diversify="rc")
        synthesize_set(pix2pix, "pix2pix", pix2pix.output_size, prepared, tmp / "ct-synthetic-pix2pix", split="test", seed=seed)
        console.print(f"[bold]4b. lesion model of the same slice[/]: {DEMO_EDITS} copies of it with new lesions added")
        train_lesions(prepared, [slice_id], tmp / "lesion-run", seed=seed)
        edit_set(tmp / "lesion-run", prepared, tmp / "ct-lesion-edits", "add", split="train", n_per_image=DEMO_EDITS, seed=seed, slice_ids=[slice_id])
        _real_vs_synthetic(prepared, tmp / "ct-synthetic-cosingan", tmp / "ct-real-vs-cosingan.png")
        _real_vs_synthetic(prepared, tmp / "ct-synthetic-pix2pix", tmp / "ct-real-vs-pix2pix.png")
        console.print("[bold]5. segmenters[/] trained on (a) the one slice, (b) the synthetic set, (c) all real training slices, "
                      "(d) the one slice with lesion edits; "
                      "tested on the held-out patients")
        table = _segment(prepared, tmp, slice_id, seed, console)
        console.print(table)
        if data is None:
            console.print(f"[bold]6. phantom chest X-rays[/]: {DEMO_CXR['per_class']} per class")
            phantom.write_cxr_phantom(tmp / "phantom-cxr", DEMO_CXR["per_class"], 256, seed)
            cxr = open_source(tmp / "phantom-cxr")
            prepare(cxr, tmp / "cxr-prepared", PrepareOptions(size=DEMO_CXR["size"], seed=seed))
            _grid_of(tmp / "cxr-prepared", tmp / "cxr-prepared-grid.png")
        record = {"experiment": "demo", "data": str(data) if data is not None else "embedded phantom", "seed": seed,
                  "slice_id": slice_id, "seconds": time.perf_counter() - start}
        atomic_write_text(tmp / RECORD, json.dumps(record, indent=2))
        console.print("[bold]7. report[/]")
        build_demo_report(tmp)
    console.print(
        f"[bold green]done[/] in {time.perf_counter() - start:.0f} s: {out}/ — open {out}/report/index.html; also comparison.md, "
        "ct-real-vs-cosingan.png (real test slice, its mask, the image synthesized from that mask), cosingan-run/scales.png"
    )
    return out
