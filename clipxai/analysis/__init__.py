"""Analysis of recorded runs: states, oscillation metrics with a verdict, pictures, reports.

Every function takes arrays (or a ``Run``) and keywords and returns a small result object
with ``to_dict()`` (and ``plot(ax)`` where a picture makes sense); the CLI commands
``analyze``, ``report`` and ``compare`` only wire them to files. The metrics are defined in
docs/analysis.md.

    from clipxai.analysis import infer_states, oscillation
    st = infer_states(run.embeddings)                    # PCA space, clusters, HMM path
    osc = oscillation(st.states, run.steps, st.reduced)  # switches, dwell, verdict
"""

from clipxai.analysis.analyze import Analysis, AnalyzeOptions, analyze, analyze_run
from clipxai.analysis.draw.project import Projection, project
from clipxai.analysis.motion.oscillation import OscillationResult, oscillation
from clipxai.analysis.motion.verdict import VERDICTS, Thresholds
from clipxai.analysis.states.assign import StateResult, infer_states
from clipxai.analysis.states.cluster import ClusterResult, cluster
from clipxai.runs.summary import read_summary

__all__ = ["Analysis", "AnalyzeOptions", "analyze", "analyze_run", "read_summary", "ClusterResult", "cluster", "OscillationResult",
           "oscillation", "Projection", "project", "StateResult", "infer_states", "VERDICTS", "Thresholds"]
