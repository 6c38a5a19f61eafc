"""Shared look of the analysis figures: one colour per state, the same in every figure."""

from __future__ import annotations


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


def new_figure(width: float = 6.4, height: float = 4.0):
    """A figure and one axis, drawn off-screen (no display is needed)."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(width, height), dpi=100)
    return fig, fig.add_subplot(1, 1, 1)
