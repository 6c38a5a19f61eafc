"""Are the oscillation numbers true? Scores of the analysis on synthetic ground truth.

    python bench/validate_oscillation.py [--draws 100] [--noise 1.0] [--methods kmeans,...]

Planted trajectories (K = 2..6 concepts in 512-D with pairwise cosines 0.3-0.6, gamma dwell
times of mean 20 snapshots, blended transitions, isotropic noise of norm ``--noise``, so a
snapshot's cosine to its concept is ~0.7 at the default 1.0) must give K exactly in >= 95%
of draws, switch points with F1 >= 0.9 (tolerance 2 snapshots) and the mean dwell within
15%. The negative controls (converging, random walk on the sphere, one state with noise)
must not be called oscillating in >= 95% of draws. Also printed: how often periodic cycles
are called periodic, and how often random-order switching is wrongly called periodic.
Prints one line per score with its target; exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from clipxai.analysis import synthetic  # noqa: E402
from clipxai.analysis.validation import analyse_trajectory, control_scores, planted_scores  # noqa: E402


def check(label: str, value: float, target: float, higher: bool = True) -> bool:
    ok = value >= target if higher else value <= target
    print(f"  {label:44s} {value:7.3f}   target {'>=' if higher else '<='} {target:<5g} {'ok' if ok else 'MISSED'}")
    return ok


def periodic_rates(draws: int, seed: int, noise: float) -> tuple[float, float]:
    """(share of regular cycles called periodic, share of random-order switching called periodic)."""
    hit = false = 0
    for i in range(draws):
        rng = np.random.default_rng([seed, 50_000 + i])
        k = int(rng.integers(3, 6))
        cyc = synthetic.planted_states(rng, k=k, cyclic=True, dwell_shape=50, noise=noise)
        hit += analyse_trajectory(cyc).verdict == "periodic_oscillation"
        rnd = synthetic.planted_states(rng, k=k, cyclic=False, noise=noise)
        false += analyse_trajectory(rnd).verdict == "periodic_oscillation"
    return hit / draws, false / draws


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--noise", type=float, default=1.0, help="noise norm relative to the unit concept vectors")
    ap.add_argument("--methods", default="kmeans", help="clustering methods to score (comma-separated)")
    ap.add_argument("--states", default="hmm", choices=["hmm", "clusters"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ok = True
    t0 = time.perf_counter()
    for method in args.methods.split(","):
        print(f"planted states: {args.draws} draws, noise {args.noise}, {method} + {args.states}")
        s = planted_scores(args.draws, args.seed, noise=args.noise, method=method, state_model=args.states)
        ok &= check("K recovered exactly (share of draws)", s["k_exact"], 0.95)
        ok &= check("switch-point F1 (tol 2), share of draws >= 0.9", s["switch_f1_share_ge_0.9"], 0.95)
        check("switch-point F1, mean", s["switch_f1_mean"], 0.9)
        ok &= check("mean dwell within 15% (share of draws)", s["dwell_share_within_15pct"], 0.95)
        check("mean dwell, mean relative error", s["dwell_rel_error_mean"], 0.15, higher=False)
        check("called oscillating (share of draws)", s["called_oscillating"], 0.95)
        print(f"  verdicts: {dict(Counter(s['verdicts']))}")
    print(f"negative controls: {args.draws} draws each (kmeans + {args.states})")
    for kind in sorted(synthetic.NEGATIVE_CONTROLS):
        c = control_scores(kind, args.draws, args.seed, state_model=args.states)
        ok &= check(f"{kind}: not called oscillating", c["not_oscillating"], 0.95)
        print(f"    verdicts: {c['verdicts']}")
    draws = max(10, args.draws // 4)
    hit, false = periodic_rates(draws, args.seed, args.noise)
    print(f"periodicity: {draws} draws each")
    check("regular cycles called periodic", hit, 0.8)
    check("random-order switching called periodic", false, 0.1, higher=False)
    print(f"total {time.perf_counter() - t0:.0f} s; {'all targets met' if ok else 'SOME TARGETS MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
