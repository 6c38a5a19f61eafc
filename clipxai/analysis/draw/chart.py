"""Charts over optimisation steps: prompt similarity, concept probes, loss terms, gradient
norm, and per-layer activation statistics (with the real step on the x-axis).

Each chart function draws on an axis (or a figure, for small multiples) from plain arrays;
the result objects (``ActivationStats``, ``ConceptSimilarity``) also give ``to_dict()``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from clipxai.analysis.draw.sheets import even_indices
from clipxai.analysis.draw.thin import envelope, state_spans
from clipxai.analysis.states.features import layer_names
from clipxai.errors import ClipxaiError


def metric_series(metrics: list[dict], prefix: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Steps and one array per metric key starting with ``prefix`` (name without the prefix)."""
    keys = sorted(k for k in set().union(*metrics) if k.startswith(prefix))
    rows = [m for m in metrics if "step" in m]
    steps = np.array([m["step"] for m in rows], dtype=np.float64)
    return steps, {k[len(prefix):]: np.array([float(m.get(k, np.nan)) for m in rows]) for k in keys}


def shade_states(ax, osc) -> None:
    """Colour the background of a step-axis chart by the state the run was in."""
    from clipxai.analysis.draw.style import state_colors  # noqa: PLC0415

    if osc is None:
        return
    seg = osc.segments
    start = np.asarray(osc.steps, dtype=np.float64)[seg.start]
    state_spans(ax, start, start + seg.dwell, seg.state, state_colors(osc.n_states))


def plot_similarity(ax, metrics: list[dict], osc=None) -> bool:
    """Cosine similarity to each prompt over steps; False when the run logged none."""
    from clipxai.analysis.draw.text import label  # noqa: PLC0415

    steps, sims = metric_series(metrics, "sim/")
    if not sims:
        return False
    shade_states(ax, osc)
    for text, values in sims.items():
        ax.plot(*envelope(steps, values), lw=1, label=label(text, 40))
    ax.set_xlabel("step")
    ax.set_ylabel("cosine similarity")
    ax.set_title("similarity to the prompts" + (" (background: state)" if osc is not None else ""))
    ax.legend()
    return True


def _mirrors(values: np.ndarray, others: list[np.ndarray]) -> bool:
    """Whether ``values`` is one of ``others`` up to sign, scale and offset (the same curve)."""
    ok = np.isfinite(values)
    for ref in others:
        both = ok & np.isfinite(ref)
        if both.sum() < 3 or np.std(values[both]) == 0 or np.std(ref[both]) == 0:
            continue
        if abs(np.corrcoef(values[both], ref[both])[0, 1]) > 0.9999:
            return True
    return False


def loss_panels(metrics: list[dict]) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
    """(steps, panels, left out): the loss and every term, less those that only mirror the
    similarity to a prompt (with one cosine term, the loss is minus the similarity)."""
    steps, terms = metric_series(metrics, "term/")
    _, loss = metric_series(metrics, "loss")
    _, sims = metric_series(metrics, "sim/")
    panels = ({"loss": loss[""]} if "" in loss else {}) | terms
    refs = list(sims.values())
    mirrored = [name for name, values in panels.items() if _mirrors(values, refs)]
    return steps, {k: v for k, v in panels.items() if k not in mirrored}, mirrored


def plot_loss_terms(fig, metrics: list[dict]) -> bool:
    """Small multiples: the loss and every objective term over steps, except those that are the
    similarity again (named in the figure's title); False when nothing is left."""
    from clipxai.analysis.draw.text import label, plain  # noqa: PLC0415

    steps, panels, mirrored = loss_panels(metrics)
    if not panels:
        return False
    cols = min(3, len(panels))
    rows = int(np.ceil(len(panels) / cols))
    for j, (name, values) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, j + 1)
        ax.plot(*envelope(steps, values), lw=1)
        ax.set_title(label(name, 40))
        ax.set_xlabel("step")
    if mirrored:
        fig.suptitle("left out, the same curve as the similarity: " + plain(", ".join(mirrored))[:90],
                     x=0.01, ha="left", fontsize=9.5)
    return True


def gradient_series(run, metrics: list[dict]) -> tuple[np.ndarray, np.ndarray, str] | None:
    """(steps, values, label): the logged gradient norm, else one computed from the gradient arrays."""
    steps, g = metric_series(metrics, "grad_norm")
    if "" in g:
        return steps, g[""], "gradient norm (parameters)"
    if "gradients" not in run.array_names():
        return None
    grads = run.gradients
    values = np.concatenate([
        np.linalg.norm(np.asarray(grads[i:i + 64], dtype=np.float32).reshape(min(64, len(grads) - i), -1), axis=1)
        for i in range(0, len(grads), 64)]) if len(grads) else np.empty(0)
    label = "gradient norm (image)"
    if run.layout == "legacy":
        label = "norm of the min-max normalised gradient file (legacy: relative only)"
    return np.asarray(run.steps, dtype=np.float64), values, label


def plot_gradient(ax, series, osc=None) -> None:
    steps, values, label = series
    shade_states(ax, osc)
    ax.plot(*envelope(steps, values), lw=1, color="tab:red")
    ax.set_yscale("log" if np.all(values > 0) and values.max() / max(values.min(), 1e-30) > 100 else "linear")
    ax.set_xlabel("step")
    ax.set_ylabel(label if len(label) < 30 else label.replace(" (", "\n("))
    ax.set_title("gradient over the run")


# ---------------------------------------------------------------------------------------

