"""``analyze``: one run in, an ``Analysis`` out; ``Analysis.write()`` makes ``<run>/analysis/``.

Computing and writing are separate steps: ``analyze`` reads the run and returns every result
(``to_dict()`` is what summary.json holds), ``write()`` draws the figures and writes the files.
Everything the user asked for is checked before anything is written (the run, the layer
name, the vocabulary file, the concepts, an explicitly named model), so a mistake costs one
sentence and leaves the run folder as it was. Only ``<run>/analysis/`` is ever written.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from clipxai.analysis.draw.chart import concept_similarity
from clipxai.analysis.motion.dynamics import dynamics_from_run
from clipxai.analysis.motion.oscillation import oscillation
from clipxai.analysis.motion.verdict import Thresholds
from clipxai.analysis.states.assign import infer_states
from clipxai.analysis.states.features import check_lengths, check_steps, model_embeddings, run_features
from clipxai.errors import ClipxaiError, ModelLoadError, RunError
from clipxai.runs.format import MIN_SNAPSHOTS  # the fewest snapshots an analysis takes (the runs listing reads it too)
from clipxai.runs.summary import SCHEMA, SUMMARY_FILE, read_summary
from clipxai.util.files import staged_files, write_json
from clipxai.util.interrupt import raise_if_interrupted
from clipxai.util.paths import check_writable_inside


@dataclass
class AnalyzeOptions:
    """Every choice of ``clipxai analyze``; the defaults are what the docs describe."""

    features: str = "auto"            # auto | embeddings | activations:<layer> | pixels
    method: str = "kmeans"            # kmeans | agglomerative | hdbscan | gmm
    k: int | str = "auto"
    k_max: int = 10
    state_model: str = "hmm"          # hmm | clusters
    pca_components: int = 16
    projections: tuple[str, ...] = ("pca",)   # umap/tsne on request: UMAP's first use compiles for ~30 s
    concepts: list[str] | None = None
    model: str | None = None          # overrides the run's model (labels, concepts, legacy embeddings)
    embedding_model: str | None = None  # which model's embeddings of an ensemble run (default: the first)
    device: str = "auto"
    labels: bool = True
    vocab_file: str | None = None
    vocab_only: bool = False
    top_words: int = 5
    opinion: bool = False             # CLIP's opinion of each state (text ascent, clipxai.analysis.words.opinion) beside its words
    explain: bool = False             # also explain each state (clipxai.analysis.explain.run): analysis/explain.json
    evaluate: bool = False            # also evaluate each state (clipxai.analysis.trust): analysis/evaluation.json
    judges: tuple[str, ...] | None = None  # the evaluation's judges (None: the models the ascent did not use)
    reference: str | None = None      # the evaluation's folder of natural images (a toy run uses the toy world's)
    gif: bool = True
    seed: int = 0
    n_boot: int = 1000
    n_surrogates: int = 199
    thresholds: Thresholds = field(default_factory=Thresholds)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["projections"] = list(self.projections)
        d["judges"] = None if self.judges is None else list(self.judges)
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
        from clipxai.models.load import load_clip  # noqa: PLC0415

        try:
            self._model = load_clip(self.name, device=self.device)
        except ModelLoadError as err:
            if required or self.explicit:
                raise
            self.error = str(err)
            return None
        return self._model


def _prepare_dir(run) -> Path:
    """The run's analysis folder, checked: a link placed there must not make us write elsewhere."""
    folder = run.analysis_dir
    check_writable_inside(run.path, folder)
    if folder.is_dir() and not os.access(folder, os.W_OK):
        raise RunError(f"The analysis folder {folder} is not writable.")
    return folder


def _run_info(run) -> dict:
    steps = np.asarray(run.steps)
    return {"path": str(run.path), "layout": run.layout, "status": run.status, "prompt": run.prompt,
            "model": run.model_name, "n_snapshots": run.n, "first_step": int(steps[0]),
            "last_step": int(steps[-1]), "problems": list(run.problems), "partial": partial(run)}


def partial(run) -> dict | None:
    """For a run not finished: whether it is still being written or was killed, and the rows used."""
    if run.layout != "native" or run.status == "complete":
        return None
    from clipxai.runs.writer import is_locked  # noqa: PLC0415
    if run.status == "running":
        reason = "running" if is_locked(run.path) else "killed"
    else:
        reason = run.status
    return {"reason": reason, "rows_used": run.n, "steps_done": run.manifest.get("steps_done"),
            "steps_total": run.manifest.get("steps_total")}


def _partial_note(info: dict | None) -> list[str]:
    if not info:
        return []
    done = f"{info['steps_done']} of {info['steps_total']} steps"
    text = {"running": f"This run is still being written ({done} so far); the analysis used the "
                       f"{info['rows_used']} snapshots recorded when it began.",
            "killed": f"This run was killed while running (no process writes it; {done} done); the analysis "
                      f"used the {info['rows_used']} snapshots it recorded. Resume it with clipxai ascend --resume.",
            }.get(info["reason"], f"This run is {info['reason']} after {done}; the analysis used its "
                                  f"{info['rows_used']} snapshots.")
    return [text]


