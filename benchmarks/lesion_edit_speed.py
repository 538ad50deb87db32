"""Speed of lesion layouts and edits (issue 22: 1000 edits at 256 px under a minute on 2 cores; a layout under 50 ms).

    .venv/bin/python benchmarks/lesion_edit_speed.py [PREPARED_SET_256] [--n 1000]

Without a set, the procedural phantom at 256 px is prepared into a temporary folder. The lesion model
is learned from the set's best-ranked train slice (``--slice auto``). Times, in memory (decoding the
slices first, so file reading is not counted): one layout, and one add / remove / paste edit
(layout included), as the median and the total over ``--n`` slices cycled; then the whole
``radsynth synth RUN --edit add`` of those slices with reading and writing PNGs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from radsynth.data.representative import auto_slice
from radsynth.data.slices import SliceSet
from radsynth.lesions.layout import sample_layout
from radsynth.lesions.run import EditOptions, edit_one, load_lesion_run, train_lesions


def _phantom(root: Path) -> Path:
    from radsynth.data import phantom
    from radsynth.data.detect import open_source
    from radsynth.data.prepare import PrepareOptions, prepare

    phantom.write_ct_phantom(root / "ct", n_patients=6, n_slices=24, size=256, seed=0)
    prepare(open_source(root / "ct"), root / "set", PrepareOptions(size=256))
    return root / "set"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path, nargs="?")
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or _phantom(Path(tmp))
        run = train_lesions(data, [auto_slice(data)], Path(tmp) / "run")
        _, model, crops = load_lesion_run(run)
        dataset = SliceSet(data, split="train")
        slices = [(im[0].numpy(), lab.numpy()) for im, lab, _ in (dataset[i] for i in range(len(dataset))) if (lab >= 1).any()]
        side = slices[0][0].shape
        print(f"{data}: {len(slices)} train slices with lung at {side[0]} x {side[1]} px; lesion model of slice {model.slices}")
        rng = np.random.default_rng(0)
        for name, work in [("layout", lambda im, lab: sample_layout(lab, model, rng))] + [
            (f"edit {mode}", lambda im, lab, options=EditOptions(mode): edit_one(im, lab, model, crops, rng, options)) for mode in ("add", "remove", "paste")
        ]:
            times = []
            for k in range(args.n):
                image, label = slices[k % len(slices)]
                start = time.perf_counter()
                work(image, label)
                times.append(time.perf_counter() - start)
            print(f"{name:12s} median {1000 * statistics.median(times):6.1f} ms, total {sum(times):6.1f} s for {args.n}")
        n_slices = min(args.n, len(slices))
        copies = -(-args.n // n_slices)
        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "radsynth"), "synth", str(run), "--edit", "add", "--images", str(data), "--out", str(Path(tmp) / "edited"),
                        "--n-per-condition", str(copies)], check=True, capture_output=True)
        print(f"radsynth synth --edit add: {n_slices * copies} edited slices written in {time.perf_counter() - start:.1f} s (with PNG reading and writing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
