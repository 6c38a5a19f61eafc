"""``analyze_run``: one run in, ``<run>/analysis/`` out (summary.json, states.csv, figures).

Everything the user asked for is checked before anything is written (the run, the layer
name, the vocabulary file, the concepts, an explicitly named model), so a mistake costs one
sentence and leaves the run folder as it was. Only ``<run>/analysis/`` is ever written.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ClipxaiError, ModelLoadError, RunError
from .chart import concept_similarity
from .dynamics import dynamics_from_run
from .features import check_lengths, check_steps, model_embeddings, run_features
from .oscillation import oscillation
from .states import infer_states
from .verdict import Thresholds

SCHEMA = "clipxai.analysis/1"
MIN_SNAPSHOTS = 3


@dataclass
class AnalyzeOptions:
    """Every choice of ``clipxai analyze``; the defaults are what the docs describe."""

    features: str = "auto"            # auto | embeddings | activations:<layer> | pixels
    method: str = "kmeans"            # kmeans | agglomerative | hdbscan | gmm
    k: int | str = "auto"
    k_max: int = 10
    state_model: str = "hmm"          # hmm | clusters
    pca_components: int = 16
    projections: tuple[str, ...] = ("pca", "umap")
    concepts: list[str] | None = None
    model: str | None = None          # overrides the run's model (labels, concepts, legacy embeddings)
    device: str = "auto"
    labels: bool = True
    vocab_file: str | None = None
    vocab_only: bool = False
    top_words: int = 5
    gif: bool = True
    seed: int = 0
    n_boot: int = 1000
    n_surrogates: int = 199
    thresholds: Thresholds = field(default_factory=Thresholds)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["projections"] = list(self.projections)
        return d


class _ModelSource:
    """Loads the run's model (or the override) once, only if something needs it."""

    def __init__(self, run, opts: AnalyzeOptions, model=None):
        self.name = opts.model or run.model_name
        self.explicit = opts.model is not None or model is not None
        self.device = opts.device
        self._model = model
        self.error: str | None = None

    def get(self, required: bool):
        if self._model is not None:
            return self._model
        if not self.name:
            if required:
                raise ClipxaiError("This run does not say which CLIP made it; pass --model.")
            self.error = "the run does not say which CLIP made it (pass --model)"
            return None
        from ..models import load_clip  # noqa: PLC0415

        try:
            self._model = load_clip(self.name, device=self.device)
        except ModelLoadError as err:
            if required or self.explicit:
                raise
            self.error = str(err)
            return None
        return self._model


def write_json(path: Path, data: dict) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False, default=_jsonable)
    os.replace(tmp, path)


