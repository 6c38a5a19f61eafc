"""Shared look of the analysis figures: one colour per state, the same in every figure, and
text that stays legible where the report shows the figure (at 100% zoom, at least 10 px).

Figures are saved with at least twice the pixels they are shown at (``DPI``, raised for a figure
whose tight crop is narrow: crisp on high-density screens) and shown at the report
column's full width, or two to a row for the small ones (``HALF_WIDTH_IN``); the font sizes
below are chosen for those widths. Every figure is drawn inside ``figure_style``, which also
adds fonts for the prompt's non-Latin characters (``text.figure_fonts``).
"""

from __future__ import annotations

import contextlib

DPI = 280
COLUMN_PX = 1100        # the report's column at its widest, in CSS pixels (report/document.py)
FULL_WIDTH_IN = 8.0     # a figure shown across the report's column
HALF_WIDTH_IN = 4.8     # a figure shown two to a row
MIN_FONT_PT = 8.5       # smallest text in any figure: 8.5 pt of a 4.8-inch figure in half a column is ~12 px

RC = {
    "font.size": 10, "axes.titlesize": 10.5, "axes.labelsize": 10, "xtick.labelsize": 9,
    "ytick.labelsize": 9, "legend.fontsize": 9, "legend.title_fontsize": 9, "figure.titlesize": 11,
    "axes.titlelocation": "left", "axes.spines.top": False, "axes.spines.right": False,
    "savefig.dpi": DPI, "savefig.bbox": "tight", "savefig.pad_inches": 0.06,
}


def state_colors(n: int) -> list:
    """``n`` distinguishable colours (tab10, then tab20, then a continuous map)."""
    import matplotlib  # noqa: PLC0415

    if n <= 10:
        cmap = matplotlib.colormaps["tab10"]
        return [cmap(i) for i in range(n)]
    if n <= 20:
        cmap = matplotlib.colormaps["tab20"]
        return [cmap(i) for i in range(n)]
    cmap = matplotlib.colormaps["nipy_spectral"]
    return [cmap(i / max(n - 1, 1)) for i in range(n)]


@contextlib.contextmanager
def figure_style(texts=()):
    """Font sizes, fonts (DejaVu Sans, then whatever ``texts`` need) and saving for figures."""
    import matplotlib  # noqa: PLC0415

    from clipxai.analysis.draw.text import figure_fonts  # noqa: PLC0415

    with matplotlib.rc_context({**RC, "font.family": figure_fonts(texts)}):
        yield


def new_figure(width: float = 6.4, height: float = 4.0):
    """A figure and one axis, drawn off-screen (no display is needed)."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot(1, 1, 1)


def integer_axis(axis) -> None:
    """Ticks only at whole numbers (states, counts, k)."""
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    axis.set_major_locator(MaxNLocator(integer=True))


def readable_on(rgba) -> str:
    """Black or white, whichever reads better on a cell of colour ``rgba``."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"
