"""``radsynth demo``: the pipeline on the embedded phantom, end to end, on a CPU in about two minutes.

1. Write phantom chest CT volumes (NIfTI in HU) and read them back through the same reader real
   data goes through; 2. prepare a patient-split 64 px slice set; 3. train CoSinGAN (a 32 -> 64 px
   pyramid) and its pix2pix baseline on ONE annotated slice, the few-example setting radsynth is
   for; 4. synthesize images for the masks of the held-out test patients (CoSinGAN with randomized
   conditions) and write real-vs-synthetic grids; 5. the same data path for phantom chest X-rays by
   class. Later stages (evaluation, report) add their steps here as they land.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.console import Console

from radsynth.atomic import atomic_output_dir
from radsynth.config import build_config
from radsynth.data import phantom
from radsynth.data.detect import open_source
from radsynth.data.inspect import summarise
from radsynth.data.prepare import PrepareOptions, prepare
from radsynth.data.slices import SliceSet
from radsynth.report.grids import save_grid
from radsynth.synth.cosingan import PRESETS as COSINGAN_PRESETS
from radsynth.synth.cosingan import CoSinGAN, CoSinGANConfig
from radsynth.synth.generate import synthesize_set
from radsynth.synth.pix2pix import PRESETS, Pix2Pix, Pix2PixConfig

DEMO_CT = {"patients": 6, "slices": 12, "size": 64}
DEMO_CXR = {"per_class": 12, "size": 128}
DEMO_STEPS = 300
# CoSinGAN at CPU-demo size: the 32 -> 64 part of the paper's pyramid, narrow nets, few steps
DEMO_COSINGAN = {
    "scales": [32, 48, 64], "generator_downs": [4, 4, 5], "discriminator_convs": [6, 6, 7], "ngf": 16, "ndf": 16,
    "stage1_steps": 150, "stage2_steps": 75, "feature_unet_steps": 60, "sample_every": 75, "checkpoint_every": 75,
}


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


def _training_slice(prepared: Path) -> str:
    """The train-split slice with the most infection (the single annotated example)."""
    train = SliceSet(prepared, "train")
    areas = [int((train[i][1] >= 2).sum()) for i in range(len(train))]
    return train.rows[int(np.argmax(areas))]["id"]


def run_demo(out: Path, seed: int = 0, force: bool = False, console: Console | None = None) -> Path:
    """Run the demo into ``out`` (atomically) and return it."""
    console = console or Console()
    start = time.perf_counter()
    with atomic_output_dir(out, force) as tmp:
        console.print(f"[bold]1. phantom chest CT[/]: {DEMO_CT['patients']} patients x {DEMO_CT['slices']} slices, NIfTI in HU")
        phantom.write_ct_phantom(tmp / "phantom-ct", DEMO_CT["patients"], DEMO_CT["slices"], 256, seed)
        ct = open_source(tmp / "phantom-ct")
        for line in summarise(ct).lines()[1:]:
            console.print("   " + line)
        console.print(f"[bold]2. prepare[/]: lung window (-1350..150 HU), {DEMO_CT['size']} px, patient-level split")
        prepared = tmp / "ct-prepared"
        prepare(ct, prepared, PrepareOptions(size=DEMO_CT["size"], seed=seed))
        _grid_of(prepared, tmp / "ct-prepared-grid.png")
        slice_id = _training_slice(prepared)
        console.print(f"[bold]3a. train CoSinGAN on ONE slice[/] ({slice_id}): 32 -> 64 px pyramid, two stages per scale")
        cosingan_config = build_config(CoSinGANConfig, COSINGAN_PRESETS, None, {**DEMO_COSINGAN, "slice_ids": [slice_id], "seed": seed})
        cosingan = CoSinGAN.fit(prepared, cosingan_config, tmp / "cosingan-run", device="auto", console=console)
        console.print(f"[bold]3b. train the pix2pix baseline on the same slice[/], {DEMO_STEPS} steps")
        config = build_config(Pix2PixConfig, PRESETS, "quick", {"steps": DEMO_STEPS, "slice_ids": [slice_id], "seed": seed})
        pix2pix = Pix2Pix.fit(prepared, config, tmp / "pix2pix-run", device="auto", console=console)
        console.print("[bold]4. synthesize[/] from the masks of the held-out test patients")
        synthesize_set(cosingan, "cosingan", cosingan.output_size, prepared, tmp / "ct-synthetic-cosingan", split="test", seed=seed, diversify="rc")
        synthesize_set(pix2pix, "pix2pix", pix2pix.output_size, prepared, tmp / "ct-synthetic-pix2pix", split="test", seed=seed)
        _real_vs_synthetic(prepared, tmp / "ct-synthetic-cosingan", tmp / "ct-real-vs-cosingan.png")
        _real_vs_synthetic(prepared, tmp / "ct-synthetic-pix2pix", tmp / "ct-real-vs-pix2pix.png")
        console.print(f"[bold]5. phantom chest X-rays[/]: {DEMO_CXR['per_class']} per class")
        phantom.write_cxr_phantom(tmp / "phantom-cxr", DEMO_CXR["per_class"], 256, seed)
        cxr = open_source(tmp / "phantom-cxr")
        prepare(cxr, tmp / "cxr-prepared", PrepareOptions(size=DEMO_CXR["size"], seed=seed))
        _grid_of(tmp / "cxr-prepared", tmp / "cxr-prepared-grid.png")
    console.print(
        f"[bold green]done[/] in {time.perf_counter() - start:.0f} s: {out}/ — look at ct-real-vs-cosingan.png and "
        "ct-real-vs-pix2pix.png (real test slice, its mask, the image synthesized from that mask), cosingan-run/scales.png, "
        "ct-prepared-grid.png, cxr-prepared-grid.png"
    )
    return out
