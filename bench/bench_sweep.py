"""What a sweep costs over the same runs done by hand, locally and on Ray.

    python bench/bench_sweep.py [--steps 300] [--cutouts 8] [--skip-ray] [--all] [--keep DIR]
    python bench/bench_sweep.py --step-times random:ViT-B/32 [--seeds 1,2]

Twelve toy runs of the default preset (3 prompts x 4 learning rates, seed 0: twelve units,
nothing batched), timed as wall-clock seconds, in this order, in one process with one torch
thread:

1. ``separate``: twelve ``clipxai.ascend(...)`` calls, each loading the model as a script would;
2. ``sweep local``: ``clipxai sweep`` on the local executor (spec checks, sweep.json after every
   run, progress lines);
3. ``sweep ray``: ``clipxai sweep --executor ray`` with no address: it starts a local Ray with
   2 CPUs, each task asks for 1 CPU and runs torch on 1 thread; Ray's start, the workers'
   imports and model loads are all inside the figure.

``--all`` adds ``separate, model loaded once`` (``model_obj=``, the cheapest hand-written loop)
and the Ray sweep again with Ray already started (the fixed cost of starting Ray left out).
Ray's fixed cost (about 10 s to start here, 10 s for each worker's first imports, in
parallel) is why the runs are of the default length: the Ray figure is fixed cost plus half
the sequential time.

Targets: sweep local <= 1.1 x separate; sweep ray <= 0.7 x separate (2 workers on 2 cores).
The machine's load average is printed before and after: on a shared machine, the ratios
taken within one run are what count.

``--step-times MODEL[,MODEL]`` instead measures what docs/sweeps.md's cost estimate starts
from: seconds per step of the default preset (8 cutouts, recording on) for each model and
number of batched seeds, from the run's own metrics (the first two steps left out), and the
bytes a run folder takes per snapshot.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPTS = ["❤️", "love", "a red heart"]
LRS = [0.02, 0.035, 0.05, 0.08]


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def spec_text(name: str, steps: int, cutouts: int) -> str:
    prompts = ", ".join(f'"{p}"' for p in PROMPTS)
    return (f'name = "{name}"\n[grid]\nprompt = [{prompts}]\nlr = {LRS}\n'
            f'[ascend]\nmodel = "toy"\nsteps = {steps}\ncutouts = {cutouts}\nsnapshot_every = 10\n')


def timed(label: str, fn, results: dict) -> float:
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    results[label] = seconds
    print(f"  {label:<34} {seconds:7.1f} s   (load {load()})", flush=True)
    return seconds


def step_times(models: list[str], seeds: list[int], steps: int, root: Path) -> None:
    import clipxai
    from clipxai.models import load_clip

    print(f"seconds per step, default preset, {steps} steps, torch threads 1 (load {load()})")
    for name in models:
        model = load_clip(name, "cpu")
        for k in seeds:
            runs = clipxai.ascend("a red heart", model=name, model_obj=model, steps=steps, seeds=k, snapshot_every=2,
                                  quiet=True, out=str(root / "steps"))
            times = {m["step"]: m["time"] for m in runs[0].metrics()}
            per_step = (times[steps - 1] - times[1]) / (steps - 2)
            size = sum(f.stat().st_size for f in (runs[0].path / "snapshots").rglob("*.npy"))
            print(f"  {name:<18} seeds {k}: {per_step:7.3f} s/step ({per_step / k:6.3f} per seed), "
                  f"{size / runs[0].n / 1e6:5.2f} MB per snapshot per run   (load {load()})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--cutouts", type=int, default=8)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--all", action="store_true", help="Also the model-loaded-once loop and Ray already up.")
    parser.add_argument("--keep", type=Path, default=None, help="Keep the run folders here.")
    parser.add_argument("--step-times", default=None, metavar="MODEL[,MODEL]",
                        help="Only measure seconds per step of these models (random:ViT-B/32, ...).")
    parser.add_argument("--seeds", default="1,2", help="--step-times: numbers of batched seeds.")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    import clipxai
    from clipxai.models import load_clip
    from clipxai.sweep import run_sweep

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    root.mkdir(parents=True, exist_ok=True)
    if args.step_times:
        step_times(args.step_times.split(","), [int(k) for k in args.seeds.split(",")],
                   args.steps if args.steps != 300 else 6, root)
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
        return
    common = dict(model="toy", steps=args.steps, cutouts=args.cutouts, snapshot_every=10, quiet=True)
    print(f"12 toy runs of {args.steps} steps, {args.cutouts} cutouts; torch threads 1; {os.cpu_count()} CPUs; "
          f"load before {load()}", flush=True)
    clipxai.ascend("warm up", out=str(root / "warm"), **{**common, "steps": 2})  # imports, first model load

    def separate(model=None):
        out = root / f"separate-{time.monotonic_ns()}"
        for prompt in PROMPTS:
            for lr in LRS:
                clipxai.ascend(prompt, lr=lr, out=str(out), model_obj=model, **common)

    def sweep(name: str, executor: str):
        spec = root / f"{name}.toml"
        spec.write_text(spec_text(name, args.steps, args.cutouts), encoding="utf-8")
        with open(os.devnull, "w") as quiet:
            outcome = run_sweep(spec, out=root, executor=executor, stream=quiet)
        assert outcome.exit_code == 0 and outcome.counts == {"complete": 12}, outcome

    results: dict[str, float] = {}
    base = timed("separate", separate, results)
    if args.all:
        timed("separate, model loaded once", lambda: separate(load_clip("toy", "cpu")), results)
    timed("sweep local", lambda: sweep("local", "local"), results)
    if not args.skip_ray:
        import ray

        timed("sweep ray (Ray started inside)", lambda: sweep("ray", "ray"), results)
    if not args.skip_ray and args.all:
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
        try:
            timed("sweep ray (Ray already up)", lambda: sweep("ray-up", "ray"), results)
        finally:
            ray.shutdown()
    print(f"load after {load()}")
    print("ratios to `separate` (targets: local <= 1.1, ray <= 0.7):")
    for label, seconds in results.items():
        print(f"  {label:<34} {seconds / base:5.2f}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
