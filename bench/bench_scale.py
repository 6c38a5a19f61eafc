"""What a big sweep and a big folder of runs cost: planning, resuming and the atlas of a sweep, and
listing its runs (``clipxai runs``, the viewer's runs page), at three sizes with the fitted exponent.

    python bench/bench_scale.py [--part sweep,listing] [--sweep-sizes 10,100,1000]
                                [--listing-sizes 100,1000,10000] [--requests 20] [--keep DIR]

Both parts fake their run folders: running 1,000 ascents (and analysing them) would take
longer than everything timed here, and what is timed reads only the folders.

- ``sweep``: a spec of N rows (prompt x lr x seed, the toy CLIP, 12 steps). One real tiny run is
  made with ``clipxai.ascend`` and analysed once (PCA, no GIF); every row's folder is a copy
  of it (its run.json names the row's prompt). Timed: **planning** a fresh sweep (spec
  read, expanded, checked, every folder read, units planned, sweep.json written, nothing
  run), **resume of a half-done sweep** (N/2 rows complete: the same, up to the units left),
  **resume of a finished sweep** (``run_sweep``, N of N complete; and again with its
  sweep.json removed, rebuilt from the folders), and the **atlas** (``build_atlas``: every
  run's summary, final image, state images, atlas.csv and atlas.html).
- ``listing``: N complete run folders side by side (a real run's snapshots hard-linked
  into each, its run.json rewritten), half of them analysed (a summary.json). Timed:
  ``clipxai runs DIR`` as a user types it (a fresh interpreter, the table printed; first with
  nothing cached, then again with the rows the first listing kept, ``clipxai.runs.rowcache``), and the
  viewer's runs page: the first page's HTML and ``/api/runs`` (first page of rows), on a fresh
  server (cold) and over ``--requests`` repeats (median, p95).

Every figure comes with the load average; the CPU is named first. The exponent is the slope
of log(time) against log(size) over the three sizes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clipxai.util.cpu import describe_cpu  # noqa: E402

PROMPTS = ["❤️", "love", "a red heart", "a dog", "a cat", "the sea", "a tree", "a house", "fire", "a star",
           "rain", "a car", "a bird", "a face", "a hand", "a boat", "snow", "a key", "a map", "a lamp"]


def load() -> str:
    return f"load {os.getloadavg()[0]:.2f}"


def exponent(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(seconds) on log(size)."""
    xs, ys = [math.log(s) for s in sizes], [math.log(max(t, 1e-6)) for t in seconds]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def report(title: str, sizes: list[int], table: dict[str, list[float]], targets: dict[str, float]) -> None:
    print(f"\n{title}")
    print(f"  {'stage':<44}" + "".join(f"{n:>10,}" for n in sizes) + "   exponent  target at the largest")
    for stage, secs in table.items():
        target = targets.get(stage)
        verdict = "" if target is None else f"<= {target:g} s: {'ok' if secs[-1] <= target else 'SLOW'}"
        slope = f"{exponent(sizes, secs):9.2f}" if len(sizes) >= 2 else " " * 9
        print(f"  {stage:<44}" + "".join(f"{s:9.3f}s" for s in secs) + f"  {slope}  {verdict}")


# ----------------------------------------------------------------------------------------------
# A sweep of N tiny runs

