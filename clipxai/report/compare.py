"""Several runs side by side (pixels vs VQGAN, or several seeds of one prompt).

Each run is analyzed on its own (its summary.json is reused when present) for the
oscillation table. For the shared pictures, the runs' unit embeddings are pooled: one PCA
draws every trajectory in the same plane, and one clustering of the pooled snapshots gives
shared concepts, so "how much of its time did each run spend in concept j" is comparable
across runs. With concept probes, occupancy is also given as the share of snapshots whose
most similar probe is each concept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clipxai.analysis.analyze import AnalyzeOptions, ensure_summary
from clipxai.analysis.draw.sheets import even_indices
from clipxai.analysis.draw.style import new_figure, state_colors
from clipxai.analysis.motion.dynamics import dynamics_word
from clipxai.analysis.states.features import model_embeddings, run_features
from clipxai.errors import ClipxaiError
from clipxai.runs.summary import Summary
from clipxai.util.files import atomic_path, atomic_write_text, staged_files, write_json
from clipxai.util.paths import check_can_write

MAX_ROWS_PER_RUN = 2000  # pooled analysis uses at most this many evenly spaced snapshots per run

COLUMNS = ("run", "prompt", "seed", "param", "verdict", "n_states", "switches", "returns",
           "rate_per_100", "rate_ci95", "median_dwell", "silhouette", "jump_ratio", "drift", "late_share", "per_step")


@dataclass
class Comparison:
    """The per-run oscillation table, shared-concept occupancy and the figures drawn."""

    rows: list[dict]
    occupancy: dict[str, list[float]]              # run -> share of its snapshots in each shared concept
    shared_labels: dict[int, str]
    concept_occupancy: dict[str, dict[str, float]] | None
    folder: Path
    figures: dict = field(default_factory=dict)
    summaries: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"runs": self.rows, "shared_concepts": {str(k): v for k, v in self.shared_labels.items()},
                "occupancy": self.occupancy, "concept_occupancy": self.concept_occupancy,
                "figures": self.figures}

    def _cells(self, row: dict) -> list[str]:
        def fmt(v):
            if isinstance(v, float):
                return f"{v:.3g}"
            if isinstance(v, list):
                return "[" + ", ".join(f"{x:.3g}" for x in v) + "]"
            return "" if v is None else str(v)
        return [fmt(row.get(c)) for c in COLUMNS]

    def table_text(self) -> str:
        cells = [list(COLUMNS)] + [self._cells(r) for r in self.rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells)

    def table_rows(self) -> tuple[list[str], list[list[str]]]:
        return list(COLUMNS), [self._cells(r) for r in self.rows]


def _row(summary: Summary | dict, run) -> dict:
    """One run's line of the comparison table, from its summary and its manifest."""
    s = Summary.of(summary)
    rate, drift = s.switch_rate, s.drift
    return {
        "run": run.path.name, "path": str(run.path), "prompt": run.prompt, "seed": run.manifest.get("seed"),
        "param": run.config.get("param"), "model": run.model_label, "verdict": s.verdict,
        "n_states": s.n_states, "switches": s.switches, "returns": s.returns,
        "rate_per_100": rate.get("value"), "rate_ci95": rate.get("ci95"),
        "median_dwell": s.dwell.get("median"), "silhouette": s.silhouette,
        "jump_ratio": s.jump_ratio, "verdict_reason": s.verdict_reason,
        "drift": drift.get("total_noise_units"), "late_share": drift.get("late_share"),
        "per_step": dynamics_word(s.dynamics),
    }


def _unique_names(runs) -> list[str]:
    names = [r.path.name for r in runs]
    return [n if names.count(n) == 1 else f"{n} ({i})" for i, n in enumerate(names)]


def _pooled_embeddings(runs, model) -> list[np.ndarray]:
    out = []
    for run in runs:
        if "embeddings" in run.array_names():
            e = run_features(run, "embeddings").values
        elif model is not None and "images" in run.array_names():
            e = model_embeddings(run, model)
        else:
            raise ClipxaiError(f"{run.path} has no embeddings to compare; pass --model to compute them.")
        out.append(e / np.linalg.norm(e, axis=1, keepdims=True))
    dims = {e.shape[1] for e in out}
    if len(dims) > 1:
        raise ClipxaiError(f"The runs' embeddings have different sizes ({', '.join(map(str, sorted(dims)))}), "
                           f"so they come from different CLIPs and cannot share one picture.")
    return out


