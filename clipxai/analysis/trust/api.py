"""``clipxai.evaluate(run)``: is each state of a run, and its final image, really there?

A run without ``analysis/summary.json`` is analysed first with the default options (as ``clipxai
explain`` and ``clipxai report`` do), and that analysis is written only once the evaluation has been
computed, so a mistake (an unknown judge, a reference that is not a folder of images) writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from clipxai.analysis.analyze import AnalyzeOptions, analyze
from clipxai.analysis.trust.prepare import prepare
from clipxai.analysis.trust.run import PER_STATE, evaluate_run, write_evaluation
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
    ready = prepare(run, judges=judges, reference=reference, labels=labels, per_state=per_state, model=model,
                    device=device)
    summary, analysis = read_summary(run), None
    if summary is None:
        if log:
            log(f"analyzing {run.path} first (it has no analysis yet)")
        analysis = analyze(run, AnalyzeOptions(device=device), model=ready.model, log=log)
        summary = analysis.to_dict()
    data = evaluate_run(run, summary, ready.options, ready.model, ready.judges, reference=ready.reference, log=log)
    if analysis is not None:
        analysis.write(log=log)
    write_evaluation(run, data)
    return data