@dataclass
class ActivationStats:
    """Per layer and snapshot: mean, standard deviation and largest absolute activation."""

    layers: list[str]
    steps: np.ndarray
    mean: np.ndarray      # (L, M)
    std: np.ndarray
    absmax: np.ndarray

    def to_dict(self) -> dict:
        return {"layers": self.layers, "snapshots": int(len(self.steps)),
                "mean_over_run": dict(zip(self.layers, self.mean.mean(axis=1).round(6).tolist())),
                "std_over_run": dict(zip(self.layers, self.std.mean(axis=1).round(6).tolist()))}

    def plot(self, fig) -> None:
        """Heatmaps of mean and std (layer x step) side by side, the std of each layer as lines below."""
        extent = (self.steps[0], self.steps[-1], len(self.layers) - 0.5, -0.5)
        grid = fig.add_gridspec(2, 2, height_ratios=[self._heat_height(), 2.6])
        for j, (name, values) in enumerate((("mean", self.mean), ("std", self.std))):
            ax = fig.add_subplot(grid[0, j])
            im = ax.imshow(values, aspect="auto", interpolation="nearest", extent=extent, cmap="magma")
            ax.set_yticks(range(len(self.layers)))
            ax.set_yticklabels([short_layer(n) for n in self.layers] if len(self.layers) <= 24 else [])
            ax.set_xlabel("step")
            ax.set_title(f"activation {name} per layer")
            fig.colorbar(im, ax=ax)
        ax = fig.add_subplot(grid[1, :])
        for name, row in zip(self.layers, self.std):
            ax.plot(self.steps, row, lw=0.9, label=short_layer(name))
        ax.set_xlabel("step")
        ax.set_ylabel("std")
        ax.set_title("activation std of each layer over steps")
        if len(self.layers) <= 12:
            fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=min(len(self.layers), 6))

    def figure_size(self) -> tuple[float, float]:
        return 8.0, self._heat_height() + 2.6 + (0.3 if len(self.layers) <= 6 else 0.55)

    def _heat_height(self) -> float:
        return 1.2 + 0.2 * max(len(self.layers), 6)


def short_layer(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[-2:]) if len(parts) > 2 else name


def activation_stats(run, max_snapshots: int = 400) -> ActivationStats | None:
    """Statistics of every recorded layer, over at most ``max_snapshots`` evenly spaced snapshots."""
    layers = layer_names(run)
    if not layers:
        return None
    idx = even_indices(run.n, max_snapshots)
    mean, std, absmax = [], [], []
    for name in layers:
        arr = run.activations[name]
        m, s, a = [], [], []
        for start in range(0, len(idx), 32):
            chunk = np.asarray(arr[idx[start:start + 32]], dtype=np.float32).reshape(len(idx[start:start + 32]), -1)
            m.append(chunk.mean(axis=1))
            s.append(chunk.std(axis=1))
            a.append(np.abs(chunk).max(axis=1))
        mean.append(np.concatenate(m))
        std.append(np.concatenate(s))
        absmax.append(np.concatenate(a))
    return ActivationStats(layers, np.asarray(run.steps)[idx].astype(np.float64),
                           np.stack(mean), np.stack(std), np.stack(absmax))


# ---------------------------------------------------------------------------------------

@dataclass
class ConceptSimilarity:
    """Cosine similarity of every snapshot's embedding to each concept probe (text)."""

    concepts: list[str]
    steps: np.ndarray
    sims: np.ndarray      # (C, N)

    def to_dict(self, states: np.ndarray | None = None) -> dict:
        out = {"concepts": self.concepts,
               "mean": dict(zip(self.concepts, self.sims.mean(axis=1).round(4).tolist())),
               "max": dict(zip(self.concepts, self.sims.max(axis=1).round(4).tolist()))}
        if states is not None:
            out["mean_by_state"] = {
                str(s): dict(zip(self.concepts, self.sims[:, states == s].mean(axis=1).round(4).tolist()))
                for s in range(int(states.max()) + 1)}
            out["top_concept_by_state"] = {
                str(s): self.concepts[int(self.sims[:, states == s].mean(axis=1).argmax())]
                for s in range(int(states.max()) + 1)}
        return out

    def plot(self, ax) -> None:
        """Heatmap concept x step (each concept's row in its own colour scale would hide levels, so one scale)."""
        extent = (self.steps[0], self.steps[-1], len(self.concepts) - 0.5, -0.5)
        im = ax.imshow(self.sims, aspect="auto", interpolation="nearest", extent=extent, cmap="viridis")
        ax.set_yticks(range(len(self.concepts)))
        from clipxai.analysis.draw.text import label  # noqa: PLC0415
        ax.set_yticklabels([label(c, 24) for c in self.concepts])
        ax.set_xlabel("step")
        ax.set_title("similarity to concept probes")
        ax.figure.colorbar(im, ax=ax, label="cosine")


def parse_concepts(text: str) -> list[str]:
    concepts = [c.strip() for c in text.split(",") if c.strip()]
    if not concepts:
        raise ClipxaiError("--concepts needs at least one concept, comma-separated (e.g. \"love,mouth,hands\").")
    return list(dict.fromkeys(concepts))


def concept_similarity(embeddings: np.ndarray, steps: np.ndarray, concepts: list[str],
                       concept_embeddings: np.ndarray) -> ConceptSimilarity:
    """Cosine between each snapshot embedding (N, D) and each unit concept embedding (C, D)."""
    e = np.asarray(embeddings, dtype=np.float64)
    c = np.asarray(concept_embeddings, dtype=np.float64)
    if e.shape[1] != c.shape[1]:
        raise ClipxaiError(f"The run's embeddings have {e.shape[1]} dimensions but the model's text embeddings "
                           f"have {c.shape[1]}; use --model with the model the run was made with.")
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    c = c / np.linalg.norm(c, axis=1, keepdims=True)
    return ConceptSimilarity(concepts, np.asarray(steps, dtype=np.float64), (c @ e.T).astype(np.float32))