def compare_runs(paths, out_dir: str | Path | None = None, opts: AnalyzeOptions | None = None,
                 reanalyze: bool = False, log=None, model=None) -> Comparison:
    """Analyze (or reuse) each run, then draw and tabulate them together in ``out_dir``."""
    from clipxai.analysis.states.assign import infer_states  # noqa: PLC0415
    from clipxai.runs.load import load_runs  # noqa: PLC0415

    opts = opts or AnalyzeOptions(projections=("pca",))
    log = log or (lambda msg: None)
    runs = load_runs(paths)
    if len(runs) < 2:
        raise ClipxaiError("compare needs at least two runs.")
    folder = Path(out_dir).expanduser() if out_dir else Path.cwd() / f"compare-{re.sub(r'[^A-Za-z0-9_.-]', '_', runs[0].path.name)}"
    check_can_write(folder, "comparison")  # before the work, not after it
    summaries = [ensure_summary(run, opts, reanalyze, model, log) for run in runs]
    names = _unique_names(runs)

    if model is None and opts.model:
        from clipxai.models.load import load_clip  # noqa: PLC0415
        model = load_clip(opts.model, device=opts.device)
    pooled = _pooled_embeddings(runs, model)
    keep = [even_indices(len(e), MAX_ROWS_PER_RUN) for e in pooled]
    x = np.concatenate([e[k] for e, k in zip(pooled, keep)])
    owner = np.concatenate([np.full(len(k), i) for i, k in enumerate(keep)])
    log("finding shared concepts")
    st = infer_states(x, method=opts.method, k=opts.k, k_max=opts.k_max, state_model="clusters",
                      pca_components=opts.pca_components, seed=opts.seed)
    shared = st.states
    n_shared = int(shared.max()) + 1
    occupancy = {names[i]: np.bincount(shared[owner == i], minlength=n_shared).astype(float).tolist()
                 for i in range(len(runs))}
    occupancy = {n: (np.array(v) / max(sum(v), 1)).round(4).tolist() for n, v in occupancy.items()}
    shared_labels = _shared_labels(x, shared, runs, opts, model)

    concept_occ = None
    if opts.concepts:
        from clipxai.analysis.words.vocab import vocabulary_embeddings  # noqa: PLC0415
        from clipxai.models.load import load_clip  # noqa: PLC0415
        m = model or load_clip(opts.model or runs[0].model_name, device=opts.device)
        probe = vocabulary_embeddings(m, opts.concepts).numpy()
        concept_occ = {}
        for name, e in zip(names, pooled):
            top = (e @ probe.T).argmax(axis=1)
            concept_occ[name] = {c: round(float(np.mean(top == j)), 4) for j, c in enumerate(opts.concepts)}

    result = Comparison([_row(s, r) for s, r in zip(summaries, runs)], occupancy, shared_labels, concept_occ,
                        folder, summaries=summaries)
    for row, name in zip(result.rows, names):
        row["run"] = name
    # Made only now and written aside, moved into place whole: a comparison that fails (a full disk
    # included) leaves no folder behind, or an earlier one as it was.
    with staged_files(folder, f"the comparison in {folder}", last=("compare.json",)) as stage:
        result.folder = stage
        _draw(result, st.reduced, owner, names, [np.asarray(r.steps)[k] for r, k in zip(runs, keep)])
        result.folder = folder
        cols, rows = result.table_rows()
        atomic_write_text(stage / "table.csv", "\n".join(",".join(json.dumps(c, ensure_ascii=False) for c in r)
                                                        for r in [cols] + rows) + "\n")
        write_json(stage / "compare.json", result.to_dict())
    return result


def _save(fig, path: Path) -> None:
    """A figure written beside, then renamed into place (a link already there is replaced, never followed)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def _shared_labels(x, shared, runs, opts, model) -> dict[int, str]:
    """Words for the shared concepts, when labels are on and a model can be had."""
    if not opts.labels:
        return {}
    from clipxai.analysis.words.label import build_vocabulary, label_states  # noqa: PLC0415
    from clipxai.errors import ModelLoadError  # noqa: PLC0415

    try:
        if model is None:
            from clipxai.models.load import load_clip  # noqa: PLC0415
            name = opts.model or runs[0].model_name
            if not name:
                return {}
            model = load_clip(name, device=opts.device)
    except ModelLoadError:
        return {}
    words, desc = build_vocabulary(opts.vocab_file, opts.vocab_only, model=model)
    return label_states(model, x, shared, words, desc, k=opts.top_words).names()


def _draw(result: Comparison, reduced: np.ndarray, owner: np.ndarray, names: list[str], steps: list) -> None:
    from clipxai.analysis.draw.style import figure_style  # noqa: PLC0415

    with figure_style(names + list(result.shared_labels.values())):
        _draw_figures(result, reduced, owner, names)


def _draw_figures(result: Comparison, reduced: np.ndarray, owner: np.ndarray, names: list[str]) -> None:
    from sklearn.decomposition import PCA  # noqa: PLC0415

    from clipxai.analysis.draw.style import FULL_WIDTH_IN  # noqa: PLC0415
    from clipxai.analysis.draw.text import label as text_label  # noqa: PLC0415

    folder = result.folder
    pca = PCA(n_components=2, random_state=0)
    xy = pca.fit_transform(reduced)
    colors = state_colors(len(names))
    fig, ax = new_figure(FULL_WIDTH_IN, 5.2)
    for i, name in enumerate(names):
        p = xy[owner == i]
        ax.plot(p[:, 0], p[:, 1], "-", lw=1, alpha=0.8, color=colors[i], label=text_label(name, 40))
        ax.scatter(*p[0], marker="o", s=80, color="white", edgecolors=colors[i], linewidths=2, zorder=3)
        ax.scatter(*p[-1], marker="s", s=60, color=colors[i], edgecolors="black", linewidths=0.8, zorder=4)
    ax.scatter([], [], marker="o", s=80, color="white", edgecolors="0.3", linewidths=2, label="start")
    ax.scatter([], [], marker="s", s=60, color="0.5", edgecolors="black", label="end")
    ratio = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}% of the variance)")
    ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}% of the variance)")
    ax.tick_params(labelbottom=False, labelleft=False, length=0)
    ax.set_title("all runs in one PCA plane")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, folder / "shared_projection.png")
    result.figures["shared_projection"] = "shared_projection.png"

    k = len(next(iter(result.occupancy.values())))
    fig, ax = new_figure(FULL_WIDTH_IN, 1.2 + 0.4 * len(names))
    left = np.zeros(len(names))
    concept_colors = state_colors(k)
    for j in range(k):
        share = np.array([result.occupancy[n][j] for n in names])
        label = f"{j}: {result.shared_labels[j]}" if j in result.shared_labels else f"concept {j}"
        ax.barh(range(len(names)), share, left=left, color=concept_colors[j], label=text_label(label, 30))
        left += share
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([text_label(n, 30) for n in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of snapshots")
    ax.set_title("time spent in each shared concept")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, folder / "occupancy.png")
    result.figures["occupancy"] = "occupancy.png"
