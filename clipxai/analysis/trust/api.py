"""``clipxai.evaluate(run)``: is each state of a run, and its final image, really there?

A run without ``analysis/summary.json`` is analysed first with the default options (as ``clipxai
explain`` and ``clipxai report`` do), and that analysis is written only once the evaluation has been
computed, so a mistake (an unknown judge, a reference that is not a folder of images) writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from clipxai.analysis.analyze import AnalyzeOptions, analyze
from clipxai.analysis.trust.run import (
    PER_STATE,
    EvaluateOptions,
    check_run,
    default_judges,
    evaluate_run,
    load_judges,
    load_model,
    load_reference,
    parse_labels,
    write_evaluation,
)
from clipxai.errors import ClipxaiError
from clipxai.runs.summary import read_summary


def evaluate(run, *, judges=None, reference=None, labels=None, per_state: int = PER_STATE, model=None,
             device: str = "auto", log=None) -> dict:
    """Score each state of ``run`` (a ``Run`` or its folder) and its final image; writes
    ``RUN/analysis/evaluation.json`` and returns what it holds.

    ``judges``: models (names in any ``--model`` form, or loaded ``ClipModel``s; default: the models
    this machine has that the ascent did not use, ``toy-b`` for ``toy``). ``reference``: a folder of
    natural images (a toy run uses the toy world's). ``labels``: candidate readings, a list or
    ``"a,b,c"``. ``model``: the ascending model, when not the run's own.
    """
    if isinstance(run, (str, Path)):
        from clipxai.runs.load import open_run  # noqa: PLC0415
        run = open_run(run)
    check_run(run)
    label_list = parse_labels(labels) if isinstance(labels, str) else tuple(labels or ())
    if labels is not None and not isinstance(labels, str):
        parse_labels(",".join(label_list))
    if not isinstance(per_state, int) or per_state < 1:
        raise ClipxaiError(f"The snapshots measured per state must be a whole number of at least 1, not {per_state!r}.")
    reference_images = load_reference(None if reference is None else str(reference), tuple(run.images.shape[-2:]))
    judge_models = load_judges(default_judges(run) if judges is None else list(judges), device)
    names = tuple(j if isinstance(j, str) else j.name for j in (judges or [m.name for m in judge_models]))
    opts = EvaluateOptions(judges=names, reference=None if reference is None else str(reference),
                           labels=label_list, per_state=per_state)
    clip_model = model if model is not None else load_model(run, device)
    summary, analysis = read_summary(run), None
    if summary is None:
        if log:
            log(f"analyzing {run.path} first (it has no analysis yet)")
        analysis = analyze(run, AnalyzeOptions(device=device), model=clip_model, log=log)
        summary = analysis.to_dict()
    data = evaluate_run(run, summary, opts, clip_model, judge_models, reference=reference_images, log=log)
    if analysis is not None:
        analysis.write(log=log)
    write_evaluation(run, data)
    return data
