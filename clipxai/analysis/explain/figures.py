"""The explanation's figures: each state's top components as bars, and where in its typical snapshot the
prompt's similarity is written (the heads' per-patch contributions over the image).

Each figure is written through a temporary sibling and renamed into place, at twice the pixels the
report shows it at, as the analysis' own figures are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipxai.analysis.draw.style import COLUMN_PX, DPI, FULL_WIDTH_IN, HALF_WIDTH_IN, figure_style, state_colors
from clipxai.util.files import atomic_path

TOP_FIGURE = "explain_top"


def _save(fig, path: Path) -> None:
    """Save ``fig`` at ``path`` (PNG) with at least twice the pixels of its share of the report's column."""
    from PIL import Image  # noqa: PLC0415

    wanted = 2 * COLUMN_PX * min(1.0, fig.get_figwidth() / FULL_WIDTH_IN)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
        with Image.open(tmp) as im:
            width = im.size[0]
        if width < wanted:
            fig.savefig(tmp, format="png", dpi=DPI * wanted / width * 1.01)


def _label(entry: dict, words: int = 2) -> str:
    said = ", ".join(entry.get("words", [])[:words])
    return f"{entry['component']}" + (f"  ({said})" if said else "")


def draw_top(states: list[dict], path: Path, texts=()) -> None:
    """One panel per state: its top components' mean contributions to the similarity, with 95% intervals."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    colors = state_colors(max((s["state"] for s in states), default=0) + 1)
    rows = max((len(s["top"]) for s in states), default=1)
    with figure_style(list(texts) + [w for s in states for t in s["top"] for w in t.get("words", [])[:2]]):
        fig = Figure(figsize=(FULL_WIDTH_IN, 0.6 + (0.32 * rows + 0.5) * len(states)), dpi=100, layout="constrained")
        axes = fig.subplots(len(states), 1, squeeze=False)[:, 0]
        for ax, s in zip(axes, states):
            top = s["top"][::-1]
            y = np.arange(len(top))
            mean = np.array([t["contribution"] for t in top])
            lo = mean - np.array([t["ci95"][0] for t in top])
            hi = np.array([t["ci95"][1] for t in top]) - mean
            ax.barh(y, mean, xerr=[np.maximum(lo, 0), np.maximum(hi, 0)], color=colors[s["state"]], capsize=2)
            ax.set_yticks(y, [_label(t) for t in top])
            ax.axvline(0, color="0.3", lw=0.6)
            ax.set_title(f"state {s['state']} ({s['snapshots']} snapshots, similarity {s['similarity']:.3f})")
        axes[-1].set_xlabel("contribution to the similarity with the prompt (mean, 95% interval)")
        _save(fig, path)


def draw_map(image: np.ndarray, grid: np.ndarray, path: Path, title: str) -> None:
    """The snapshot ``image`` [3,H,W] with the per-patch contributions ``grid`` [g, g] laid over it."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    picture = np.clip(np.asarray(image, dtype=np.float32), 0, 1).transpose(1, 2, 0)
    h, w = picture.shape[:2]
    limit = float(np.abs(grid).max()) or 1.0
    with figure_style([title]):
        fig = Figure(figsize=(HALF_WIDTH_IN, HALF_WIDTH_IN * 0.8), dpi=100, layout="constrained")
        ax = fig.add_subplot(1, 1, 1)
        ax.imshow(picture, extent=(0, w, h, 0))
        shown = ax.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.55, extent=(0, w, h, 0),
                          interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title)
        fig.colorbar(shown, ax=ax, shrink=0.8, label="contribution to the similarity")
        _save(fig, path)
