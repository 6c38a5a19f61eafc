"""The GPU figures of docs/performance.md in one run: one table, under 5 minutes on one GPU.

For a ViT-B/32 and a ViT-L/14 shape (random weights: speed does not depend on them) it measures

- K-seed batching: a step of K = 1, 8, 32 seeds in one batch against K runs one after another
  (K times the one-seed step), as throughput;
- bf16 and fp16 autocast against fp32, and ``--compile`` against eager fp32 (8 seeds), with the
  time the first compiled step took;
- the peak memory a step allocates above the loaded model, with 32 cutouts at once, with
  ``--checkpoint-activations`` and with ``--cutout-batch 8``.

Steps of the engines compared are interleaved, round by round, each timed to a device
synchronisation. ``--dry-run`` runs the same code on the CPU with the tiny test CLIP, one timed
step, two cutouts and an eager stand-in for the compiler, so the script is checked by the test
suite (tests/test_bench_gpu.py) without a GPU; its figures mean nothing.

    python bench/gpu.py [--steps 5] [--arch ViT-B/32 --arch ViT-L/14] [--json]
    python bench/gpu.py --dry-run
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEEDS = (1, 8, 32)
PRECISIONS = ("fp32", "bf16", "fp16")
MEMORY_CASES = {"32 cutouts at once": {}, "--checkpoint-activations": {"checkpoint_activations": True},
                "--cutout-batch 8": {"cutout_batch": 8}}


class Bench:
    """Engines on one device, timed to a synchronisation of that device."""

    def __init__(self, device: str, cutouts: int, steps: int):
        import torch
        self.torch, self.device, self.cutouts, self.steps = torch, device, cutouts, steps
        self.out = tempfile.mkdtemp(prefix="clipxai-gpu-")
        self.cuda = device.startswith("cuda")

    def engine(self, model, **options):
        """An engine with the callbacks a real run has, started; fp32 unless said (``auto`` would be bf16
        on a GPU), and force_precision for bf16/fp16 on a dry run's CPU."""
        from clipxai.ascent.config import resolve_config
        from clipxai.ascent.run import prepare
        cfg = resolve_config("a red heart", {"out": self.out, "model": "unused", "device": self.device,
                                             "cutouts": self.cutouts, "steps": 10_000, "snapshot_every": 10_000,
                                             "precision": "fp32", "force_precision": True, **options})
        engine, _ = prepare(cfg, model, quiet=True)
        engine.emit("on_start")
        return engine

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def timed_step(self, engine, i: int) -> float:
        self.sync()
        t = time.perf_counter()
        engine.step(i)
        self.sync()
        return time.perf_counter() - t

    def interleaved(self, engines: dict) -> dict[str, float]:
        """Median step seconds of each engine, one step of each per round; the first step of each is a warm-up."""
        first = {name: self.timed_step(e, 1) for name, e in engines.items()}
        times: dict[str, list[float]] = {name: [] for name in engines}
        for i in range(self.steps):
            for name, e in engines.items():
                times[name].append(self.timed_step(e, i + 2))
        return {**{name: statistics.median(t) for name, t in times.items()},
                **{f"{name} first": t for name, t in first.items()}}

    def peak_mib(self, model, **options) -> float | None:
        """MiB a step allocates on the GPU above what was there before the engine (None on a CPU)."""
        engine = None
        if self.cuda:
            gc.collect()
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()
            before = self.torch.cuda.memory_allocated()
        try:
            engine = self.engine(model, **options)
            for i in range(2):
                engine.step(i + 1)
            self.sync()
            return (self.torch.cuda.max_memory_allocated() - before) / 2**20 if self.cuda else None
        finally:
            del engine
            gc.collect()