@dataclass
class Analysis:
    """One run analyzed: every result, nothing written yet (``write()`` makes ``<run>/analysis/``)."""

    run: object
    options: AnalyzeOptions
    steps: np.ndarray
    features: str                          # what was clustered (embeddings, activations:<layer>, pixels)
    states: object                         # StateResult
    oscillation: object                    # OscillationResult
    dynamics: object                       # Dynamics: the per-step series (metrics.jsonl)
    projections: dict                      # method -> Projection
    representatives: dict                  # state -> its most typical snapshot
    labels: object | None = None           # StateLabels
    concepts: object | None = None         # ConceptSimilarity
    activations: object | None = None      # ActivationStats
    opinions: dict | None = None           # state -> Opinion, with --opinion
    metrics: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """What summary.json holds, except the list of files written."""
        from clipxai import __version__  # noqa: PLC0415

        osc, st, opts = self.oscillation, self.states, self.options
        steps = self.steps
        reps = {str(s): {"snapshot": i, "step": int(steps[i])} for s, i in self.representatives.items()}
        return {
            "schema": SCHEMA,
            "run": _run_info(self.run),
            **osc.to_dict(),
            "dynamics": self.dynamics.to_dict(),
            "steps": steps.tolist(),
            "analysis": {"features": self.features, "embedding_model": self.run.model_name,
                         **st.to_dict(), "seed": opts.seed,
                         "thresholds": asdict(opts.thresholds), "options": opts.to_dict(),
                         "projections": {m: p.to_dict() for m, p in self.projections.items()}},
            "labels": None if self.labels is None else {
                **self.labels.to_dict(),
                **({"opinion": {str(k): o.to_dict() for k, o in self.opinions.items()}} if self.opinions else {})},
            "concepts": None if self.concepts is None else self.concepts.to_dict(osc.states),
            **({"activations": self.activations.to_dict()} if self.activations is not None else {}),
            **({"representatives": reps} if "images" in self.run.array_names() else {}),
            "notes": _partial_note(partial(self.run)) + self.notes + list(self.run.manifest.get("notes", [])),
            "clipxai_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(self.seconds, 2),
        }

    def write(self, log=None) -> dict:
        """Draw the figures and write states.csv and summary.json; returns the summary."""
        log = log or (lambda msg: None)
        raise_if_interrupted()  # a Ctrl-C that a library swallowed stops here, before anything is written
        folder = _prepare_dir(self.run)
        log("drawing figures")
        from clipxai.analysis.draw.figures import draw_all  # noqa: PLC0415
        # Written aside and moved into place whole: a full disk or a stop leaves the earlier analysis as it was.
        with staged_files(folder, f"the analysis of {self.run.path}", last=(SUMMARY_FILE,)) as stage:
            drawn, skipped = draw_all(self, stage)
            with open(stage / "states.csv", "w", encoding="utf-8") as f:
                f.write("snapshot,step,cluster,state\n")
                for i, (s, c, q) in enumerate(zip(self.steps.tolist(), self.states.clusters.labels.tolist(),
                                                  self.oscillation.states.tolist())):
                    f.write(f"{i},{s},{c},{q}\n")
            summary = {**self.to_dict(), "figures": drawn, "figures_skipped": skipped,
                       "files": {"summary": SUMMARY_FILE, "states": "states.csv"}}
            raise_if_interrupted()
            write_json(stage / SUMMARY_FILE, summary)
        return summary


