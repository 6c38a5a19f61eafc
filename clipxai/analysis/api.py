"""The analysis at the top level: ``clipxai.analyze(run)``, with the options as keywords."""

from __future__ import annotations

from pathlib import Path

from clipxai.analysis.analyze import Analysis, AnalyzeOptions
from clipxai.analysis.analyze import analyze as _analyze
from clipxai.errors import ClipxaiError


def analyze(run, *, model=None, log=None, **options) -> Analysis:
    """Analyse a run (a ``Run`` or its folder): states, oscillation, dynamics, labels; nothing written.

    Keywords are the fields of ``AnalyzeOptions`` (``k``, ``method``, ``concepts``,
    ``projections``, ``labels``, ...). ``analysis.write()`` then writes ``<run>/analysis/``.
    """
    fields = set(AnalyzeOptions.__dataclass_fields__)
    unknown = sorted(set(options) - fields)
    if unknown:
        from difflib import get_close_matches  # noqa: PLC0415
        hints = [f"{u} (did you mean {m[0]}?)" if (m := get_close_matches(u, fields, 1)) else u for u in unknown]
        raise ClipxaiError(f"Unknown analysis option(s) {', '.join(hints)}.")
    if isinstance(run, (str, Path)):
        from clipxai.runs.load import open_run  # noqa: PLC0415
        run = open_run(run)
    if "projections" in options and isinstance(options["projections"], str):
        options["projections"] = tuple(p for p in options["projections"].split(",") if p)
    return _analyze(run, AnalyzeOptions(**options), model=model, log=log)
