"""Does ``clipxai evaluate`` tell the heart study's two recipes apart? Per-seed trust scores of the final images.

    python bench/heart_trust.py [--seeds 8] [--original-steps 600] [--default-steps 300] [--out DIR]

Ascends "❤️" on the bundled toy CLIP under the heart study's two recipes (analysis/heart_study.py:
``original`` = the zer0int preset, 600 steps; ``default`` = the default preset, 300 steps with a
snapshot every 5), ``--seeds`` seeds each (batched, seeds 0..n-1), or reuses the runs already in
``--out``; analyses each run and evaluates it with ``clipxai.evaluate`` (judge ``toy-b``, the toy
world's images as reference). Prints per seed the final image's judge cosine and z, transfer,
robustness_min, pathway_max, written score and the call (trusted or suspect), and for the call and
each check how many seeds of each recipe it puts on the side the judge's cosine shows (the original
recipe's images suspect, the default's not). Then the sparse reading of every settled state
(a run whose verdict is ``converging``): its fidelity, its number of words, and whether its first
word is a word of the judge's reading of that state (e.g. "pink" or "mouth" for "a pink mouth").
Exits non-zero unless the call, and robustness (the check that uses no other model), each separate
the recipes in >= 7 of 8 seeds each.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clipxai.analysis.trust.pathway import PATHWAY_MAX  # noqa: E402
from clipxai.analysis.trust.perturb import ROBUST_MIN  # noqa: E402

RECIPES = {"original": dict(preset="zer0int"), "default": dict(snapshot_every=5)}
# Each check's call on the side of the original recipe's images (what the judge's cosine shows: 0.05
# against 0.46 in docs/research/heart.md), and how that side and the other read.
SEPARATIONS = {
    "call": (lambda e: not e["trusted"], ("suspect", "trusted")),
    "transfer": (lambda e: e["transfer_rate"] < 0.5, ("no transfer", "seen by the judge")),
    "robustness": (lambda e: e["robustness_min"] < ROBUST_MIN, ("fragile", "robust")),
    "pathway": (lambda e: e["pathway_max"] > PATHWAY_MAX, ("unusual pathway", "natural pathway")),
}


def recipe_runs(root: Path, recipe: str, seeds: int, steps: int) -> list:
    """The recipe's complete runs in ``root/recipe`` (one per seed), made when they are not all there."""
    import clipxai  # noqa: PLC0415
    from clipxai.runs.find import find_runs  # noqa: PLC0415
    from clipxai.runs.load import open_run  # noqa: PLC0415

    folder = root / recipe
    found = [open_run(p) for p in find_runs(folder)] if folder.is_dir() else []
    found = sorted(found, key=lambda r: r.config.get("seed", 0))
    found = [r for r in found if r.status == "complete" and r.manifest.get("steps_done") == steps]
    if len(found) >= seeds:
        return found[:seeds]
    return clipxai.ascend("❤️", model="toy", seeds=seeds, steps=steps, out=str(folder), name=recipe, quiet=True,
                          **RECIPES[recipe])


def settled_readings(states: list[tuple[str, dict]]) -> None:
    """Print the sparse reading of each settled state and how often its first word is the judge's meaning's."""
    if not states:
        print("no settled states")
        return
    print(f"sparse reading of the {len(states)} settled states (verdict converging):")
    named = good = 0
    for name, st in states:
        sr = st["sparse_reading"]
        reading = next(iter(st["judges"].values()))["reading"] or ""
        first = sr["words"][0] if sr["words"] else ""
        named += first in reading.split()
        good += sr["fidelity"] >= 0.8 and len(sr["words"]) <= 10
        print(f"  {name:18s} state {st['state']}: fidelity {sr['fidelity']:.2f} with {len(sr['words'])} words "
              f"({', '.join(sr['words'][:4])}...), the judge reads {reading!r}")
    print(f"  fidelity >= 0.8 with <= 10 words in {good} of {len(states)}; first word a word of the judge's "
          f"reading in {named} of {len(states)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--original-steps", type=int, default=600)
    ap.add_argument("--default-steps", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("runs/heart-trust"), help="where the runs are made or reused")
    args = ap.parse_args(argv)
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)
    import torch  # noqa: PLC0415

    import clipxai  # noqa: PLC0415
    from clipxai.analysis.analyze import AnalyzeOptions, analyze_run  # noqa: PLC0415
    from clipxai.models import load_clip  # noqa: PLC0415
    from clipxai.runs.summary import read_summary  # noqa: PLC0415

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    steps = {"original": args.original_steps, "default": args.default_steps}
    runs = {recipe: recipe_runs(args.out, recipe, args.seeds, steps[recipe]) for recipe in RECIPES}
    t_ascent = time.perf_counter() - t0
    toy, judge = load_clip("toy", "cpu"), load_clip("toy-b", "cpu")
    entries = {recipe: [] for recipe in RECIPES}
    settled: list[tuple[str, dict]] = []
    print(f"{'recipe':9s} {'seed':>4s} {'judge cos':>9s} {'z':>6s} {'transfer':>8s} {'robust_min':>10s} "
          f"{'pathway_max':>11s} {'written':>7s}  call     verdict")
    for recipe, found in runs.items():
        for run in found:
            if read_summary(run) is None:
                analyze_run(run, AnalyzeOptions(projections=("pca",), gif=False))
            evaluation = clipxai.evaluate(run, judges=[judge], model=toy)
            e = evaluation["final"]
            if (read_summary(run) or {}).get("verdict") == "converging":
                settled += [(run.path.name, st) for st in evaluation["states"]]
            j = e["judges"][judge.name]
            entries[recipe].append(e)
            print(f"{recipe:9s} {run.manifest.get('seed', 0):4d} {j['cosine']:9.3f} {j['z']:6.1f} "
                  f"{e['transfer_rate']:8.2f} {e['robustness_min']:10.2f} {e['pathway_max']:11.1f} "
                  f"{e['written']:7.1f}  {'trusted' if e['trusted'] else 'suspect'}  {e['verdict']}")
    print(f"separation of the final images ({len(entries['original'])} and {len(entries['default'])} seeds; "
          f"ascent {t_ascent:.0f} s, in all {time.perf_counter() - t0:.0f} s, {args.original_steps} and "
          f"{args.default_steps} steps):")
    separated = {}
    for check, (suspect, what) in SEPARATIONS.items():
        original = sum(bool(suspect(e)) for e in entries["original"])
        default = sum(not suspect(e) for e in entries["default"])
        separated[check] = min(original / len(entries["original"]), default / len(entries["default"]))
        print(f"  {check:12s} original {what[0]} in {original} of {len(entries['original'])}, default {what[1]} "
              f"in {default} of {len(entries['default'])}")
    settled_readings(settled)
    return 0 if min(separated["call"], separated["robustness"]) >= 7 / 8 else 1


if __name__ == "__main__":
    sys.exit(main())
