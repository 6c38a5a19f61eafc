"""Ctrl-C during `clipxai analyze` stops it with 130 and leaves no summary.json, in a real process.

numba and llvmlite do much of UMAP's compiling inside finalizers; a Ctrl-C that lands in one is
printed as "Exception ignored in ..." and lost. The first test replaces umap by a module that
spends its time in finalizers the same way, so the interrupt is lost every time rather than
by chance; the second (slow) interrupts the real UMAP.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers_runs import write_run

from clipxai.util.interrupt import raise_if_interrupted, stop_on_interrupt

REPO = Path(__file__).resolve().parents[1]

FAKE_UMAP = '''
import os, time
import numpy as np

class _Work:
    def __del__(self):  # a finalizer doing real work, as compilers' finalizers do
        end = time.perf_counter() + 0.005
        while time.perf_counter() < end:
            pass

class UMAP:
    def __init__(self, **options):
        self.options = options

    def fit_transform(self, x):
        open(os.environ["FAKE_UMAP_STARTED"], "w").close()
        end = time.monotonic() + 6
        while time.monotonic() < end:
            _Work()
        return np.stack([np.arange(len(x)), np.zeros(len(x))], axis=1).astype(float)
'''


def _analyze(run: Path, env: dict) -> subprocess.Popen:
    """`clipxai analyze RUN --projection umap` in its own process, Ctrl-C delivered as in a terminal."""
    return subprocess.Popen(
        [sys.executable, "-c", "from clipxai.cli.commands import entry; entry()", "analyze", str(run),
         "--projection", "umap", "--no-labels", "--no-gif"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a test run started in the background inherits an ignored SIGINT; a terminal's job does not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _env(*paths) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, paths), str(REPO),
                                                         os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def _assert_stopped(proc, run: Path):
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    folder = run / "analysis"
    assert not (folder / "summary.json").exists()
    assert not [p for p in folder.rglob("*") if p.name.endswith(".tmp")] if folder.exists() else True
    for word in ("Traceback", "Exception ignored", "unexpected"):
        assert word not in err, err


def test_ctrl_c_lost_by_a_library_still_stops_analyze(tmp_path):
    fake = tmp_path / "fake"
    (fake / "umap").mkdir(parents=True)
    (fake / "umap" / "__init__.py").write_text(textwrap.dedent(FAKE_UMAP))
    run = write_run(tmp_path / "runs", "r", n=60)
    started = tmp_path / "umap-started"
    proc = _analyze(run, {**_env(fake), "FAKE_UMAP_STARTED": str(started)})
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), proc.communicate()[1]
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _assert_stopped(proc, run)
    finally:
        proc.kill()


@pytest.mark.slow
def test_ctrl_c_during_the_real_umap_stops_analyze(tmp_path):
    run = write_run(tmp_path / "runs", "r", n=300)
    proc = _analyze(run, {**_env(), "NUMBA_CACHE_DIR": str(tmp_path / "numba")})  # cold: UMAP compiles
    try:
        deadline = time.monotonic() + 120
        seen = ""
        while "projecting with umap" not in seen and proc.poll() is None and time.monotonic() < deadline:
            seen += proc.stderr.readline()
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        _assert_stopped(proc, run)
    finally:
        proc.kill()


@pytest.fixture()
def ctrl_c():
    """Python's own Ctrl-C handler, even when the tests run as a background job (SIGINT ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_the_block_raises_an_interrupt_a_library_swallowed(ctrl_c):
    with pytest.raises(KeyboardInterrupt):
        with stop_on_interrupt():
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                pass  # what a careless library does; the block goes on
            with pytest.raises(KeyboardInterrupt):
                raise_if_interrupted()  # a safe point says so at once
    raise_if_interrupted()  # outside any block nothing is pending
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_error_caused_by_the_lost_interrupt_is_reported_as_the_interrupt(ctrl_c):
    with pytest.raises(KeyboardInterrupt):
        with stop_on_interrupt():
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                raise RuntimeError("no compiled object yet") from None


def test_an_ignored_ctrl_c_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_on_interrupt():
            signal.raise_signal(signal.SIGINT)
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)
