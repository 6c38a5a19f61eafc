"""Does CLIP oscillate between concepts when it optimises an image toward "❤️"?

    python analysis/heart_oscillation.py [--model toy] [--seeds 4] [--steps 600] [--out runs/heart]
    python analysis/heart_oscillation.py --runs runs/heart/run-seed0 runs/heart/run-seed1 ...

Runs the ascent from several seeds (or takes existing runs), analyses every run, and writes
one report comparing them (HTML + Markdown) plus ``heart_oscillation.json``: per seed the
verdict and the oscillation numbers, and across seeds how many oscillate, the median number
of states and the median switch rate. Works with any model; ``toy`` (bundled) runs offline.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from clipxai.analysis.motion.verdict import OSCILLATING  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompt", default="❤️")
    ap.add_argument("--model", default="toy", help="any name clipxai.load_clip accepts (toy works offline)")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0, help="first seed")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--snapshot-every", type=int, default=5)
    ap.add_argument("--cutouts", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--lr-schedule", default=None, choices=["constant", "cosine", "plateau"])
    ap.add_argument("--preset", default=None)
    ap.add_argument("--out", type=Path, default=Path("runs/heart"), help="folder for new runs and the results")
    ap.add_argument("--runs", nargs="+", type=Path, default=None, help="analyse these runs instead of running")
    ap.add_argument("--concepts", default="love,mouth,hands,ring,heart", help="concept probes (comma-separated)")
    ap.add_argument("--vocab", type=Path, default=None, help="word list for the labels")
    ap.add_argument("--vocab-only", action="store_true", help="label with --vocab only")
    ap.add_argument("--projection", default="pca,umap")
    ap.add_argument("--report", type=Path, default=None, help="report path (default: OUT/heart_oscillation.html)")
    return ap.parse_args(argv)


def ascend_seeds(args) -> list[Path]:
    """One run folder per seed, made with the public engine API."""
    import clipxai  # noqa: PLC0415

    options = {k: v for k, v in dict(cutouts=args.cutouts, lr=args.lr, lr_schedule=args.lr_schedule,
                                     preset=args.preset).items() if v is not None}
    runs = clipxai.ascend(args.prompt, model=args.model, steps=args.steps, seed=args.seed, seeds=args.seeds,
                            snapshot_every=args.snapshot_every, out=str(args.out), name="heart", quiet=True,
                            **options)
    return [r.path for r in runs]


def aggregate(summaries: list[dict]) -> dict:
    """Across seeds: how many oscillate, and the spread of the main numbers."""
    rates = np.array([s["switch_rate_per_100_steps"]["value"] for s in summaries])
    states = np.array([s["n_states"] for s in summaries])
    dwell = np.array([s["dwell_steps_all"]["median"] for s in summaries])
    verdicts = [s["verdict"] for s in summaries]
    return {
        "runs": len(summaries),
        "oscillating": sum(v in OSCILLATING for v in verdicts),
        "verdicts": {v: verdicts.count(v) for v in sorted(set(verdicts))},
        "n_states_median": float(np.median(states)),
        "switch_rate_per_100_steps_median": float(np.median(rates)),
        "switch_rate_per_100_steps_range": [float(rates.min()), float(rates.max())],
        "dwell_steps_median": float(np.median(dwell)),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    from clipxai.analysis.analyze import analyze_run  # noqa: PLC0415
    from clipxai.cli.analysis import build_options  # noqa: PLC0415
    from clipxai.errors import ClipxaiError  # noqa: PLC0415
    from clipxai.report.report import write_report  # noqa: PLC0415
    from clipxai.runs.load import load_run  # noqa: PLC0415

    try:
        paths = args.runs or ascend_seeds(args)
        opts = build_options(features="auto", method="kmeans", k="auto", k_max=10, state_model="hmm",
                             concepts=args.concepts or None, model=None if args.runs else args.model,
                             device="auto", vocab_file=args.vocab, vocab_only=args.vocab_only, top_words=5,
                             no_labels=False, seed=0, projection=args.projection)
        summaries = []
        for path in paths:
            summary = analyze_run(load_run(path), opts)
            summaries.append(summary)
            rate = summary["switch_rate_per_100_steps"]
            print(f"{path}: {summary['verdict']}, {summary['n_states']} states, {summary['switches']} switches, "
                  f"{rate['value']:.3g}/100 steps [{rate['ci95'][0]:.3g}, {rate['ci95'][1]:.3g}]")
        out = args.out if not args.runs else Path(paths[0]).parent
        report = args.report or out / "heart_oscillation.html"
        html, md = write_report(paths, report, opts=opts, title=f"Concept oscillation of “{args.prompt}”")
    except ClipxaiError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = {"prompt": args.prompt, "model": args.model, "aggregate": aggregate(summaries),
              "runs": [{"path": str(p), "verdict": s["verdict"], "n_states": s["n_states"],
                        "switches": s["switches"], "switch_rate_per_100_steps": s["switch_rate_per_100_steps"],
                        "dwell_steps": s["dwell_steps"], "labels": (s.get("labels") or {}).get("states"),
                        "verdict_reason": s["verdict_reason"]} for p, s in zip(paths, summaries)]}
    (report.parent / "heart_oscillation.json").write_text(json.dumps(result, indent=2, ensure_ascii=False),
                                                          encoding="utf-8")
    agg = result["aggregate"]
    print(f"{agg['oscillating']} of {agg['runs']} runs oscillate; median {agg['n_states_median']:g} states, "
          f"median {agg['switch_rate_per_100_steps_median']:.3g} switches per 100 steps")
    print(f"wrote {html}, {md} and {report.parent / 'heart_oscillation.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
