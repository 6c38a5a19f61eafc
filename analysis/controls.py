"""Is the oscillation CLIP's own multistability, or noise from the optimiser and augmentations?

    python analysis/controls.py [--model toy] [--seeds 4] [--steps 600] [--out runs/controls]
    python analysis/controls.py --reuse --out runs/controls        # re-analyse existing runs

Each condition changes one thing against the baseline (constant learning rate, fresh random
cutouts/jitter/noise at every step) and is run from the same seeds:

    baseline          constant lr, augmentations on, fresh augmentation noise every step
    lr_decay          cosine decay of the lr to 10%: an oscillation driven by step size dies out
    no_augmentation   no cutouts, jitter or noise: what is left is the optimiser alone on CLIP
    fixed_augmentation  the same augmentation draw at every step: noise without resampling

If switching survives lr decay and the removal (or freezing) of augmentation noise, it is a
property of CLIP's landscape; if it disappears with them, it was driven by that noise. The
result is one table of oscillation numbers per condition (controls.md, controls.json,
controls.csv in --out).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from clipxai.analysis.motion.verdict import OSCILLATING  # noqa: E402

CONDITIONS = {
    "baseline": {},
    "lr_decay": {"lr_schedule": "cosine"},
    "no_augmentation": {"cutouts": 0, "jitter": 0.0, "aug_noise": 0.0},
    "fixed_augmentation": {"augment_fixed": True},
}
COLUMNS = ("condition", "runs", "oscillating", "n_states_median", "switch_rate_median", "switch_rate_iqr",
           "dwell_steps_median", "late_rate_median", "decaying", "verdicts")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompt", default="❤️")
    ap.add_argument("--model", default="toy")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--snapshot-every", type=int, default=5)
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help="which conditions to run (comma-separated)")
    ap.add_argument("--out", type=Path, default=Path("runs/controls"))
    ap.add_argument("--reuse", action="store_true", help="analyse the runs already in OUT/<condition>/")
    return ap.parse_args(argv)


def runs_of(condition: str, args) -> list[Path]:
    folder = args.out / condition
    if args.reuse:
        paths = sorted(p for p in folder.glob("*") if (p / "run.json").is_file())
        if not paths:
            raise SystemExit(f"error: {folder} holds no runs to reuse.")
        return paths
    import clipxai  # noqa: PLC0415

    runs = clipxai.ascend(args.prompt, model=args.model, steps=args.steps, seed=0, seeds=args.seeds,
                            snapshot_every=args.snapshot_every, out=str(folder), name=condition, quiet=True,
                            **CONDITIONS[condition])
    return [r.path for r in runs]


def summarise(condition: str, summaries: list[dict]) -> dict:
    rates = np.array([s["switch_rate_per_100_steps"]["value"] for s in summaries])
    late = np.array([s["windows"][-1]["rate_per_100_steps"] for s in summaries])
    verdicts = [s["verdict"] for s in summaries]
    q25, q75 = np.percentile(rates, [25, 75])
    return {
        "condition": condition, "runs": len(summaries),
        "oscillating": sum(v in OSCILLATING for v in verdicts),
        "n_states_median": float(np.median([s["n_states"] for s in summaries])),
        "switch_rate_median": float(np.median(rates)), "switch_rate_iqr": float(q75 - q25),
        "dwell_steps_median": float(np.median([s["dwell_steps_all"]["median"] for s in summaries])),
        "late_rate_median": float(np.median(late)),
        "decaying": sum((s.get("trend") or {}).get("direction") == "decreasing" for s in summaries),
        "verdicts": ", ".join(f"{v}: {verdicts.count(v)}" for v in sorted(set(verdicts))),
    }


def markdown(rows: list[dict]) -> str:
    def cell(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    from clipxai.analysis.analyze import AnalyzeOptions, analyze_run  # noqa: PLC0415
    from clipxai.errors import ClipxaiError  # noqa: PLC0415
    from clipxai.runs.load import load_run  # noqa: PLC0415

    conditions = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        print(f"error: unknown condition '{unknown[0]}'; choose from {', '.join(CONDITIONS)}.", file=sys.stderr)
        return 2
    opts = AnalyzeOptions(projections=("pca",), labels=False, gif=False)
    rows, details = [], {}
    try:
        for condition in conditions:
            paths = runs_of(condition, args)
            summaries = [analyze_run(load_run(p), opts) for p in paths]
            rows.append(summarise(condition, summaries))
            details[condition] = [{"path": str(p), "verdict": s["verdict"], "n_states": s["n_states"],
                                   "switch_rate_per_100_steps": s["switch_rate_per_100_steps"],
                                   "windows": s["windows"], "trend": s["trend"]} for p, s in zip(paths, summaries)]
            print(f"{condition}: {rows[-1]['oscillating']} of {rows[-1]['runs']} oscillate "
                  f"({rows[-1]['verdicts']})", flush=True)
    except ClipxaiError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(rows)
    (args.out / "controls.md").write_text(f"# Controls for “{args.prompt}” on {args.model}\n\n{table}\n",
                                          encoding="utf-8")
    (args.out / "controls.json").write_text(json.dumps({"prompt": args.prompt, "model": args.model, "table": rows,
                                                        "runs": details}, indent=2, ensure_ascii=False),
                                            encoding="utf-8")
    with open(args.out / "controls.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(table)
    print(f"wrote {args.out / 'controls.md'}, controls.json and controls.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