def measure(bench: Bench, spec: str, label: str) -> list[tuple[str, str, str]]:
    """The rows of one architecture: (architecture, what, figure)."""
    from clipxai.errors import ClipxaiError
    from clipxai.models import load_clip
    model = load_clip(spec, bench.device)
    rows = []

    def add(what: str, figure: str):
        rows.append((label, what, figure))
        print(f"  {label:<10} {what:<58} {figure}", file=sys.stderr, flush=True)

    engines, notes = {}, {}
    for k in SEEDS:
        try:
            engines[k] = bench.engine(model, seeds=k)
        except ClipxaiError:  # the memory check before the run: try it as a user would
            try:
                engines[k] = bench.engine(model, seeds=k, checkpoint_activations=True)
                notes[k] = ", checkpointed: plain does not fit"
            except ClipxaiError as err:
                notes[k] = str(err)
    t = bench.interleaved(engines)
    del engines
    add(f"step, 1 seed x {bench.cutouts} cutouts (fp32)", f"{1000 * t[1]:.1f} ms")
    for k in SEEDS[1:]:
        what = f"{k} seeds batched / {k} runs one after another"
        if k not in t:
            add(what, f"does not fit: {notes[k]}")
            continue
        add(what, f"{k * t[1] / t[k]:.2f}x throughput ({1000 * t[k]:.1f} ms a step{notes.get(k, '')})")

    k = SEEDS[1]
    engines = {p: bench.engine(model, seeds=k, precision=p) for p in PRECISIONS}
    engines["compiled"] = bench.engine(model, seeds=k, precision="fp32", compile=True)
    t = bench.interleaved(engines)
    del engines
    for p in PRECISIONS[1:]:
        add(f"{p} step / fp32 step ({k} seeds)", f"{t[p] / t['fp32']:.2f}")
    add(f"--compile step / fp32 step ({k} seeds)", f"{t['compiled'] / t['fp32']:.2f} "
        f"(first step {t['compiled first']:.1f} s, compiling)")

    plain = None
    for case, options in MEMORY_CASES.items():
        mib = bench.peak_mib(model, cutouts=32, **options)
        plain = mib if plain is None else plain
        figure = "- (CPU)" if mib is None else f"{mib:.0f} MiB" + (f", {mib / plain:.2f}x" if plain and options else "")
        add(f"peak memory of an fp32 step above the model, {case}", figure)
    del model
    gc.collect()
    return rows


@contextlib.contextmanager
def dry_run(on: bool):
    """On the CPU: one thread, and the compiler's code generation (minutes on a CPU) replaced by eager
    execution of what dynamo captured; both as they were afterwards (the test suite calls this in-process)."""
    import torch
    if not on:
        yield
        return
    threads, compile_ = torch.get_num_threads(), torch.compile
    torch.set_num_threads(1)
    torch.compile = functools.partial(compile_, backend="eager")
    try:
        yield
    finally:
        torch.compile = compile_
        torch.set_num_threads(threads)
        torch._dynamo.reset()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="the same code on the CPU with tiny models (a test)")
    p.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    p.add_argument("--arch", action="append", help="architectures (default: ViT-B/32 and ViT-L/14)")
    p.add_argument("--steps", type=int, default=None, help="timed steps of each engine (default 5; 1 with --dry-run)")
    p.add_argument("--cutouts", type=int, default=None, help="cutouts a seed (default 8; 2 with --dry-run)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    import torch

    from clipxai.util.cpu import describe_cpu
    start = time.perf_counter()
    device = args.device or ("cpu" if args.dry_run else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        print("bench/gpu.py needs a CUDA GPU (or --dry-run to check the script on the CPU).", file=sys.stderr)
        return 2
    specs = [("random:tiny", "tiny")] if args.dry_run else [(f"random:{a}", a) for a in (args.arch or
                                                                                       ["ViT-B/32", "ViT-L/14"])]
    bench = Bench(device, args.cutouts or (2 if args.dry_run else 8), args.steps or (1 if args.dry_run else 5))
    where = torch.cuda.get_device_name(device) if bench.cuda else "CPU"
    header = (f"bench/gpu.py{' --dry-run (figures mean nothing)' if args.dry_run else ''} on {where}, torch "
              f"{torch.__version__}, CUDA {torch.version.cuda}; {describe_cpu()}; {bench.steps} timed step(s) "
              f"after a warm-up, {bench.cutouts} cutouts a seed unless said, random weights")
    print(header, file=sys.stderr, flush=True)
    with dry_run(args.dry_run):
        rows = [row for spec, label in specs for row in measure(bench, spec, label)]
    elapsed = time.perf_counter() - start
    if args.json:
        print(json.dumps({"header": header, "rows": rows, "seconds": round(elapsed, 1)}, indent=2))
        return 0
    widths = [max(len(r[i]) for r in rows + [("architecture", "measured", "figure")]) for i in range(3)]
    print(header)
    for row in [("architecture", "measured", "figure"), tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    print(f"{elapsed:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
