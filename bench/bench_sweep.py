"""What a sweep costs over the same runs done by hand, locally and on Ray.

    python bench/bench_sweep.py [--steps 300] [--cutouts 8] [--repeat 1] [--skip-ray] [--all] [--keep DIR]
    python bench/bench_sweep.py --step-times random:ViT-B/32 [--seeds 1,2]

Twelve toy runs of the default preset (3 prompts x 4 learning rates, seed 0: twelve units,
nothing batched), timed as wall-clock seconds (and this process's CPU seconds), in one process
with one torch thread, in rounds (``--repeat``; each round starts with another case, so a
load that rises during the measurement does not always fall on the same case):

1. ``separate``: twelve ``clipxai.ascend(...)`` calls, each loading the model as a script would;
2. ``sweep local``: ``clipxai sweep`` on the local executor (spec checks, sweep.json after every
   run, progress lines);
3. ``sweep ray``: ``clipxai sweep --executor ray`` with no address: it starts a local Ray with
   2 CPUs, each task asks for 1 CPU and runs torch on 1 thread; Ray's start, the workers'
   imports and model loads are all inside the figure.

``--all`` adds ``separate, model loaded once`` (``model_obj=``, the cheapest hand-written loop)
and the Ray sweep again after ``ray.init`` (the fixed cost of starting Ray shown apart).
Ray's fixed cost (about 10 s to start here, 10 s for each worker's first imports, in
parallel) is why the runs are of the default length: the Ray figure is fixed cost plus half
the sequential time.

Targets: sweep local <= 1.1 x separate; sweep ray <= 0.7 x separate (2 workers on 2 cores).
The machine's load average is printed beside every figure: on a shared machine, the ratios
taken within one round are what count, and the CPU-time ratio of the local sweep (all of it
runs in this process) does not depend on the load.

``--step-times MODEL[,MODEL]`` instead measures what docs/sweeps.md's cost estimate starts
from: seconds per step of the default preset (8 cutouts, recording on) for each model and
number of batched seeds, from the run's own metrics (the first two steps left out), and the
bytes a run folder takes per snapshot.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
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


def timed(label: str, fn) -> tuple[float, float]:
    """Wall-clock and this process's CPU seconds of ``fn()``."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"  {label:<32} {wall:7.1f} s wall {cpu:7.1f} s CPU here   (load {load()})", flush=True)
    return wall, cpu


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
    parser.add_argument("--repeat", type=int, default=1, help="Rounds; each starts with another case.")
    parser.add_argument("--keep", type=Path, default=None, help="Keep the run folders here.")
    parser.add_argument("--step-times", default=None, metavar="MODEL[,MODEL]",
                        help="Only measure seconds per step of these models (random:ViT-B/32, ...).")
    parser.add_argument("--seeds", default="1,2", help="--step-times: numbers of batched seeds.")
    args = parser.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)

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

    cases = [("separate", lambda r: separate()), ("sweep local", lambda r: sweep(f"local-{r}", "local"))]
    if args.all:
        cases.insert(1, ("separate, model loaded once", lambda r: separate(load_clip("toy", "cpu"))))
    if not args.skip_ray:
        import ray

        cases.append(("sweep ray", lambda r: sweep(f"ray-{r}", "ray")))
        if args.all:
            def ray_up(r):
                ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
                try:
                    t0 = time.perf_counter()
                    sweep(f"ray-up-{r}", "ray")
                    print(f"    (of which the sweep with Ray up: {time.perf_counter() - t0:.1f} s)")
                finally:
                    ray.shutdown()
            cases.append(("sweep ray (ray.init first)", ray_up))
    ratios: dict[str, list[float]] = {label: [] for label, _ in cases}
    for r in range(args.repeat):
        order = cases[r % len(cases):] + cases[:r % len(cases)]   # each round starts with another case
        print(f"round {r + 1}:")
        got = {label: timed(label, lambda fn=fn, r=r: fn(r)) for label, fn in order}
        base_wall, base_cpu = got["separate"]
        for label, (wall, cpu) in got.items():
            ratios[label].append(wall / base_wall)
            if label != "separate":
                cpu_note = f", CPU here {cpu / base_cpu:5.2f}" if "ray" not in label else ""
                print(f"    {label:<30} wall {wall / base_wall:5.2f} x separate{cpu_note}")
    print(f"load after {load()}")
    print("median wall-time ratio to `separate` over the rounds (targets: sweep local <= 1.1, sweep ray <= 0.7):")
    for label, values in ratios.items():
        print(f"  {label:<32} {statistics.median(values):5.2f}   rounds: {', '.join(f'{v:.2f}' for v in values)}")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
