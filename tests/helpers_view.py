"""Run folders for the viewer tests, made by the real engine on the tiny random CLIP."""

from __future__ import annotations

import shutil
from pathlib import Path

import clipxai

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
NO_CHROMIUM = "Chromium is not installed (apt-get install -y chromium); the viewer's page tests need a real browser"


def first(runs):
    """``ascend`` returns a Run, or a list of them; the tests want the first."""
    return runs[0] if isinstance(runs, list) else runs


def make_run(out: Path, name: str, prompt: str = "a red heart", *, model: str = "random:tiny", steps: int = 12,
             snapshot_every: int = 2, seed: int = 0):
    """A complete run folder ``out/name``."""
    return first(clipxai.ascend(prompt, model=model, steps=steps, snapshot_every=snapshot_every, cutouts=2,
                                seed=seed, quiet=True, out=str(out), name=name))


def chromium() -> str | None:
    return shutil.which("chromium")
