"""Engine speed on a randomly initialised ViT-B/32 (weights do not change speed).

Prints three ratios, each from steps interleaved in one process so that load from other
programs hits both sides alike:

1. engine step (8 cutouts, no snapshot) / bare encode_image forward+backward of the same batch
   (target <= 1.15);
2. engine with snapshots every 10 steps / engine without (target <= 1.05, i.e. +5%);
3. the original script's configuration / our zer0int preset, per step (target >= 2).

Peak memory (max RSS) of each configuration is measured in a subprocess of its own.

    python bench/bench_engine.py [--steps 20] [--threads 1] [--arch ViT-B/32]

``--backends`` measures ratio 1 instead for a random ViT-B/32 of each backend (OpenAI's
clip, open_clip, Hugging Face transformers), each against its own bare forward+backward:

    python bench/bench_engine.py --backends [--steps 5] [--threads 1]

``--compute`` measures what the compute options cost and save (docs/performance.md):
bf16 and compiled steps against the fp32 bare step (B/32, 8 cutouts), peak RSS of 64
cutouts in chunks of 8 against 8 cutouts, gradient checkpointing's activation memory and
time on a ViT-L/14 shape, and K=8 seeds batched against 8 runs one after another:

    python bench/bench_engine.py --compute [--steps 5] [--no-compile]

``--cli`` times the path the command line takes: ``clipxai.ascend`` in-process (what
``clipxai ascend`` calls), with its default recording (a snapshot every 10 steps, metrics every
step), the progress line and the checkpoints, steps 2 to 11 of a 12-step run (any 10 steps
hold one snapshot and one checkpoint), the model passed in so that loading it is not timed.
Each repeat runs, one after another, the default recipe (8 cutouts), a bare forward+backward
of the same 8 views, ``--preset zer0int`` and the original script's configuration, so load
hits each ratio's two sides alike; it prints each ratio's median and spread over the
repeats, and where a default step's time goes, part by part:

    python bench/bench_engine.py --cli [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def setup(threads: int):
    import torch
    torch.set_num_threads(threads)
    return torch


def make_engine(clip_model, out: str, **options):
    """An engine with every callback a real run has (guard, recorder, checkpointer), started."""
    from clipxai.ascent.config import resolve_config
    from clipxai.ascent.run import prepare

    cfg = resolve_config("a red heart", {"out": out, **options})
    engine, _ = prepare(cfg, clip_model, quiet=True)
    engine.emit("on_start")
    return engine


def bare_step_fn(model, batch: int, torch):
    """encode_image forward + backward to the input: the floor any engine step has to pay."""
    x = torch.rand(batch, 3, model.input_resolution, model.input_resolution, requires_grad=True)
    text = model.encode_text(["a red heart"])[0]

    def step():
        x.grad = None
        f = model.encode_image(x)
        (-(f / f.norm(dim=-1, keepdim=True) @ (text / text.norm())).mean()).backward()
    return step


class OriginalScript:
    """The original experiment's configuration, rebuilt for timing: anomaly detection on,
    CLIP parameters requiring grad, hooks on every visual block, and at every 10th step
    synchronous min-max-normalised dumps of activations, gradients and the image."""

    def __init__(self, model, out: Path, torch):
        import numpy as np
        self.torch, self.np, self.out = torch, np, out
        self.model = model.module
        self.model.requires_grad_(True)
        r = model.input_resolution
        self.image = (torch.randn(1, 3, r, r) * 0.01).requires_grad_(True)
        with torch.no_grad():
            self.text = self.model.encode_text(model.tokenize(["a red heart"]))
        self.opt = torch.optim.AdamW([self.image], lr=1.5)
        self.acts = {}
        for i, block in enumerate(self.model.visual.transformer.resblocks):
            block.register_forward_hook(lambda m, inp, o, i=i: self.acts.__setitem__(i, o.detach()))
        self.best, self.best_sim = None, -float("inf")
        for d in ("activations", "gradients", "images"):
            (out / d).mkdir(parents=True, exist_ok=True)

    def step(self, it: int):
        torch, F = self.torch, self.torch.nn.functional
        with torch.autograd.set_detect_anomaly(True):
            self.opt.zero_grad()
            feats = self.model.encode_image(self.image)
            cos = torch.cosine_similarity(feats, self.text, dim=1).mean()
            if cos.item() > self.best_sim:
                self.best_sim, self.best = cos.item(), self.image.detach().clone()
            tv = (self.image[..., :, :-1] - self.image[..., :, 1:]).abs().sum() + \
                 (self.image[..., :-1, :] - self.image[..., 1:, :]).abs().sum()
            loss = -torch.log(torch.exp(cos / 5)) + 1e-5 * tv + 0.01 * F.mse_loss(self.image, self.best)
            loss.backward()
            self.opt.step()
        if it % 10 == 0:
            self.dump(it)

    def dump(self, it: int):
        from PIL import Image
        np = self.np
        for i, a in self.acts.items():
            flat = a.view(a.size(0), -1)
            np.save(self.out / "activations" / f"layer{i}_iteration{it}.npy",
                    ((flat - flat.min()) / (flat.max() - flat.min())).cpu().numpy())
        g = self.image.grad.view(1, -1)
        np.save(self.out / "gradients" / f"gradient_iteration{it}.npy", ((g - g.min()) / (g.max() - g.min())).numpy())
        img = self.image.detach()[0].permute(1, 2, 0)
        img = ((img - img.min()) / (img.max() - img.min()) * 255).numpy().astype(np.uint8)
        Image.fromarray(img).save(self.out / "images" / f"image_{it}.png")


def interleaved(a, b, steps: int) -> tuple[list[float], list[float]]:
    """Alternate a(i) and b(i), timing each; the first round is a warm-up."""
    ta, tb = [], []
    for i in range(steps + 1):
        t = time.perf_counter()
        a(i)
        t1 = time.perf_counter()
        b(i)
        t2 = time.perf_counter()
        if i:
            ta.append(t1 - t)
            tb.append(t2 - t1)
    return ta, tb


def ratios(args):
    torch = setup(args.threads)
    from clipxai.models import load_clip
    model = load_clip(f"random:{args.arch}", "cpu")
    tmp = tempfile.mkdtemp(prefix="clipxai-bench-")
    results = {"arch": args.arch, "threads": torch.get_num_threads(), "steps": args.steps}

    # 1. engine vs bare forward+backward, 8 cutouts, steps that take no snapshot
    engine = make_engine(model, tmp, model="unused", cutouts=8, steps=1000, snapshot_every=1000)
    bare = bare_step_fn(model, 8, torch)
    te, tb = interleaved(lambda i: engine.step(i + 1), lambda i: bare(), args.steps)
    results["engine_step_s"] = statistics.median(te)
    results["bare_step_s"] = statistics.median(tb)
    results["engine_over_bare"] = results["engine_step_s"] / results["bare_step_s"]

    # 2. snapshots every 10 steps vs none: same engine config, means over whole cycles
    rec = make_engine(model, tmp, model="unused", cutouts=8, steps=1000, snapshot_every=10)
    n = max(10, args.steps // 10 * 10)
    t_rec, t_plain = interleaved(lambda i: rec.step(i + 1), lambda i: engine.step(i + 1), n)
    results["recording_overhead"] = sum(t_rec) / sum(t_plain) - 1

    # 3. zer0int preset vs the original script's configuration (batch 1, 224 px)
    r = model.input_resolution
    z = make_engine(model, tmp, preset="zer0int", model="unused", steps=1000, size=(r, r))
    original = OriginalScript(load_clip(f"random:{args.arch}", "cpu"), Path(tmp) / "original", torch)
    tz, to = interleaved(lambda i: z.step(i + 1), lambda i: original.step(i + 1), n)
    results["zer0int_step_s"] = sum(tz) / len(tz)
    results["original_step_s"] = sum(to) / len(to)
    results["original_over_zer0int"] = results["original_step_s"] / results["zer0int_step_s"]
    return results


# A ViT-B/32 shape in each backend's own form (random weights: speed does not depend on them).
BACKEND_SPECS = {"openai": "random:ViT-B/32", "openclip": "random:openclip:ViT-B-32-quickgelu",
                 "hf": "random:hf:ViT-B/32"}


def interleaved_clocks(a, b, steps: int) -> dict[str, tuple[list[float], list[float]]]:
    """Like ``interleaved``, timing each call by wall clock and by this process's CPU time.

    With one thread, CPU time is what the step costs whatever else the machine runs; wall
    time also counts waiting for a core on a busy machine.
    """
    out = {"wall": ([], []), "cpu": ([], [])}
    for i in range(steps + 1):
        marks = [(time.perf_counter(), time.process_time())]
        a(i)
        marks.append((time.perf_counter(), time.process_time()))
        b(i)
        marks.append((time.perf_counter(), time.process_time()))
        if i:
            for k, clock in (("wall", 0), ("cpu", 1)):
                out[k][0].append(marks[1][clock] - marks[0][clock])
                out[k][1].append(marks[2][clock] - marks[1][clock])
    return out


def backend_ratios(args) -> dict:
    """Engine step / bare encode_image fwd+bwd at 8 cutouts, per backend (target <= 1.15 each)."""
    import gc
    torch = setup(args.threads)
    from clipxai.errors import ModelLoadError
    from clipxai.models import load_clip
    results = {"threads": torch.get_num_threads(), "steps": args.steps, "backends": {}}
    for backend, spec in BACKEND_SPECS.items():
        try:
            model = load_clip(spec, "cpu")
        except ModelLoadError as err:
            results["backends"][backend] = {"spec": spec, "skipped": str(err)}
            continue
        tmp = tempfile.mkdtemp(prefix="clipxai-bench-")
        engine = make_engine(model, tmp, model="unused", cutouts=8, steps=1000, snapshot_every=1000)
        bare = bare_step_fn(model, 8, torch)
        clocks = interleaved_clocks(lambda i, e=engine: e.step(i + 1), lambda i, b=bare: b(), args.steps)
        row = {"spec": spec}
        for k, (te, tb) in clocks.items():
            e, b = statistics.median(te), statistics.median(tb)
            suffix = "" if k == "wall" else "_cpu"
            row.update({f"engine_step{suffix}_s": e, f"bare_step{suffix}_s": b, f"engine_over_bare{suffix}": e / b})
        results["backends"][backend] = row
        del engine, bare, model
        gc.collect()
    return results


def print_backend_ratios(r: dict) -> None:
    print(f"ViT-B/32 shape (random init) per backend, 8 cutouts, {r['threads']} thread(s), {r['steps']} timed steps")
    for backend, row in r["backends"].items():
        if "skipped" in row:
            print(f"  {backend:<9} skipped: {row['skipped']}")
            continue
        print(f"  {backend:<9} engine {row['engine_step_s']:.3f} s  bare {row['bare_step_s']:.3f} s  "
              f"engine / bare {row['engine_over_bare']:.3f} wall, {row['engine_over_bare_cpu']:.3f} CPU time"
              "  (target <= 1.15)")


def _reset_peak_rss() -> bool:
    """Reset the process's RSS high-water mark (Linux), so loading the model is not counted."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_mib() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def peak_memory_case(case: str, args) -> int:
    """Run a few steps of one configuration and return its peak RSS in MiB (in a subprocess).

    The model is built first and the high-water mark reset, so the figure is what the
    steps themselves need on top of the loaded model and the imported libraries.
    """
    torch = setup(args.threads)
    from clipxai.models import load_clip
    model = load_clip(f"random:{args.arch}", "cpu")
    tmp = tempfile.mkdtemp(prefix="clipxai-bench-")
    import gc
    gc.collect()
    _reset_peak_rss()
    if case == "engine":
        e = make_engine(model, tmp, model="unused", cutouts=8, steps=1000, snapshot_every=10)
        for i in range(3):
            e.step(i)
    elif case == "zer0int":
        r = model.input_resolution
        e = make_engine(model, tmp, preset="zer0int", model="unused", steps=1000, size=(r, r))
        for i in range(3):
            e.step(i)
    elif case == "original":
        o = OriginalScript(model, Path(tmp), torch)
        for i in range(3):
            o.step(i)
    elif case == "bare":
        step = bare_step_fn(model, 8, torch)
        for _ in range(3):
            step()
    elif case in ("cut8", "cut64x8", "cut64", "l14", "l14ckpt"):
        options = {"cut8": dict(cutouts=8), "cut64x8": dict(cutouts=64, cutout_batch=8), "cut64": dict(cutouts=64),
                   "l14": dict(cutouts=8), "l14ckpt": dict(cutouts=8, checkpoint_activations=True)}[case]
        e = make_engine(model, tmp, model="unused", steps=1000, snapshot_every=1000, **options)
        for i in range(2):
            e.step(i + 1)
    return _peak_rss_mib()


