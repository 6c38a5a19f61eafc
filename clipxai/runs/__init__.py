"""The run folder: its format, the writer that fills it during an ascent, and the reader.

    from clipxai.runs import load_run
    run = load_run("runs/<id>")       # a Run: manifest, arrays, metrics, analysis outputs
"""

from clipxai.runs.load import load_run, load_runs, open_run
from clipxai.runs.reader import Run

__all__ = ["Run", "load_run", "load_runs", "open_run"]
