"""``clipxai.explain(run)``: a run explained state by state, analysing it first when it has no analysis.

A run without ``analysis/summary.json`` is analysed with the default options (as ``clipxai
report`` does); that analysis is written only once the explanation has been computed, so a
mistake (a ``state`` the run lacks, a ResNet model) still writes nothing.
"""

from __future__ import annotations

from pathlib import Path

from clipxai.analysis.analyze import AnalyzeOptions, analyze
from clipxai.analysis.explain.run import ExplainOptions, explain_summary, prepare
from clipxai.errors import ClipxaiError
from clipxai.runs.summary import read_summary


def explain(run, *, model=None, device: str = "auto", log=None, **options) -> dict:
    """Explain each state of ``run`` (a ``Run`` or its folder); writes ``RUN/analysis/explain.json``.

    Keywords are the fields of ``ExplainOptions`` (``state``, ``top``, ``k``, ``draws``,
    ``reference``, ``components``, ...). Returns what explain.json holds.
    """
    fields = set(ExplainOptions.__dataclass_fields__)
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ClipxaiError(f"Unknown explain option(s) {', '.join(unknown)}; they are {', '.join(sorted(fields))}.")
    if isinstance(run, (str, Path)):
        from clipxai.runs.load import open_run  # noqa: PLC0415
        run = open_run(run)
    if "components" in options:
        options["components"] = tuple(options["components"] or ())
    opts = ExplainOptions(**options)
    clip_model = prepare(run, opts, model=model, device=device)
    summary, analysis = read_summary(run), None
    if summary is None:
        if log:
            log(f"analyzing {run.path} first (it has no analysis yet)")
        analysis = analyze(run, AnalyzeOptions(device=device, seed=opts.seed), model=clip_model, log=log)
        summary = analysis.to_dict()
    explanation = explain_summary(run, summary, opts, clip_model, log=log)
    if analysis is not None:
        analysis.write(log=log)
    return explanation.write(log=log)
