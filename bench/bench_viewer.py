"""Speed of the run viewer on a long run: opening its page, and each frame while scrubbing.

    python bench/bench_viewer.py [--snapshots 4000] [--size 224] [--snapshot-every 1] [--frames 200] [--keep DIR]

Writes a run folder of ``--snapshots`` snapshots of ``--size`` px images (format 1, written
directly: run.json, metrics.jsonl, memory-mapped snapshots/*.npy), serves it with
``clipxai view``'s application on a local port, and times over HTTP, one connection as a
browser keeps:

- opening the run page: the HTML, its scripts and stylesheet, the run's data
  (/api/run: steps, similarity series, analysis) and the first frame: everything the first
  paint needs (the 2-D map comes after it and is timed on its own); first after the server
  starts (cold: the run is opened), then the median of 5 (warm);
- frame latency: ``--frames`` random snapshots, median and 95th percentile;
- with Chromium installed, the same page in a headless browser, on a fresh server: from
  navigation until the first image is on screen, and until the page is complete.

The run's files are in the page cache (just written), as they are for a run being watched.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from numpy.lib.format import open_memmap  # noqa: E402

from clipxai.cli.view import serving  # noqa: E402
from clipxai.view import create_app  # noqa: E402

PAGE_ASSETS = ["/static/style.css", "/static/common.js", "/static/chart.js", "/static/run.js"]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def write_run(folder: Path, n: int, size: int, dim: int = 512, snapshot_every: int = 1) -> None:
    """A complete format-1 run folder of ``n`` snapshots: a slowly changing image and a random-walk embedding."""
    rng = np.random.default_rng(0)
    (folder / "snapshots").mkdir(parents=True)
    arrays = {"steps": ((n,), "int64"), "images": ((n, 3, size, size), "float16"), "embeddings": ((n, dim), "float32")}
    out = {k: open_memmap(folder / "snapshots" / f"{k}.npy", mode="w+", dtype=d, shape=s)
           for k, (s, d) in arrays.items()}
    out["steps"][:] = np.arange(n) * snapshot_every
    a, b = rng.random((2, 3, size, size), dtype=np.float32)
    for start in range(0, n, 256):
        t = (np.arange(start, min(n, start + 256)) / max(1, n - 1)).astype(np.float32)[:, None, None, None]
        out["images"][start:start + len(t)] = (1 - t) * a + t * b
    out["embeddings"][:] = np.cumsum(rng.standard_normal((n, dim)).astype(np.float32), axis=0)
    for arr in out.values():
        arr.flush()
    steps = n * snapshot_every
    with open(folder / "metrics.jsonl", "w", encoding="utf-8") as f:
        for s in range(steps):
            sim = 0.2 + 0.1 * np.tanh(s / 500) + 0.01 * np.sin(s / 7)
            f.write(json.dumps({"step": s, "loss": -sim, "objective": sim, "sim/❤️": sim, "time": s * 0.1}) + "\n")
    manifest = {
        "format_version": 1, "status": "complete", "prompt": "❤️",
        "prompts": [{"text": "❤️", "weight": 1.0, "kind": "text"}], "model": {"name": "random:ViT-B/32"},
        "steps_total": steps, "steps_done": steps, "n_snapshots": n, "created": "2026-01-01T00:00:00+00:00",
        "arrays": {k: {"file": f"snapshots/{k}.npy", "shape": list(s), "dtype": d, "meaning": k}
                   for k, (s, d) in arrays.items()},
    }
    (folder / "run.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")


def get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status}")
    return body


def open_page(conn, run_id: str) -> float:
    """Seconds to fetch everything the run page's first paint needs."""
    t0 = time.perf_counter()
    get(conn, f"/run?id={run_id}")
    for asset in PAGE_ASSETS:
        get(conn, asset)
    data = json.loads(get(conn, f"/api/run?id={run_id}"))
    get(conn, f"/api/frame?id={run_id}&i={len(data['steps']) - 1}")
    return time.perf_counter() - t0


def browser_open(url: str) -> tuple[float, float] | None:
    """Seconds from navigation until the first image is on screen, and until the page is complete
    (run data drawn, the scrubber's frame shown), in headless Chromium; None without it."""
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright  # noqa: PLC0415
    except ImportError:
        return None
    if chromium is None:
        return None
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url.replace("/run?", "/?"))   # warm the browser itself on another page
        t0 = time.perf_counter()
        page.goto(url, wait_until="commit")
        while not page.evaluate("(document.querySelector('#frame') || {}).naturalWidth > 0"):
            time.sleep(0.002)
        first = time.perf_counter() - t0
        page.wait_for_selector("#frame[data-index]")
        ready = time.perf_counter() - t0
        browser.close()
    return first, ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=4000)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--snapshot-every", type=int, default=1)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--keep", help="write the run here and keep it")
    args = parser.parse_args()
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)

    parent = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-viewer-"))
    folder = parent / "long-run"
    try:
        t0 = time.perf_counter()
        if not (folder / "run.json").exists():
            write_run(folder, args.snapshots, args.size, snapshot_every=args.snapshot_every)
        print(f"run: {args.snapshots} snapshots of 3x{args.size}x{args.size} float16, "
              f"{args.snapshots * args.snapshot_every} metric lines ({time.perf_counter() - t0:.1f} s to write); "
              f"{os.cpu_count()} CPUs")
        with serving(create_app(parent)) as url:
            host = urlsplit(url)
            conn = http.client.HTTPConnection(host.hostname, host.port)
            cold = open_page(conn, "long-run")
            warm = statistics.median(open_page(conn, "long-run") for _ in range(5))
            t1 = time.perf_counter()
            get(conn, "/api/projection?id=long-run")
            map_seconds = time.perf_counter() - t1
            rng = np.random.default_rng(1)
            latencies = []
            for i in rng.integers(0, args.snapshots, args.frames):
                t1 = time.perf_counter()
                get(conn, f"/api/frame?id=long-run&i={i}")
                latencies.append(time.perf_counter() - t1)
            latencies_ms = np.array(latencies) * 1000
            print(f"open run page (HTML + scripts + /api/run + first frame): cold {cold * 1000:.0f} ms, "
                  f"warm median {warm * 1000:.0f} ms (target < 1000 ms)")
            print(f"2-D map (/api/projection, after first paint): {map_seconds * 1000:.0f} ms")
            print(f"frame latency over {args.frames} random snapshots: median {np.median(latencies_ms):.1f} ms, "
                  f"p95 {np.percentile(latencies_ms, 95):.1f} ms, max {latencies_ms.max():.1f} ms (target < 100 ms)")
        with serving(create_app(parent)) as url:   # a fresh server: nothing of the run cached yet
            seconds = browser_open(f"{url}/run?id=long-run")
            if seconds is not None:
                print(f"headless Chromium, fresh server, from navigation: first image on screen "
                      f"{seconds[0] * 1000:.0f} ms, page complete (data drawn, scrubber on the last snapshot) "
                      f"{seconds[1] * 1000:.0f} ms")
    finally:
        if not args.keep:
            shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
