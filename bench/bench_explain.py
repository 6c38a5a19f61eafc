"""Explaining a run against encoding its snapshots once, on a randomly initialised ViT-B/32.

    python bench/bench_explain.py [--snapshots 300] [--arch ViT-B/32] [--threads 1] [--repeat 3]

Writes a ``--snapshots``-snapshot run of 224-px images (three flat colours with noise, so the
analysis finds states) whose embeddings are the model's own, timing that encoding of the
snapshots (batches of 32, no gradients): the baseline, timed before and after the explanation
and averaged so that a change of the machine's load reaches both sides. The run is analysed (untimed), the
vocabulary's text embeddings are made once (untimed: one per model, cached on disk and shared
with the analysis' word labels; their cold cost is printed too), then ``clipxai.explain`` is
timed with its defaults: the decomposition of every snapshot, the words, the mean writes,
the ablation test of every state (100 random draws) and the heat maps, figures and
explain.json included. With ``--repeat N`` the encoding and the explanation alternate N times
(encode, explain, encode, explain, ..., encode), each explanation's ratio taken against the mean
of the encodings on either side of it, and the median ratio is reported with its range: one pair
moves by +-0.3 when the machine's load changes. Target: explain <= 3 x encode. Speed does not
depend on weight values.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

PALETTE = np.array([[0.9, 0.1, 0.1], [0.1, 0.7, 0.2], [0.1, 0.2, 0.9]])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def snapshot_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """``n`` images [n,3,size,size] in [0,1]: three colours visited in turn, each with its own noise."""
    rng = np.random.default_rng(seed)
    states = (np.arange(n) * 3 // n) % 3
    base = PALETTE[states][:, :, None, None]
    return np.clip(base + 0.15 * rng.standard_normal((n, 3, size, size)), 0, 1).astype(np.float32)


def write_run(parent: Path, images: np.ndarray, embeddings: np.ndarray, model_name: str) -> Path:
    from clipxai.runs.writer import RunWriter  # noqa: PLC0415

    n = len(images)
    manifest = {"prompt": "❤️", "prompts": [{"text": "❤️", "weight": 1.0, "kind": "text"}],
                "config": {"prompt": "❤️", "steps": n, "snapshot_every": 1}, "seed": 0,
                "model": {"name": model_name, "sha256": "bench", "embed_dim": embeddings.shape[1]}}
    w = RunWriter.create(parent, "bench-explain", manifest)
    w.allocate("steps", n, (), "int64", "step")
    w.allocate("images", n, images.shape[1:], "float16", "image")
    w.allocate("embeddings", n, embeddings.shape[1:], "float32", "embedding")
    for i in range(n):
        w.arrays["steps"][i] = i
        w.arrays["images"][i] = images[i]
        w.arrays["embeddings"][i] = embeddings[i]
        w.append_metrics({"step": i, "loss": 0.0, "sim/❤️": 0.2, "time": 0.01 * i})
    w.write_manifest(n_snapshots=n, steps_done=n, status="complete")
    w.close()
    return w.path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--snapshots", type=int, default=300)
    ap.add_argument("--arch", default="ViT-B/32")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="explanations, each between two timed encodings")
    args = ap.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("MPLBACKEND", "Agg")
    import clipxai  # noqa: PLC0415
    from clipxai.analysis.analyze import AnalyzeOptions, analyze_run  # noqa: PLC0415
    from clipxai.analysis.words.label import build_vocabulary  # noqa: PLC0415
    from clipxai.analysis.words.vocab import vocabulary_embeddings  # noqa: PLC0415
    from clipxai.models.load import load_clip  # noqa: PLC0415

    spec = f"random:{args.arch}"
    model = load_clip(spec, device="cpu")
    images = snapshot_images(args.snapshots, model.input_resolution)
    def encode_once() -> tuple[float, np.ndarray]:
        with torch.inference_mode():
            t0 = time.perf_counter()
            out = torch.cat([model.embed_images(torch.as_tensor(images[s:s + 32]))
                             for s in range(0, len(images), 32)]).float().numpy()
            return time.perf_counter() - t0, out

    with torch.inference_mode():
        model.embed_images(torch.as_tensor(images[:2]))                       # warm-up
    encodes: list[float] = []
    explains: list[tuple[float, list[tuple[float, str]], dict]] = []
    t, emb = encode_once()
    encodes.append(t)
    root = Path(tempfile.mkdtemp(prefix="bench-explain-"))
    try:
        run = write_run(root, images, emb, spec)
        words, _ = build_vocabulary(model=model)
        t0 = time.perf_counter()
        vocabulary_embeddings(model, words)
        vocab = time.perf_counter() - t0
        analyze_run(clipxai.load_run(run), AnalyzeOptions(projections=("pca",), gif=False), model=model)
        for _ in range(args.repeat):
            stages: list[tuple[float, str]] = []
            t0 = time.perf_counter()
            data = clipxai.explain(run, model=model, log=lambda msg, _s=stages: _s.append((time.perf_counter(), msg)))
            explain = time.perf_counter() - t0
            stages.append((t0 + explain, "end"))
            explains.append((explain, stages, data))
            encodes.append(encode_once()[0])   # the encoding timed again, so a change of load hits both sides
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"{args.arch} shape (random init), {args.snapshots} snapshots of {model.input_resolution} px, "
          f"{args.threads} thread(s), {cpu_name()}, load {os.getloadavg()[0]:.2f}")
    ratios = [e / ((encodes[i] + encodes[i + 1]) / 2) for i, (e, _, _) in enumerate(explains)]
    median = int(np.argsort(ratios)[len(ratios) // 2])
    explain, stages, data = explains[median]
    encode = (encodes[median] + encodes[median + 1]) / 2
    print(f"  encode the snapshots once:   {', '.join(f'{e:.1f}' for e in encodes)} s")
    print(f"  explain (defaults):          {', '.join(f'{e:.1f}' for e, _, _ in explains)} s   "
          f"{len(data['states'])} states, {data['options']['draws']} draws each, "
          f"decomposition error {data['sum_error']:.1e}")
    print(f"  vocabulary of {len(words)} words, made once per model (untimed above): {vocab:.1f} s "
          f"({'read from the cache' if vocab < 5 else 'encoded'})")
    print(f"  where the median explanation's time goes (x its encoding, {encode:.1f} s):")
    for (start, msg), (end, _) in zip(stages, stages[1:]):
        print(f"    {end - start:6.1f} s  {(end - start) / encode:4.2f}x  {msg}")
    spread = f" (range {min(ratios):.2f}-{max(ratios):.2f} over {len(ratios)})" if len(ratios) > 1 else ""
    print(f"explain / encode: {ratios[median]:.2f}{spread} (target <= 3)")


if __name__ == "__main__":
    main()