def analyze(run, opts: AnalyzeOptions | None = None, model=None, log=None) -> Analysis:
    """Analyze one run: states, oscillation, projections, labels; nothing is written."""
    opts = opts or AnalyzeOptions()
    log = log or (lambda msg: None)
    if opts.embedding_model:
        run = run.seen_by(opts.embedding_model)
    t0 = time.perf_counter()
    steps = check_steps(run)
    check_lengths(run)
    if run.n < MIN_SNAPSHOTS:
        raise RunError(f"{run.path} has only {run.n} snapshot(s); the analysis needs at least {MIN_SNAPSHOTS}.")
    source = _ModelSource(run, opts, model)
    if opts.labels and (opts.vocab_file or opts.vocab_only):  # a bad word list fails before any work
        from clipxai.analysis.words.label import build_vocabulary  # noqa: PLC0415
        build_vocabulary(opts.vocab_file, opts.vocab_only)
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

    from clipxai.analysis.draw.project import project  # noqa: PLC0415
    projections = {}
    for method in dict.fromkeys(opts.projections):
        log(f"projecting with {method}")
        projections[method] = project(st.reduced, method, seed=opts.seed)

    from clipxai.analysis.draw.sheets import representatives  # noqa: PLC0415
    reps = representatives(st.reduced, osc.states)
    embeddings = None
    if "embeddings" in run.array_names():
        embeddings = feats.values if feats.source == "embeddings" else np.asarray(run.embeddings, dtype=np.float32)
    elif feats.source.startswith("embeddings computed"):
        embeddings = feats.values
    labels = concepts = opinions = None
    notes = []
    if opts.labels:
        m = clip_model or source.get(required=False)
        if m is not None and embeddings is None and "images" in run.array_names():
            embeddings = model_embeddings(run, m)
        if m is None or embeddings is None:
            notes.append(f"No word labels: {source.error or 'the run has no embeddings or images to label'}.")
        else:
            from clipxai.analysis.words.label import build_vocabulary, label_states  # noqa: PLC0415
            log("labelling states with words")
            words, desc = build_vocabulary(opts.vocab_file, opts.vocab_only, model=m)
            labels = label_states(m, embeddings, osc.states, words, desc, k=opts.top_words,
                                  snapshot_index=list(reps.values()))
            if opts.opinion:
                opinions = _state_opinions(m, embeddings, osc.states, words if opts.vocab_only else None, opts, notes)
    if opts.concepts:
        if embeddings is None:
            embeddings = model_embeddings(run, clip_model)
        from clipxai.analysis.words.vocab import vocabulary_embeddings  # noqa: PLC0415
        probe = vocabulary_embeddings(clip_model, opts.concepts).numpy()
        concepts = concept_similarity(embeddings, steps, opts.concepts, probe)
    from clipxai.analysis.draw.chart import activation_stats  # noqa: PLC0415
    return Analysis(run=run, options=opts, steps=steps, features=feats.source, states=st, oscillation=osc,
                    dynamics=dyn, projections=projections, representatives=reps, labels=labels, concepts=concepts,
                    activations=activation_stats(run), opinions=opinions, metrics=run.metrics(), notes=notes,
                    seconds=time.perf_counter() - t0)


def _state_opinions(model, embeddings, states, words, opts: AnalyzeOptions, notes: list) -> dict | None:
    """CLIP's opinion of each state, or a note saying why there is none."""
    from clipxai.analysis.words.opinion import state_opinions  # noqa: PLC0415
    try:
        return state_opinions(model, embeddings, states, words=words, seed=opts.seed)
    except ClipxaiError as err:
        notes.append(f"No opinion: {err}")
        return None


def analyze_run(run, opts: AnalyzeOptions | None = None, model=None, log=None, judges=None) -> dict:
    """Analyze one run and write ``run/analysis/``; returns the summary (what summary.json holds).

    With ``opts.explain`` each state is explained too (``analysis/explain.json``), with ``opts.evaluate``
    each state and the final image are evaluated (``analysis/evaluation.json``, judged by ``judges``,
    loaded models, or else ``opts.judges``). Every input of both is checked, and both are computed,
    before anything is written, so a mistake leaves the run as it was.
    """
    opts = opts or AnalyzeOptions()
    ready = None
    if opts.evaluate:
        from clipxai.analysis.trust.prepare import prepare  # noqa: PLC0415
        ready = prepare(run, judges=judges if judges is not None else opts.judges, reference=opts.reference,
                        model=model if model is not None else opts.model, device=opts.device)
        model = ready.model  # the run's own, or opts.model: loaded once for the analysis and the evaluation
    analysis = analyze(run, opts, model=model, log=log)
    explanation = evaluation = None
    if analysis.options.explain:
        from clipxai.analysis.explain.run import ExplainOptions, explain_summary, prepare  # noqa: PLC0415
        explain_opts = ExplainOptions(seed=analysis.options.seed)
        clip_model = prepare(analysis.run, explain_opts, model=model, device=analysis.options.device)
        explanation = explain_summary(analysis.run, analysis.to_dict(), explain_opts, clip_model, log=log)
    if ready is not None:
        from clipxai.analysis.trust.run import evaluate_run  # noqa: PLC0415
        evaluation = evaluate_run(analysis.run, analysis.to_dict(), ready.options, ready.model, ready.judges,
                                  reference=ready.reference, log=log)
    summary = analysis.write(log=log)
    if explanation is not None:
        explanation.write(log=log)
    if evaluation is not None:
        from clipxai.analysis.trust.run import write_evaluation  # noqa: PLC0415
        write_evaluation(analysis.run, evaluation)
    return summary


def ensure_summary(run, opts: AnalyzeOptions, reanalyze: bool = False, model=None, log=None) -> dict:
    """The run's existing summary, or a fresh analysis when there is none (or ``reanalyze``)."""
    summary = None if reanalyze else read_summary(run)
    if summary is None:
        if log:
            log(f"analyzing {run.path}")
        summary = analyze_run(run, opts, model=model, log=log)
    return summary
