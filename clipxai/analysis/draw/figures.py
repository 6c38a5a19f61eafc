"""Drawing every figure of one analyzed run into its analysis folder (drawing only: every
number comes computed in the ``Analysis``).

Each figure is optional (a legacy run has no metrics, a run without activations has no
layer statistics), and a chart that would have nothing to show is not drawn: a run that
stays in one state has no state changes to chart, no finished visit to time and no
transitions to count; a loss that is minus the similarity is the similarity chart again.
``draw_all`` returns the figures it drew (name -> path relative to the analysis folder) and
the ones it left out with the reason, both of which ``summary.json`` lists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipxai.analysis.draw.chart import (
    gradient_series,
    metric_series,
    plot_gradient,
    plot_loss_terms,
    plot_similarity,
)
from clipxai.analysis.draw.sheets import animated_gif, contact_sheet, even_indices, thumbnails
from clipxai.analysis.draw.style import COLUMN_PX, DPI, FULL_WIDTH_IN, HALF_WIDTH_IN, figure_style, new_figure

MIN_SNAPSHOTS_FOR_EMBEDDING = 20  # UMAP / t-SNE of fewer snapshots show nothing the PCA picture does not
SAME_AS_PER_STEP = "the per-step chart draws the same similarity at every logged step"
SAME_AS_SIMILARITY = "they are the similarity to the prompt again, up to sign"


def _save(fig, folder: Path, name: str, drawn: dict) -> None:
    """Save at ``DPI``; a figure whose tight crop left fewer than twice the pixels it is shown at (its
    share of the report's column) is drawn again at the dpi that gives them, so its text stays crisp."""
    from PIL import Image  # noqa: PLC0415

    path = folder / "figures" / f"{name}.png"
    fig.savefig(path)
    wanted = 2 * COLUMN_PX * min(1.0, fig.get_figwidth() / FULL_WIDTH_IN)
    with Image.open(path) as im:
        width = im.size[0]
    if width < wanted:
        fig.savefig(path, dpi=DPI * wanted / width * 1.01)
    drawn[name] = path.relative_to(folder).as_posix()


def _texts(analysis, names) -> list[str]:
    """Every text a figure may show, so the fonts for its characters are loaded."""
    texts = [analysis.run.prompt or ""] + list((names or {}).values())
    if analysis.concepts is not None:
        texts += list(analysis.concepts.concepts)
    texts += [k for m in analysis.metrics[:1] for k in m]
    return texts


def draw_all(analysis, folder: Path, max_thumbnails: int = 48, max_frames: int = 80) -> tuple[dict, dict]:
    """Draw the figures of an ``Analysis``: (name -> path relative to ``folder``, name -> why not drawn)."""
    names = analysis.labels.names() if analysis.labels else None
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    with figure_style(_texts(analysis, names)):
        return _draw(analysis, folder, names, max_thumbnails, max_frames)


def _draw(analysis, folder: Path, names, max_thumbnails: int, max_frames: int) -> tuple[dict, dict]:
    """Every figure in the order summary.json lists them: the states, the path, the series, the image sheets."""
    drawn: dict[str, str] = {}
    skipped: dict[str, str] = dict(analysis.oscillation.nothing_to_show())
    steps = np.asarray(analysis.run.steps, dtype=np.float64)
    _draw_states(analysis, folder, names, steps, drawn, skipped)
    _draw_trajectories(analysis, folder, names, steps, drawn, skipped)
    _draw_series(analysis, folder, drawn, skipped)
    if "images" in analysis.run.array_names():
        _draw_sheets(analysis, folder, names, steps, max_thumbnails, max_frames, drawn)
    if {"images", "importance"} <= set(analysis.run.array_names()):
        _draw_importance(analysis.run, folder, drawn)
    return drawn, {k: v for k, v in skipped.items() if k not in drawn}


def _draw_states(analysis, folder: Path, names, steps: np.ndarray, drawn: dict, skipped: dict) -> None:
    """The states over time, how long visits last, the transitions, the switch rate, recurrence and
    the choice of the number of states."""
    st, osc = analysis.states, analysis.oscillation
    if "states" not in skipped:
        fig, ax = new_figure(FULL_WIDTH_IN, 1.5 + 0.32 * osc.n_states)
        osc.plot(ax, names=names)
        _save(fig, folder, "states", drawn)
    for name, method, size in (("dwell_survival", osc.plot_survival, (HALF_WIDTH_IN, 3.4)),
                               ("transitions", osc.plot_transitions, (HALF_WIDTH_IN, 3.4)),
                               ("switch_rate_windows", osc.plot_windows, (HALF_WIDTH_IN, 3.4))):
        if name not in skipped:
            fig, ax = new_figure(*size)
            method(ax)
            _save(fig, folder, name, drawn)
    if osc.recurrence is not None:
        fig, ax = new_figure(HALF_WIDTH_IN, HALF_WIDTH_IN)
        osc.recurrence.plot(ax, steps)
        _save(fig, folder, "recurrence", drawn)
    fig, ax = new_figure(HALF_WIDTH_IN, 3.6)
    st.clusters.plot(ax, states=osc.n_states, silhouette=osc.evidence.silhouette, transient=st.transient_sizes)
    _save(fig, folder, "model_selection", drawn)


def _draw_trajectories(analysis, folder: Path, names, steps: np.ndarray, drawn: dict, skipped: dict) -> None:
    """The path through embedding space in each projection, with thumbnails of the states' representatives."""
    run, projections, reps = analysis.run, analysis.projections, analysis.representatives
    thumbs = thumbnails(run.images, list(reps.values()), 112) if "images" in run.array_names() else {}
    for method, proj in projections.items():
        name = f"trajectory_{method}"
        if method != "pca" and "pca" in projections and run.n < MIN_SNAPSHOTS_FOR_EMBEDDING:
            skipped[name] = (f"{run.n} snapshots are too few for a {method.upper()} picture; "
                             f"the PCA picture shows them all")
            continue
        fig, ax = new_figure(FULL_WIDTH_IN, 5.2)
        proj.plot(ax, steps, analysis.oscillation.states, thumbnails=thumbs, names=names)
        _save(fig, folder, name, drawn)


def _draw_series(analysis, folder: Path, drawn: dict, skipped: dict) -> None:
    """The charts over steps: similarity, loss terms, dynamics, concepts, gradient, layer statistics."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    osc, metrics, dynamics = analysis.oscillation, analysis.metrics, analysis.dynamics
    shown_osc = osc if osc.n_states > 1 else None
    if metrics:
        _, sims = metric_series(metrics, "sim/")
        shown_per_step = dynamics is not None and len(dynamics.steps) and [f"sim/{k}" for k in sims] == [dynamics.signal]
        if shown_per_step:
            skipped["similarity"] = SAME_AS_PER_STEP
        else:
            fig, ax = new_figure(FULL_WIDTH_IN, 3)
            if plot_similarity(ax, metrics, shown_osc):
                _save(fig, folder, "similarity", drawn)
        fig = Figure(figsize=(FULL_WIDTH_IN, 3.2), dpi=100, layout="constrained")
        if plot_loss_terms(fig, metrics):
            rows = len(fig.axes) // 3 + (len(fig.axes) % 3 > 0)
            fig.set_size_inches(FULL_WIDTH_IN, 0.4 + 2.6 * rows)
            _save(fig, folder, "loss_terms", drawn)
        elif metric_series(metrics, "loss")[1] or metric_series(metrics, "term/")[1]:
            skipped["loss_terms"] = SAME_AS_SIMILARITY
    if dynamics is not None and len(dynamics.steps):
        fig, ax = new_figure(FULL_WIDTH_IN, 3.2)
        dynamics.plot(ax, osc)
        _save(fig, folder, "dynamics", drawn)
    if analysis.concepts is not None:
        fig, ax = new_figure(FULL_WIDTH_IN, 1.2 + 0.32 * len(analysis.concepts.concepts))
        analysis.concepts.plot(ax)
        _save(fig, folder, "concepts", drawn)
    grad = gradient_series(analysis.run, metrics or [])
    if grad is not None and len(grad[1]):
        fig, ax = new_figure(FULL_WIDTH_IN, 3)
        plot_gradient(ax, grad, shown_osc)
        _save(fig, folder, "gradient", drawn)
    stats = analysis.activations
    if stats is not None:
        fig = Figure(figsize=stats.figure_size(), dpi=100, layout="constrained")
        stats.plot(fig)
        _save(fig, folder, "activations", drawn)


def _draw_sheets(analysis, folder: Path, names, steps: np.ndarray, max_thumbnails: int, max_frames: int,
                 drawn: dict) -> None:
    """The contact sheet, the states' thumbnails and (when asked) the animation."""
    run, states, reps = analysis.run, analysis.oscillation.states, analysis.representatives
    idx = even_indices(run.n, max_thumbnails)
    contact_sheet(run.images, steps, idx, states, names).save(folder / "figures" / "contact_sheet.png")
    drawn["contact_sheet"] = "figures/contact_sheet.png"
    contact_sheet(run.images, steps, [reps[s] for s in sorted(reps)], states, names, columns=6,
                  size=128).save(folder / "figures" / "state_thumbnails.png")
    drawn["state_thumbnails"] = "figures/state_thumbnails.png"
    if analysis.options.gif:
        animated_gif(run.images, steps, folder / "figures" / "animation.gif", states, max_frames=max_frames,
                     names=names)
        drawn["animation"] = "figures/animation.gif"


def _draw_importance(run, folder: Path, drawn: dict) -> None:
    """MACO's importance mask (``--param maco``): the last image, its accumulated gradient magnitude, and the
    image shown through the mask, as Fel et al. (2023) show what of the image the objective rests on."""
    image = np.clip(np.asarray(run.images[-1], dtype=np.float32), 0, 1).transpose(1, 2, 0)
    mask = np.asarray(run.array("importance")[-1], dtype=np.float64)
    scaled = mask / mask.max() if mask.max() > 0 else mask   # shown relative to its largest value
    from matplotlib.figure import Figure  # noqa: PLC0415

    fig = Figure(figsize=(FULL_WIDTH_IN, 2.6), dpi=100, layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, shown, title in ((axes[0], image, "image"), (axes[1], scaled, "importance (accumulated |gradient|)"),
                             (axes[2], np.concatenate([image, scaled[..., None]], axis=-1), "image through the mask")):
        ax.imshow(shown, cmap="magma" if shown.ndim == 2 else None, interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
    _save(fig, folder, "importance", drawn)