def saved_activation_mib(model, views: int, checkpointed: bool) -> float:
    """MiB autograd holds for backward after one forward of ``views`` views (exact, not RSS)."""
    import torch

    from clipxai.ascent.compute import Encoder
    held: dict[int, int] = {}

    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(t):
        if t.untyped_storage().data_ptr() not in weights:  # the weights exist anyway
            held[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    x = torch.rand(views, 3, model.input_resolution, model.input_resolution, requires_grad=True)
    encoder = Encoder(model, normalize=True, checkpoint_activations=checkpointed)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        encoder(x)
    return sum(held.values()) / 2**20


def compute_figures(args) -> dict:
    """The figures of docs/performance.md, each a ratio of steps interleaved in one process."""
    torch = setup(args.threads)
    from clipxai.models import load_clip
    out: dict = {"threads": torch.get_num_threads(), "steps": args.steps}
    tmp = tempfile.mkdtemp(prefix="clipxai-bench-")
    b32 = load_clip("random:ViT-B/32", "cpu")
    bare = bare_step_fn(b32, 8, torch)
    bf16 = make_engine(b32, tmp, model="unused", cutouts=8, steps=1000, snapshot_every=1000, precision="bf16")
    fp32 = make_engine(b32, tmp, model="unused", cutouts=8, steps=1000, snapshot_every=1000)
    t16, tb = interleaved(lambda i: bf16.step(i + 1), lambda i: bare(), args.steps)
    t32, tb2 = interleaved(lambda i: fp32.step(i + 1), lambda i: bare(), args.steps)
    out["bf16_over_bare_fp32"] = statistics.median(t16) / statistics.median(tb)
    out["fp32_over_bare_fp32"] = statistics.median(t32) / statistics.median(tb2)
    if not args.no_compile:
        compiled = make_engine(b32, tmp, model="unused", cutouts=8, steps=1000, snapshot_every=1000, compile=True)
        start = time.perf_counter()
        compiled.step(0)
        out["compile_s"] = time.perf_counter() - start
        tc, tb3 = interleaved(lambda i: compiled.step(i + 1), lambda i: bare(), args.steps)
        out["compiled_over_bare_fp32"] = statistics.median(tc) / statistics.median(tb3)
        both = make_engine(b32, tmp, model="unused", cutouts=8, steps=1000, snapshot_every=1000, compile=True,
                           precision="bf16")
        both.step(0)
        tcb, tb4 = interleaved(lambda i: both.step(i + 1), lambda i: bare(), args.steps)
        out["compiled_bf16_over_bare_fp32"] = statistics.median(tcb) / statistics.median(tb4)

    # Memory: peak RSS of the steps alone, each configuration in a process of its own.
    for case in ("cut8", "cut64x8", "cut64"):
        cmd = [sys.executable, __file__, "--memory-case", case, "--threads", str(args.threads), "--arch", "ViT-B/32"]
        res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        out[f"peak_rss_mib_{case}"] = int(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else None

    # Gradient checkpointing on a ViT-L/14 shape at 8 cutouts.
    l14 = load_clip("random:ViT-L/14", "cpu")
    out["l14_saved_mib"] = saved_activation_mib(l14, 8, False)
    out["l14_saved_mib_checkpointed"] = saved_activation_mib(l14, 8, True)
    plain = make_engine(l14, tmp, model="unused", cutouts=8, steps=1000, snapshot_every=1000)
    ckpt = make_engine(l14, tmp, model="unused", cutouts=8, steps=1000, snapshot_every=1000,
                       checkpoint_activations=True)
    tk, tp = interleaved(lambda i: ckpt.step(i + 1), lambda i: plain.step(i + 1), max(2, args.steps // 2))
    out["checkpointed_over_plain_time_l14"] = statistics.median(tk) / statistics.median(tp)
    for case in ("l14", "l14ckpt"):
        cmd = [sys.executable, __file__, "--memory-case", case, "--threads", str(args.threads), "--arch", "ViT-L/14"]
        res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        out[f"peak_rss_mib_{case}"] = int(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else None

    # K=8 seeds in one batch against 8 runs one after another (throughput), on the toy CLIP and on B/32.
    for name, model, steps in (("toy", load_clip("toy", "cpu"), 20), ("b32", b32, 2)):
        batched = make_engine(model, tmp, model="unused", cutouts=8, seeds=8, steps=1000, snapshot_every=1000)
        singles = [make_engine(model, tmp, model="unused", cutouts=8, seed=s, steps=1000, snapshot_every=1000)
                   for s in range(8)]
        t_batch, t_seq = interleaved(lambda i: batched.step(i + 1),
                                     lambda i: [e.step(i + 1) for e in singles], steps)
        out[f"batched_throughput_over_sequential_{name}"] = statistics.median(t_seq) / statistics.median(t_batch)
    return out


def print_compute(r: dict) -> None:
    print(f"compute options, random ViT-B/32 at 8 cutouts unless said, {r['threads']} thread(s), {r['steps']} timed steps")
    print(f"  fp32 engine step / fp32 bare step          {r['fp32_over_bare_fp32']:.3f}")
    print(f"  bf16 engine step / fp32 bare step          {r['bf16_over_bare_fp32']:.3f}   (target <= 0.65)")
    if "compile_s" in r:
        print(f"  compiled fp32 step / fp32 bare step        {r['compiled_over_bare_fp32']:.3f}   compile {r['compile_s']:.0f} s")
        print(f"  compiled bf16 step / fp32 bare step        {r['compiled_bf16_over_bare_fp32']:.3f}")
    c8, c64x8, c64 = r["peak_rss_mib_cut8"], r["peak_rss_mib_cut64x8"], r["peak_rss_mib_cut64"]
    print(f"  peak RSS of the steps: 8 cutouts {c8} MiB, 64 in chunks of 8 {c64x8} MiB, 64 at once {c64} MiB")
    if c8 and c64x8:
        print(f"    64 chunked / 8                           {c64x8 / c8:.2f}   (target <= 1.3)")
    print(f"  ViT-L/14, 8 cutouts: activations held for backward {r['l14_saved_mib']:.0f} MiB, "
          f"checkpointed {r['l14_saved_mib_checkpointed']:.0f} MiB "
          f"({r['l14_saved_mib'] / r['l14_saved_mib_checkpointed']:.1f}x less; target >= 2x)")
    print(f"    peak RSS {r['peak_rss_mib_l14']} MiB, checkpointed {r['peak_rss_mib_l14ckpt']} MiB; "
          f"time checkpointed / plain {r['checkpointed_over_plain_time_l14']:.2f}   (target <= 1.4)")
    print(f"  8 seeds batched / 8 runs one after another, throughput: toy {r['batched_throughput_over_sequential_toy']:.2f}x, "
          f"B/32 {r['batched_throughput_over_sequential_b32']:.2f}x")


class StepClock:
    """A callback that marks the end of every step and, from ``on_start``, times the engine's parts:
    forward (image, views, encoder forward), objective, backward, optimizer update and each
    callback's events, by wrapping them on this engine only."""

    def __init__(self, first: int, last: int):
        self.first, self.last = first, last          # steps whose time counts: (first, last]
        self.marks: dict[int, float] = {}
        self.cpu_marks: dict[int, float] = {}       # this process's CPU time: with one thread, robust to load
        self.parts: dict[str, float] = {}

    def _timed(self, name: str, fn):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                if self.first in self.marks and self.last not in self.marks:   # inside the timed window
                    self.parts[name] = self.parts.get(name, 0.0) + time.perf_counter() - t
        return timed

    def on_start(self, engine):
        engine.forward = self._timed("forward (image, views, encoder forward)", engine.forward)
        engine.objective = _TimedObjective(engine.objective, self._timed("objective (terms)", engine.objective))
        engine.backward = self._timed("backward (encoder, views, image)", engine.backward)
        engine.optimizer.step = self._timed("optimizer update", engine.optimizer.step)
        engine.callbacks = [cb if cb is self else _TimedCallback(cb, self) for cb in engine.callbacks]

    def on_forward(self, engine, step): ...
    def on_backward(self, engine, step): ...

    def on_step_end(self, engine, step):
        self.marks[step.index] = time.perf_counter()
        self.cpu_marks[step.index] = time.process_time()

    def on_end(self, engine, status): ...

    def per_step(self) -> float:
        return (self.marks[self.last] - self.marks[self.first]) / (self.last - self.first)

    def per_step_cpu(self) -> float:
        return (self.cpu_marks[self.last] - self.cpu_marks[self.first]) / (self.last - self.first)


class _TimedObjective:
    """The objective, called through its clock; its other attributes (hook points, names) as they are."""

    def __init__(self, objective, timed):
        self.objective, self.timed = objective, timed

    def __call__(self, step):
        return self.timed(step)

    def __getattr__(self, name):
        return getattr(self.objective, name)


class _TimedCallback:
    """One callback whose every event adds to its clock's part named after its class."""

    def __init__(self, cb, clock: StepClock):
        self.cb, self.clock = cb, clock

    def __getattr__(self, event):
        return self.clock._timed(f"callback {type(self.cb).__name__}", getattr(self.cb, event))


def cli_path(args) -> dict:
    """Per repeat: the default recipe through ``clipxai.ascend`` / bare fwd+bwd, and the original script's
    configuration / ``--preset zer0int`` through ``clipxai.ascend``; the breakdown of the default steps."""
    import contextlib
    import io

    import clipxai
    torch = setup(args.threads)
    from clipxai.models import load_clip
    model = load_clip(f"random:{args.arch}", "cpu")
    r = model.input_resolution
    tmp = Path(tempfile.mkdtemp(prefix="clipxai-bench-cli-"))
    first, last, steps = 1, 11, 12
    bare = bare_step_fn(model, 8, torch)
    original = OriginalScript(load_clip(f"random:{args.arch}", "cpu"), tmp / "original", torch)

    def through_cli(name: str, **options) -> tuple[tuple[float, float], float, StepClock]:
        clock = StepClock(first, last)
        t = time.perf_counter()
        with contextlib.redirect_stderr(io.StringIO()):   # the progress line is drawn, as in a terminal
            clipxai.ascend("a red heart", model_obj=model, steps=steps, out=tmp, name=name, callbacks=[clock],
                           quiet=False, **options)
        return (clock.per_step(), clock.per_step_cpu()), time.perf_counter() - t, clock

    def each(fn, n: int) -> tuple[float, float]:
        fn(0)  # warm-up
        t, c = time.perf_counter(), time.process_time()
        for i in range(n):
            fn(i + 1)
        return (time.perf_counter() - t) / n, (time.process_time() - c) / n

    rows, parts, startup = [], {}, []
    it = 0
    for rep in range(args.repeats):
        default_s, total_s, clock = through_cli(f"default-{rep}")
        bare_s = each(lambda i: bare(), last - first)
        zer0int_s, _, _ = through_cli(f"zer0int-{rep}", preset="zer0int", size=(r, r))

        def original_step(i):
            nonlocal it
            it += 1
            original.step(it)
        original_s = each(original_step, last - first)
        rows.append({"default_step_s": default_s[0], "bare_step_s": bare_s[0], "zer0int_step_s": zer0int_s[0],
                     "original_step_s": original_s[0], "engine_over_bare": default_s[0] / bare_s[0],
                     "original_over_zer0int": original_s[0] / zer0int_s[0],
                     "engine_over_bare_cpu": default_s[1] / bare_s[1],
                     "original_over_zer0int_cpu": original_s[1] / zer0int_s[1]})
        startup.append(total_s - steps * default_s[0])
        for name, seconds in clock.parts.items():
            parts.setdefault(name, []).append(seconds / (last - first))
        print(f"  repeat {rep + 1}: engine / bare {rows[-1]['engine_over_bare']:.3f} wall, "
              f"{rows[-1]['engine_over_bare_cpu']:.3f} CPU; original / zer0int {rows[-1]['original_over_zer0int']:.2f}x "
              f"wall, {rows[-1]['original_over_zer0int_cpu']:.2f}x CPU   (load {os.getloadavg()[0]:.1f})",
              file=sys.stderr, flush=True)
    out = {"arch": args.arch, "threads": torch.get_num_threads(), "repeats": args.repeats, "rows": rows,
           "startup_s": statistics.median(startup), "bare_step_s": statistics.median(x["bare_step_s"] for x in rows),
           "default_step_s": statistics.median(x["default_step_s"] for x in rows),
           "parts_s": {k: statistics.median(v) for k, v in parts.items()}}
    for key in ("engine_over_bare", "original_over_zer0int", "engine_over_bare_cpu", "original_over_zer0int_cpu"):
        values = [x[key] for x in rows]
        med = statistics.median(values)
        out[key] = {"median": med, "min": min(values), "max": max(values), "spread": (max(values) - min(values)) / med}
    return out


def print_cli_path(r: dict) -> None:
    print(f"the CLI's path (clipxai.ascend in-process: default recording, progress, checkpoints), {r['arch']} shape "
          f"(random init), {r['threads']} thread(s), steps 2-11 of 12, {r['repeats']} repeats")
    for key, label, target in (("engine_over_bare", "default step / bare fwd+bwd (8 views)", "<= 1.15"),
                               ("original_over_zer0int", "original configuration / --preset zer0int", ">= 2.0")):
        for clock in ("wall", "CPU"):
            x = r[key if clock == "wall" else f"{key}_cpu"]
            print(f"  {label + ', ' + clock:<50} median {x['median']:.3f}  min {x['min']:.3f}  max {x['max']:.3f}  "
                  f"spread {100 * x['spread']:.0f}%  (target {target}, spread <= 10%)")
    step, bare = r["default_step_s"], r["bare_step_s"]
    print(f"where a default step's {1000 * step:.0f} ms go (medians over the repeats; bare fwd+bwd {1000 * bare:.0f} ms):")
    named = 0.0
    for name, seconds in sorted(r["parts_s"].items(), key=lambda kv: -kv[1]):
        named += seconds
        print(f"  {name:<44} {1000 * seconds:8.1f} ms  {100 * seconds / step:5.1f}%")
    print(f"  {'the rest (loop, lr schedule, zeroing grads)':<44} {1000 * (step - named):8.1f} ms  "
          f"{100 * (step - named) / step:5.1f}%")
    print(f"start-up and teardown of a 12-step ascend call (the model passed in): {r['startup_s']:.2f} s")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--arch", default="ViT-B/32")
    p.add_argument("--memory-case")
    p.add_argument("--json", action="store_true")
    p.add_argument("--backends", action="store_true", help="engine / bare per backend (openai, openclip, hf)")
    p.add_argument("--compute", action="store_true", help="the costs and savings of the compute options")
    p.add_argument("--no-compile", action="store_true", help="with --compute: skip torch.compile (a minute or more)")
    p.add_argument("--cli", action="store_true", help="time the CLI's path (clipxai.ascend) against bare and original")
    p.add_argument("--repeats", type=int, default=5, help="with --cli: repeats, for the spread")
    args = p.parse_args()
    if args.memory_case:
        print(peak_memory_case(args.memory_case, args))
        return
    from clipxai.util.cpu import describe_cpu
    cpu = describe_cpu()
    if not args.json:
        print(cpu, flush=True)
    if args.compute:
        r = compute_figures(args)
        print(json.dumps({"cpu": cpu, **r}, indent=2)) if args.json else print_compute(r)
        return
    if args.cli:
        r = cli_path(args)
        print(json.dumps({"cpu": cpu, **r}, indent=2)) if args.json else print_cli_path(r)
        return
    if args.backends:
        r = backend_ratios(args)
        print(json.dumps({"cpu": cpu, **r}, indent=2)) if args.json else print_backend_ratios(r)
        return
    r = {"cpu": cpu, **ratios(args)}
    for case in ("bare", "engine", "zer0int", "original"):
        cmd = [sys.executable, __file__, "--memory-case", case, "--threads", str(args.threads), "--arch", args.arch]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        r[f"peak_rss_mib_{case}"] = int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(f"architecture {r['arch']} (random init), {r['threads']} thread(s), {r['steps']} timed steps each")
    print(f"engine step, 8 cutouts:        {r['engine_step_s']:.3f} s   bare fwd+bwd: {r['bare_step_s']:.3f} s")
    print(f"  engine / bare                {r['engine_over_bare']:.3f}   (target <= 1.15)")
    print(f"  snapshot every 10 overhead   {100 * r['recording_overhead']:+.1f}%   (target <= +5%)")
    print(f"zer0int preset step:           {r['zer0int_step_s']:.3f} s   original configuration: {r['original_step_s']:.3f} s")
    print(f"  original / zer0int           {r['original_over_zer0int']:.2f}x  (target >= 2x)")
    sides = ("bare", "engine", "zer0int", "original")
    print("peak RSS while stepping, model loaded (MiB): " + ", ".join(f"{c} {r[f'peak_rss_mib_{c}']}" for c in sides))


if __name__ == "__main__":
    main()
