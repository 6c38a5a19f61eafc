"""Drawing every figure of one analysed run into its analysis folder (drawing only: every
number comes computed in the ``Analysis``).

Each figure is optional (a legacy run has no metrics, a run without activations has no
layer statistics); ``draw_all`` returns name -> path relative to the analysis folder for
the ones it drew, which ``summary.json`` lists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .chart import gradient_series, plot_gradient, plot_loss_terms, plot_similarity
from .sheets import animated_gif, contact_sheet, even_indices, thumbnails
from .style import new_figure


def _save(fig, folder: Path, name: str, drawn: dict) -> None:
    path = folder / "figures" / f"{name}.png"
    fig.savefig(path, dpi=100)
    drawn[name] = path.relative_to(folder).as_posix()


def draw_all(analysis, folder: Path, max_thumbnails: int = 48, max_frames: int = 80) -> dict:
    """Draw the figures of an ``Analysis``; returns name -> path relative to ``folder``."""

    from matplotlib.figure import Figure  # noqa: PLC0415

    run, st, osc, reps = analysis.run, analysis.states, analysis.oscillation, analysis.representatives
    projections, concepts, metrics = analysis.projections, analysis.concepts, analysis.metrics
    names = analysis.labels.names() if analysis.labels else None
    gif = analysis.options.gif
    dynamics = analysis.dynamics
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    drawn: dict[str, str] = {}
    steps = np.asarray(run.steps, dtype=np.float64)
    states = osc.states
    has_images = "images" in run.array_names()

    fig, ax = new_figure(8, 2.8)
    osc.plot(ax)
    fig.tight_layout()
    _save(fig, folder, "states", drawn)
    for name, method, size in (("dwell_survival", osc.plot_survival, (5, 3.5)),
                               ("transitions", osc.plot_transitions, (4.5, 4)),
                               ("switch_rate_windows", osc.plot_windows, (4.5, 3.2))):
        fig, ax = new_figure(*size)
        method(ax)
        fig.tight_layout()
        _save(fig, folder, name, drawn)
    if osc.recurrence is not None:
        fig, ax = new_figure(5, 5)
        osc.recurrence.plot(ax, steps)
        fig.tight_layout()
        _save(fig, folder, "recurrence", drawn)
    fig, ax = new_figure(4.5, 3.2)
    st.clusters.plot(ax, states=osc.n_states, silhouette=osc.evidence.silhouette, transient=st.transient_sizes)
    fig.tight_layout()
    _save(fig, folder, "model_selection", drawn)

    thumbs = thumbnails(run.images, list(reps.values()), 64) if has_images else {}
    for method, proj in projections.items():
        fig, ax = new_figure(7, 5.5)
        proj.plot(ax, steps, states, thumbnails=thumbs, names=names)
        fig.tight_layout()
        _save(fig, folder, f"trajectory_{method}", drawn)

    if metrics:
        fig, ax = new_figure(8, 3)
        if plot_similarity(ax, metrics, osc):
            fig.tight_layout()
            _save(fig, folder, "similarity", drawn)
        fig = Figure(figsize=(9, 5), dpi=100)
        if plot_loss_terms(fig, metrics):
            _save(fig, folder, "loss_terms", drawn)
    if dynamics is not None and len(dynamics.steps):
        fig, ax = new_figure(8, 3)
        dynamics.plot(ax)
        fig.tight_layout()
        _save(fig, folder, "dynamics", drawn)
    if concepts is not None:
        fig, ax = new_figure(8, 0.8 + 0.35 * len(concepts.concepts))
        concepts.plot(ax)
        fig.tight_layout()
        _save(fig, folder, "concepts", drawn)
    grad = gradient_series(run, metrics or [])
    if grad is not None and len(grad[1]):
        fig, ax = new_figure(8, 3)
        plot_gradient(ax, grad, osc)
        fig.tight_layout()
        _save(fig, folder, "gradient", drawn)
    stats = analysis.activations
    if stats is not None:
        fig = Figure(figsize=(12, 0.6 + 0.25 * max(len(stats.layers), 8)), dpi=100)
        stats.plot(fig)
        _save(fig, folder, "activations", drawn)

    if has_images:
        idx = even_indices(run.n, max_thumbnails)
        contact_sheet(run.images, steps, idx, states, names).save(folder / "figures" / "contact_sheet.png")
        drawn["contact_sheet"] = "figures/contact_sheet.png"
        contact_sheet(run.images, steps, [reps[s] for s in sorted(reps)], states, names, columns=6,
                      size=128).save(folder / "figures" / "state_thumbnails.png")
        drawn["state_thumbnails"] = "figures/state_thumbnails.png"
        if gif:
            animated_gif(run.images, steps, folder / "figures" / "animation.gif", states, max_frames=max_frames)
            drawn["animation"] = "figures/animation.gif"
    return drawn