def _jsonable(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def _prepare_dir(run) -> Path:
    folder = run.analysis_dir
    try:
        (folder / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunError(f"The analysis folder {folder} cannot be created ({err.strerror}).") from err
    if not os.access(folder, os.W_OK):
        raise RunError(f"The analysis folder {folder} is not writable.")
    return folder


def _run_info(run) -> dict:
    steps = np.asarray(run.steps)
    return {"path": str(run.path), "layout": run.layout, "status": run.status, "prompt": run.prompt,
            "model": run.model_name, "n_snapshots": run.n, "first_step": int(steps[0]),
            "last_step": int(steps[-1]), "problems": list(run.problems)}


def analyze_run(run, opts: AnalyzeOptions | None = None, model=None, log=None) -> dict:
    """Analyse one run and write ``run/analysis/``; returns the summary (what summary.json holds)."""
    opts = opts or AnalyzeOptions()
    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    steps = check_steps(run)
    check_lengths(run)
    if run.n < MIN_SNAPSHOTS:
        raise RunError(f"{run.path} has only {run.n} snapshot(s); the analysis needs at least {MIN_SNAPSHOTS}.")
    source = _ModelSource(run, opts, model)
    vocabulary = None
    if opts.labels and (opts.vocab_file or opts.vocab_only):
        from .label import build_vocabulary  # noqa: PLC0415
        vocabulary = build_vocabulary(opts.vocab_file, opts.vocab_only)
    needs_model_for_features = opts.features == "embeddings" and "embeddings" not in run.array_names()
    clip_model = source.get(required=True) if (opts.concepts or needs_model_for_features or source.explicit) else None

    log("reading features")
    feats = run_features(run, opts.features, model=clip_model)
    log(f"finding states in {feats.source}")
    st = infer_states(feats.values, method=opts.method, k=opts.k, k_max=opts.k_max, state_model=opts.state_model,
                      pca_components=opts.pca_components, seed=opts.seed)
    log("measuring oscillation")
    osc = oscillation(st.states, steps, st.reduced, seed=opts.seed, n_boot=opts.n_boot,
                      n_surrogates=opts.n_surrogates, thresholds=opts.thresholds, origin=st.origin())
    log("reading the per-step dynamics")
    dyn = dynamics_from_run(run, seed=opts.seed)

    from .project import project  # noqa: PLC0415
    projections = {}
    for method in dict.fromkeys(opts.projections):
        log(f"projecting with {method}")
        projections[method] = project(st.reduced, method, seed=opts.seed)

    from .sheets import representatives  # noqa: PLC0415
    reps = representatives(st.reduced, osc.states)
    embeddings = None
    if "embeddings" in run.array_names():
        embeddings = feats.values if feats.source == "embeddings" else np.asarray(run.embeddings, dtype=np.float32)
    elif feats.source.startswith("embeddings computed"):
        embeddings = feats.values
    labels = concepts = None
    notes = []
    if opts.labels:
        m = clip_model or source.get(required=False)
        if m is not None and embeddings is None and "images" in run.array_names():
            embeddings = model_embeddings(run, m)
        if m is None or embeddings is None:
            notes.append(f"No word labels: {source.error or 'the run has no embeddings or images to label'}.")
        else:
            from .label import build_vocabulary, label_states  # noqa: PLC0415
            log("labelling states with words")
            words, desc = vocabulary or build_vocabulary(None, False)
            labels = label_states(m, embeddings, osc.states, words, desc, k=opts.top_words,
                                  snapshot_index=list(reps.values()))
    if opts.concepts:
        if embeddings is None:
            embeddings = model_embeddings(run, clip_model)
        from ..vocab import vocabulary_embeddings  # noqa: PLC0415
        probe = vocabulary_embeddings(clip_model, opts.concepts).numpy()
        concepts = concept_similarity(embeddings, steps, opts.concepts, probe)

    folder = _prepare_dir(run)
    log("drawing figures")
    from .figures import draw_all  # noqa: PLC0415
    names = labels.names() if labels else None
    drawn, extra = draw_all(run, folder, st=st, osc=osc, reps=reps, projections=projections,
                            names=names, concepts=concepts, metrics=run.metrics(), gif=opts.gif, dynamics=dyn)
    with open(folder / "states.csv", "w", encoding="utf-8") as f:
        f.write("snapshot,step,cluster,state\n")
        for i, (s, c, q) in enumerate(zip(steps.tolist(), st.clusters.labels.tolist(), osc.states.tolist())):
            f.write(f"{i},{s},{c},{q}\n")

    from .. import __version__  # noqa: PLC0415
    summary = {
        "schema": SCHEMA,
        "run": _run_info(run),
        **osc.to_dict(),
        "dynamics": dyn.to_dict(),
        "steps": steps.tolist(),
        "analysis": {"features": feats.source, **st.to_dict(), "seed": opts.seed,
                     "thresholds": asdict(opts.thresholds), "options": opts.to_dict(),
                     "projections": {m: p.to_dict() for m, p in projections.items()}},
        "labels": None if labels is None else labels.to_dict(),
        "concepts": None if concepts is None else concepts.to_dict(osc.states),
        **extra,
        "notes": notes + list(run.manifest.get("notes", [])),
        "figures": drawn,
        "files": {"summary": "summary.json", "states": "states.csv"},
        "clipxai_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    write_json(folder / "summary.json", summary)
    return summary


def read_summary(run) -> dict | None:
    """The run's summary.json, or None when it has not been analysed (or the file is unusable)."""
    path = run.analysis_dir / "summary.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and data.get("schema") == SCHEMA else None


def ensure_summary(run, opts: AnalyzeOptions, reanalyze: bool = False, model=None, log=None) -> dict:
    """The run's existing summary, or a fresh analysis when there is none (or ``reanalyze``)."""
    summary = None if reanalyze else read_summary(run)
    if summary is None:
        if log:
            log(f"analysing {run.path}")
        summary = analyze_run(run, opts, model=model, log=log)
    return summary