def sweep_spec(name: str, n: int) -> str:
    seeds = 10 if n >= 10 else n
    rest = n // seeds
    prompts = PROMPTS[: min(len(PROMPTS), rest)]
    lrs = [round(0.01 + 0.002 * i, 4) for i in range(max(1, rest // len(prompts)))]
    assert len(prompts) * len(lrs) * seeds == n, (n, len(prompts), len(lrs), seeds)
    return (f'name = "{name}"\n[grid]\nprompt = {json.dumps(prompts, ensure_ascii=False)}\nlr = {lrs}\n'
            f'seed = {list(range(seeds))}\n[ascend]\nmodel = "toy"\nsteps = 12\ncutouts = 2\nsnapshot_every = 1\n'
            f'[analyze]\nprojections = ["pca"]\ngif = false\n')


def template_run(root: Path) -> Path:
    """One real tiny toy run, analysed: the folder every faked row copies."""
    import clipxai
    from clipxai.analysis.analyze import AnalyzeOptions, analyze

    run = clipxai.ascend("a red heart", model="toy", steps=12, cutouts=2, snapshot_every=1, quiet=True,
                         out=str(root), name="template")[0]
    analyze(run, AnalyzeOptions(projections=("pca",), gif=False)).write()
    return run.path


def fake_rows(template: Path, runs_dir: Path, rows, analysed: bool) -> None:
    """Each row's folder: the template's files (hard links), its run.json naming the row's prompt."""
    manifest = json.loads((template / "run.json").read_text(encoding="utf-8"))
    for row in rows:
        dest = runs_dir / row.folder
        shutil.copytree(template, dest, copy_function=os.link,
                        ignore=shutil.ignore_patterns(".lock", *(() if analysed else ("analysis",))))
        (dest / "run.json").unlink()
        (dest / "run.json").write_text(json.dumps({**manifest, "prompt": row.prompt}, ensure_ascii=False),
                                       encoding="utf-8")


def plan_only(spec_path: Path, out: Path) -> int:
    """The driver's steps up to the units (spec, checks, lock, folders read, plan, sweep.json): nothing runs."""
    from clipxai.sweep.driver import canonical, expand, load_spec, plan, validate
    from clipxai.sweep.lock import SweepLock
    from clipxai.sweep.state import SweepState

    spec = load_spec(spec_path)
    rows = expand(spec)
    configs = validate(spec, rows)
    steps = {row.folder: configs[canonical(row.options)].optim.steps for row in rows}
    folder = out / spec.name
    with SweepLock(folder):
        state = SweepState(folder, spec, rows)
        units = plan(rows, state.reconcile(), spec.max_batch, steps)
        state.save("local")
    return len(units)


def sweep_part(sizes: list[int], root: Path) -> None:
    from clipxai.sweep import run_sweep
    from clipxai.sweep.atlas import build_atlas
    from clipxai.sweep.spec import expand, load_spec

    t, template = timed(lambda: template_run(root / "template"))
    print(f"template run (12 toy steps, 12 snapshots) made and analysed in {t:.1f} s ({load()})")
    table: dict[str, list[float]] = {k: [] for k in (
        "plan a fresh sweep", "resume: half done (plan the rest)", "resume: all complete (run_sweep)",
        "resume: all complete, sweep.json rebuilt", "atlas (build_atlas)")}
    quiet = open(os.devnull, "w")
    for n in sizes:
        out = root / f"sweeps-{n}"
        spec_path = root / f"sweep-{n}.toml"
        spec_path.write_text(sweep_spec(f"grid-{n}", n), encoding="utf-8")
        rows = expand(load_spec(spec_path))
        runs_dir = out / f"grid-{n}" / "runs"
        t, units = timed(lambda: plan_only(spec_path, out))
        table["plan a fresh sweep"].append(t)
        t, _ = timed(lambda: fake_rows(template, runs_dir, rows[: n // 2], analysed=True))
        print(f"  {n} rows: fresh plan {units} units; half the folders faked in {t:.1f} s ({load()})")
        t, units = timed(lambda: plan_only(spec_path, out))
        table["resume: half done (plan the rest)"].append(t)
        fake_rows(template, runs_dir, rows[n // 2:], analysed=True)
        plan_only(spec_path, out)          # sweep.json now records every row complete
        t, outcome = timed(lambda: run_sweep(spec_path, out=out, stream=quiet))
        assert outcome.exit_code == 0 and outcome.counts == {"complete": n}, outcome
        table["resume: all complete (run_sweep)"].append(t)
        (out / f"grid-{n}" / "sweep.json").unlink()
        t, outcome = timed(lambda: run_sweep(spec_path, out=out, stream=quiet))
        assert outcome.exit_code == 0 and outcome.counts == {"complete": n}, outcome
        table["resume: all complete, sweep.json rebuilt"].append(t)
        t, atlas = timed(lambda: build_atlas(out / f"grid-{n}", out / "atlas"))
        assert sum(e.summary is not None for e in atlas.entries) == n
        table["atlas (build_atlas)"].append(t)
        print(f"  {n} rows: half-done plan {units} units; atlas.html {atlas.html.stat().st_size / 1e6:.1f} MB "
              f"({load()})", flush=True)
    report(f"a sweep of N tiny runs (faked folders; {load()})", sizes, table,
           {"resume: all complete (run_sweep)": 5.0, "atlas (build_atlas)": 60.0})


# ----------------------------------------------------------------------------------------------
# Listing N run folders

def listing_folder(template: Path, folder: Path, n: int) -> None:
    manifest = json.loads((template / "run.json").read_text(encoding="utf-8"))
    summary = template / "analysis" / "summary.json"
    for i in range(n):
        dest = folder / f"20260101-{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}-run-{i:05d}"
        shutil.copytree(template, dest, copy_function=os.link, ignore=shutil.ignore_patterns(".lock", "analysis"))
        (dest / "run.json").unlink()
        created = f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00"
        (dest / "run.json").write_text(json.dumps({**manifest, "prompt": PROMPTS[i % len(PROMPTS)],
                                                   "created": created}, ensure_ascii=False), encoding="utf-8")
        if i % 2:
            (dest / "analysis").mkdir()
            os.link(summary, dest / "analysis" / "summary.json")


def get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status}")
    return body


def first_page(conn) -> tuple[float, int, int]:
    """Seconds to fetch the runs page and its first page of rows; rows shown, runs in all."""
    t0 = time.perf_counter()
    get(conn, "/")
    data = json.loads(get(conn, "/api/runs?limit=100"))
    return time.perf_counter() - t0, len(data["runs"]), data.get("total", len(data["runs"]))


def listing_part(sizes: list[int], root: Path, requests: int) -> None:
    from clipxai.cli.view import serving
    from clipxai.view import create_app

    template = root / "template" / "template"
    if not template.is_dir():
        template = template_run(root / "template")
    table: dict[str, list[float]] = {k: [] for k in (
        "clipxai runs DIR (fresh interpreter)", "clipxai runs DIR again (rows cached)",
        "viewer first page, cold (fresh server)",
        "viewer first page, median", "viewer first page, p95")}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLIPXAI_CACHE": str(root / "cache")}   # nothing cached yet
    for n in sizes:
        folder = root / f"listing-{n}"
        t, _ = timed(lambda: listing_folder(template, folder, n))
        print(f"  {n} run folders written in {t:.1f} s ({load()})", flush=True)
        time.sleep(2.1)   # runs finished a while ago: a file changed within 2 s is never cached (rowcache.RACY_NS)
        for key in ("clipxai runs DIR (fresh interpreter)", "clipxai runs DIR again (rows cached)"):
            t, done = timed(lambda: subprocess.run([sys.executable, "-m", "clipxai.cli", "runs", str(folder)],
                                                   env=env, capture_output=True, text=True))
            assert done.returncode == 0, done.stderr[-2000:]
            listed = len(done.stdout.splitlines()) - 1
            table[key].append(t)
        with serving(create_app(folder)) as url:
            host = urlsplit(url)
            conn = http.client.HTTPConnection(host.hostname, host.port)
            cold, shown, total = first_page(conn)
            warm = sorted(first_page(conn)[0] for _ in range(requests))
        table["viewer first page, cold (fresh server)"].append(cold)
        table["viewer first page, median"].append(statistics.median(warm))
        table["viewer first page, p95"].append(warm[min(len(warm) - 1, math.ceil(0.95 * len(warm)) - 1)])
        print(f"  {n} runs: `clipxai runs` listed {listed}; the viewer's first page {shown} rows of {total} "
              f"({load()})", flush=True)
    report(f"listing N run folders ({load()})", sizes, table,
           {"clipxai runs DIR (fresh interpreter)": 3.0, "viewer first page, p95": 0.3})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="sweep,listing")
    parser.add_argument("--sweep-sizes", default="10,100,1000")
    parser.add_argument("--listing-sizes", default="100,1000,10000")
    parser.add_argument("--requests", type=int, default=20, help="repeats of the viewer's first page")
    parser.add_argument("--keep", type=Path, default=None, help="write the folders here and keep them")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(describe_cpu())
    print(f"threads 1; {load()}", flush=True)
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        parts = args.part.split(",")
        if "sweep" in parts:
            sweep_part([int(s) for s in args.sweep_sizes.split(",")], root)
        if "listing" in parts:
            listing_part([int(s) for s in args.listing_sizes.split(",")], root, args.requests)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
