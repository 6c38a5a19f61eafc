"""The toy check of ``clipxai explain``: on the toy CLIP's "❤️" runs, do a state's top-3 components matter?

    python bench/explain_toy.py [--seeds 4] [--steps 150] [--out DIR]

Ascends "❤️" on the bundled toy CLIP under the heart study's two recipes (analysis/heart_study.py:
``original`` = the zer0int preset, ``default`` = the default preset with a snapshot every 5
steps), shortened to ``--steps`` steps, from ``--seeds`` seeds each; analyses every run, then
explains it twice: with the mean writes taken over the run's own snapshots (the default), and
over a folder of 64 ordinary toy-world images (``--reference``). It prints, per reference, the
fraction of states whose ablation of its 3 components of largest total effect (estimated on
half of the state's snapshots, tested on the other half) drops the similarity more than 3
random components (p < 0.01, 200 draws), the same for its top 3 by direct contribution, and
checks that the report of one run shows the explanation section.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

RECIPES = {"original": dict(preset="zer0int"), "default": dict(snapshot_every=5)}


def reference_folder(folder: Path, n: int = 64, seed: int = 1234) -> Path:
    """``n`` ordinary toy-world images (no planted meaning) as PNG files."""
    from PIL import Image  # noqa: PLC0415

    from clipxai.toy import world  # noqa: PLC0415

    folder.mkdir(parents=True, exist_ok=True)
    batch = world.generate(n, seed, planted_fraction=0.0)
    for i, img in enumerate(batch.images):
        Image.fromarray((np.clip(img, 0, 1).transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(folder / f"{i:03d}.png")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)
    os.environ.setdefault("MPLBACKEND", "Agg")
    import clipxai  # noqa: PLC0415
    from clipxai.analysis.analyze import AnalyzeOptions, analyze_run  # noqa: PLC0415
    from clipxai.report.report import write_report  # noqa: PLC0415

    t0 = time.perf_counter()
    root = args.out or Path(tempfile.mkdtemp(prefix="explain-toy-"))
    ref = reference_folder(root / "reference")
    tally = {"snapshots": [], "world images": []}
    direct = {"snapshots": [], "world images": []}
    worded = True
    runs = []
    for recipe, options in RECIPES.items():
        runs += clipxai.ascend("❤️", model="toy", seeds=args.seeds, steps=args.steps, out=str(root / recipe),
                               name=recipe, quiet=True, **options)
    for run in runs:
        analyze_run(run, AnalyzeOptions(projections=("pca",), gif=False))
        for label, reference in (("snapshots", None), ("world images", str(ref))):
            data = clipxai.explain(run, reference=reference, draws=args.draws)
            for s in data["states"]:
                a, d = s["ablation"], s["ablation_direct"]
                tally[label].append(a["p_value"] < 0.01)
                direct[label].append(d["p_value"] is not None and d["p_value"] < 0.01)
                worded &= all(len(t["words"]) > 0 for t in s["top"])
                dp = "n/a" if d["p_value"] is None else f"{d['p_value']:.3f}"
                print(f"{run.path.name:16s} ref={label:12s} state {s['state']} ({s['snapshots']} snapshots): "
                      f"by total effect {a['components']} drop {a['drop']:+.3f} vs random {a['random_drop']:+.3f}, "
                      f"p = {a['p_value']:.3f}; by contribution {d['components']} drop {d['drop']:+.3f}, p = {dp} "
                      f"({d['draws']} draws)   [{', '.join(s['top'][0]['words'][:3])}]")
    report, _ = write_report([runs[0].path], root / "report.html", opts=AnalyzeOptions(projections=("pca",)))
    shown = "What in CLIP makes each state" in report.read_text(encoding="utf-8")
    print(f"{len(runs)} toy runs ({', '.join(RECIPES)} x {args.seeds} seeds, {args.steps} steps), "
          f"{time.perf_counter() - t0:.0f} s; report shows the section: {shown}; every top component has words: {worded}")
    for label, hits in tally.items():
        print(f"states whose 3 components of largest total effect beat 3 random components (p < 0.01), means "
              f"over {label}: {sum(hits)}/{len(hits)} = {np.mean(hits):.2f}; their top 3 by contribution: "
              f"{sum(direct[label])}/{len(hits)}")
    if args.out is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
