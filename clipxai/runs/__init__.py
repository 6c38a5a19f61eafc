"""The run folder: its format (``format.py``), the writer that fills it during an ascent, the
reader, the walk that finds runs under a folder (``find.py``) and the analysis summary.

    from clipxai.runs import load_run
    run = load_run("runs/<id>")       # a Run: manifest, arrays, metrics, analysis outputs

The names below are imported on first use, so a reader of run.json alone (``clipxai runs``)
does not pay for numpy.
"""

from clipxai.util.lazy import lazy_attributes

_LAZY = {
    "Run": "clipxai.runs.reader", "load_run": "clipxai.runs.load", "load_runs": "clipxai.runs.load",
    "open_run": "clipxai.runs.load", "find_runs": "clipxai.runs.find", "Summary": "clipxai.runs.summary",
    "load_summary": "clipxai.runs.summary",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
