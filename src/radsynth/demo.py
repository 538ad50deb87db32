"""``radsynth demo``: the pipeline on the embedded phantom, end to end, on a CPU in minutes.

Today it covers the data stage: it writes phantom chest CT volumes (NIfTI, HU) and phantom chest
X-rays (class folders), reads them back through the same readers real data goes through, prepares
patient-split slice sets and writes sample grids. Each later stage (synthesis, evaluation, report)
adds its step here as it lands.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from radsynth.atomic import atomic_output_dir
from radsynth.data import phantom
from radsynth.data.detect import open_source
from radsynth.data.inspect import summarise
from radsynth.data.prepare import PrepareOptions, prepare
from radsynth.data.slices import SliceSet
from radsynth.report.grids import save_grid

DEMO_CT = {"patients": 6, "slices": 12, "size": 128}
DEMO_CXR = {"per_class": 12, "size": 128}


def _grid_of(prepared: Path, path: Path, count: int = 8) -> Path:
    dataset = SliceSet(prepared)
    step = max(1, len(dataset) // count)
    items = [dataset[i] for i in range(0, len(dataset), step)][:count]
    labels = [label.numpy() if meta["has_label"] == "1" else None for _, label, meta in items]
    return save_grid(path, [image[0].numpy() for image, _, _ in items], labels, columns=4)


def run_demo(out: Path, seed: int = 0, force: bool = False, console: Console | None = None) -> Path:
    """Run the demo into ``out`` (atomically) and return it."""
    console = console or Console()
    with atomic_output_dir(out, force) as tmp:
        console.print(f"[bold]1. phantom chest CT[/]: {DEMO_CT['patients']} patients x {DEMO_CT['slices']} slices, NIfTI in HU")
        phantom.write_ct_phantom(tmp / "phantom-ct", DEMO_CT["patients"], DEMO_CT["slices"], 256, seed)
        ct = open_source(tmp / "phantom-ct")
        for line in summarise(ct).lines()[1:]:
            console.print("   " + line)
        console.print(f"[bold]2. prepare[/]: HU window, {DEMO_CT['size']} px, patient-level split")
        prepare(ct, tmp / "ct-prepared", PrepareOptions(size=DEMO_CT["size"], seed=seed))
        _grid_of(tmp / "ct-prepared", tmp / "ct-prepared-grid.png")
        console.print(f"[bold]3. phantom chest X-rays[/]: {DEMO_CXR['per_class']} per class")
        phantom.write_cxr_phantom(tmp / "phantom-cxr", DEMO_CXR["per_class"], 256, seed)
        cxr = open_source(tmp / "phantom-cxr")
        prepare(cxr, tmp / "cxr-prepared", PrepareOptions(size=DEMO_CXR["size"], seed=seed))
        _grid_of(tmp / "cxr-prepared", tmp / "cxr-prepared-grid.png")
    console.print(f"[bold green]done[/]: {out}/ (ct-prepared-grid.png, cxr-prepared-grid.png, prepared sets with manifest.csv)")
    return out
