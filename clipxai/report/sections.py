"""One run's section of a report: its verdicts, the numbers behind them, its states and its charts.

Every value comes from the run's ``Summary`` (``clipxai.runs.summary``), read through typed
fields, so a summary written by another version shows "n/a" where it lacks a number. A chart
with nothing to show is replaced by one line saying why; a figure summary.json names is
copied only when it is a picture inside the run's analysis folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from clipxai.analysis.draw.figures import SAME_AS_PER_STEP, SAME_AS_SIMILARITY
from clipxai.analysis.draw.sheets import thumbnails
from clipxai.analysis.motion.dynamics import dynamics_word
from clipxai.analysis.motion.verdict import plural, verdict_label
from clipxai.errors import RunError
from clipxai.report.document import MIME, Document, Image
from clipxai.report.explain_section import explain_section
from clipxai.report.trust_section import trust_section
from clipxai.runs.summary import Summary
from clipxai.util.paths import inside
from clipxai.util.words import verdict_phrase

FIGURES = [  # (name in summary.json, caption, size: full | half | natural)
    ("trajectory_pca", "The trajectory in the first two principal components of the analysis space: each "
                       "state's centre (X) with its words and its most typical snapshot.", "full"),
    ("trajectory_umap", "The trajectory in UMAP coordinates (a picture only: no number is computed here).", "full"),
    ("trajectory_tsne", "The trajectory in t-SNE coordinates (a picture only).", "full"),
    ("states", "The state of the run at every snapshot.", "full"),
    ("dynamics", "Every logged step of the similarity to the prompt: the sudden drops found (red), the trend, "
                 "and where snapshots fall (ticks at the bottom).", "full"),
    ("similarity", "Similarity to the prompts over steps.", "full"),
    ("concepts", "Similarity of every snapshot to each concept probe.", "full"),
    ("state_thumbnails", "The most typical snapshot of each state.", "natural"),
    ("contact_sheet", "Snapshots spread over the run, framed in their state's colour.", "natural"),
    ("animation", "The run as an animation.", "natural"),
    ("dwell_survival", "How long visits last: Kaplan-Meier survival of dwell times (censored first/last "
                       "visits).", "half"),
    ("transitions", "Which state follows which.", "half"),
    ("switch_rate_windows", "Switch rate in the early, middle and late third (does it die out?).", "half"),
    ("recurrence", "Recurrence plot: dark where the run is close to where it was before.", "half"),
    ("model_selection", "How the number of states was chosen.", "half"),
    ("loss_terms", "The loss and the objective's terms over steps (those equal to the similarity left out).",
     "full"),
    ("gradient", "The gradient over the run.", "full"),
    ("activations", "Per-layer activation statistics over steps.", "full"),
]
CHART_WORDS = {
    "states": "the state over steps", "dwell_survival": "how long visits last", "transitions": "the transitions",
    "switch_rate_windows": "the switch rate over the run", "similarity": "the similarity chart",
    "loss_terms": "the loss and its terms", "trajectory_umap": "the UMAP picture", "trajectory_tsne": "the t-SNE picture",
}
MIN_SNAPSHOTS_FOR_EMBEDDING = 20


def _fmt(x, spec=".3g") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return format(x, spec)
    return str(x)


def _num(x, spec: str) -> str:
    """A number in ``spec``, or "n/a" for what is not one (a field an older summary lacks)."""
    return format(x, spec) if isinstance(x, (int, float)) and not isinstance(x, bool) else "n/a"


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def state_count_rows(s: Summary | dict) -> list[list[str]]:
    """How the states were counted, with the numbers the model-selection figure shows."""
    s = Summary.of(s)
    c = s.clustering
    k, selection = c.get("k"), c.get("selection")
    chosen = (c.get("scores") or {}).get(str(k))
    score = "" if chosen is None else f" ({selection} {chosen:.2f})" if selection == "silhouette" else ""
    merged = s.analysis.get("transient_cluster_sizes") or []
    rows = [["clusters chosen", f"k = {k} by {selection}{score}"
             + (f"; {plural(len(merged), 'transient cluster')} ({', '.join(map(str, merged))} snapshot(s)) "
                f"merged away" if merged else "")],
            ["silhouette of the states / jump ratio", f"{_fmt(s.silhouette, '.2f')} / {_fmt(s.jump_ratio)}"]]
    return rows


def _span(steps: list[int]) -> str:
    return f"steps {steps[0]}-{steps[-1]}" if steps else "steps n/a"


def _numbers(s: Summary | dict) -> list[list[str]]:
    """The measure/value table of one run: every number the verdicts rest on."""
    s = Summary.of(s)
    rate, per, trend, rec, dw, drift = s.switch_rate, s.periodicity, s.trend, s.recurrence, s.dwell, s.drift
    ci = rate.get("ci95") if isinstance(rate.get("ci95"), list) and len(rate["ci95"]) == 2 else [None, None]
    a = s.analysis
    return [
        ["snapshots", f"{s.n_snapshots} ({_span(s.steps)})"],
        ["states", str(s.n_states)],
        ["switches (returns to an earlier state)", f"{s.switches} ({s.returns})"],
        ["switch rate per 100 steps (95% CI)",
         f"{_num(rate.get('value'), '.3g')} ({_num(ci[0], '.3g')}-{_num(ci[1], '.3g')})"],
        ["dwell, median (IQR) in steps", f"{_num(dw.get('median'), '.4g')} ({_num(dw.get('iqr'), '.4g')})"
         + (" (lower bound)" if dw.get("lower_bound") else "")],
        ["rate early / middle / late", " / ".join(_num(w.get("rate_per_100_steps"), ".3g") for w in s.windows)],
        ["trend of the rate (Laplace test)", f"{trend.get('direction')} (p={_fmt(trend.get('p_value'))})"],
        *state_count_rows(s),
        ["drift: start to end in noise units / share in the last third",
         f"{_fmt(drift.get('total_noise_units'), '.1f')} / {_pct(drift.get('late_share'))}"],
        ["periodicity (surrogate p, period in snapshots)",
         f"p={_fmt(per.get('p_value'))}, period {per.get('period_snapshots', 'n/a')}"],
        ["recurrence rate / determinism / laminarity",
         f"{_fmt(rec.get('recurrence_rate'))} / {_fmt(rec.get('determinism'))} / {_fmt(rec.get('laminarity'))}"],
        ["features / clustering / state path",
         f"{a.get('features')} / {s.clustering.get('method')} "
         f"(k by {s.clustering.get('selection')}) / {a.get('state_model')}"],
    ]


def _word(w: dict) -> str:
    similarity = w.get("similarity")
    return f"{w['word']} ({similarity:.2f})" if isinstance(similarity, (int, float)) else str(w["word"])


def _state_rows(run, s: Summary, fig_dir: Path, prefix: str) -> list[list]:
    reps = s.representatives
    pictures = {}
    if reps and "images" in run.array_names():
        from PIL import Image as PILImage  # noqa: PLC0415
        idx = {int(k): v for k, v in reps.items()}
        thumbs = thumbnails(run.images, list(idx.values()), 96)
        for state, i in idx.items():
            path = fig_dir / f"{prefix}state_{state}.png"
            PILImage.fromarray(thumbs[i]).save(path)
            pictures[state] = Image(path, f"state {state}", 96)
    rows = []
    for key, d in s.dwell_by_state.items():
        words = ", ".join(_word(w) for w in s.ranked_words(key))
        opinion = s.opinion(key)  # analyze --opinion
        words += f"; CLIP's opinion: {opinion.get('text')} ({_num(opinion.get('similarity'), '.2f')})" if opinion else ""
        occupancy = d.get("occupancy")
        rows.append([key, pictures.get(int(key), "") if key.lstrip("-").isdigit() else "", words or "n/a",
                     f"{_num(d.get('median'), '.4g')} ({_num(d.get('iqr'), '.4g')})"
                     + (" lower bound" if d.get("lower_bound") else ""),
                     str(d.get("visits", "n/a")),
                     f"{100 * occupancy:.0f}%" if isinstance(occupancy, (int, float)) else "n/a"])
    return rows


# -- figures --------------------------------------------------------------------------------------

def _figure_file(folder: Path, rel) -> tuple[Path | None, str | None]:
    """The picture a summary.json names, if it is one and lies inside the analysis folder.

    A summary.json may come with a run from someone else: a name that leads out of the folder
    (``../../secret.env``, an absolute path, a link) is never read, so it cannot reach a report.
    """
    if rel is None:
        return None, None
    try:
        source = inside(folder, rel, "figure")
    except RunError:
        return None, f"{str(rel)[:200]!r} lies outside the run's analysis folder"
    if not source.is_file():
        return None, None
    if source.suffix.lower() not in MIME:
        return None, f"{str(rel)[:200]!r} is not a picture"
    return source, None


def nothing_to_show(run, s: Summary | dict) -> dict[str, str]:
    """Charts of this run that show nothing, with why: summary.json's ``figures_skipped``, and the
    same rules applied to a summary written before that list existed."""
    s = Summary.of(s)
    out = s.figures_skipped
    if s.n_states is not None and s.n_states < 2:
        for name in ("states", "transitions", "switch_rate_windows", "dwell_survival"):
            out.setdefault(name, "the run stays in one state")
    elif s.n_states is not None and not s.switches:
        for name in ("transitions", "switch_rate_windows"):
            out.setdefault(name, "there is no switch")
    figures = s.figures
    if "dynamics" in figures and "similarity" in figures and len(run.manifest.get("prompts") or []) <= 1:
        out.setdefault("similarity", SAME_AS_PER_STEP)
    if "loss_terms" in figures and "loss_terms" not in out:
        from clipxai.analysis.draw.chart import loss_panels  # noqa: PLC0415
        _, panels, mirrored = loss_panels(run.metrics())
        if mirrored and not panels:
            out["loss_terms"] = SAME_AS_SIMILARITY
    n = s.n_snapshots
    if n is not None and n < MIN_SNAPSHOTS_FOR_EMBEDDING and "trajectory_pca" in figures:
        for name in ("trajectory_umap", "trajectory_tsne"):
            if name in figures:
                out.setdefault(name, f"{n} snapshots are too few for it; the PCA picture shows them all")
    return out


def _not_drawn_line(skipped: dict[str, str]) -> str | None:
    """"Not drawn: the state over steps and the transitions (the run stays in one state); ..."."""
    by_reason: dict[str, list[str]] = {}
    for name, why in skipped.items():
        by_reason.setdefault(why, []).append(CHART_WORDS.get(name, name.replace("_", " ")))
    parts = []
    for why, names in by_reason.items():
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        parts.append(f"{listed} ({why})")
    return ("Not drawn, having nothing to show: " + "; ".join(parts) + ".") if parts else None


FOLDED = {  # figures shown under a fold, by group: (title, names)
    "snapshots": ("Snapshots: the typical one of each state, a spread over the run",
                  ("state_thumbnails", "contact_sheet", "animation")),
    "diagnostics": ("How the states were counted, recurrence, loss terms, gradient and activations",
                    ("model_selection", "recurrence", "loss_terms", "gradient", "activations")),
}


def _charts(doc: Document, run, s: Summary, fig_dir: Path, prefix: str) -> list[str]:
    """The run's figures: the ones that answer the question in view, snapshots and diagnostics
    folded; a line for each reason some chart was not drawn. Returns the problems met."""
    skipped = nothing_to_show(run, s)
    problems = []
    found = {}
    for name, caption, size in FIGURES:
        if name in skipped:
            continue
        source, problem = _figure_file(run.analysis_dir, s.figures.get(name))
        if problem:
            problems.append(f"figure '{name}': {problem}; left out")
        if source is not None:
            target = fig_dir / f"{prefix}{name}{source.suffix.lower()}"
            shutil.copyfile(source, target)
            found[name] = (target, caption, size)
    folded = {n for _, names in FOLDED.values() for n in names}
    for name, (target, caption, size) in found.items():
        if name not in folded:
            doc.figure(target, caption, size)
    line = _not_drawn_line({k: v for k, v in skipped.items() if any(k == n for n, _, _ in FIGURES)})
    if line:
        doc.paragraph(line, css="note")
    for title, names in FOLDED.values():
        present = [n for n in names if n in found]
        if present:
            doc.open_details(title)
            for name in present:
                doc.figure(*found[name])
            doc.close_details()
    return problems


# -- the section ---------------------------------------------------------------------------------------

def _verdict_lines(s: Summary) -> tuple[str, str]:
    d = s.dynamics
    verdict = s.verdict or "not given"
    words = verdict_phrase(s.data) or verdict_label(verdict, s.n_states)   # the words every view uses
    states = f"**States in the snapshots: {words}** ({verdict}). {s.verdict_reason or ''}"
    per_step = (f"**Per-step dynamics: {dynamics_word(d)}**. "
                + (str(d.get("reason", "")) if d else "Not measured: this summary predates the per-step dynamics; "
                                                      "analyze the run again."))
    return states, per_step


def run_section(doc: Document, run, s: Summary | dict, fig_dir: Path, index: int, label: str, ident: str) -> None:
    """The section of one run: title, verdicts, numbers, states with their words, charts, problems."""
    s = Summary.of(s)
    prefix = f"run{index}_"
    prompt = run.prompt or "(prompt not recorded)"
    title = f"{label}: “{prompt}”" if label == run.path.name else f"{label} ({run.path.name}): “{prompt}”"
    doc.heading(2, title, ident)
    for line in _verdict_lines(s):
        doc.paragraph(line, css="verdict")
    doc.table(["measure", "value"], _numbers(s), "The numbers behind the verdicts above (the section "
                                                 "“How to read the numbers” defines each).")
    doc.heading(3, f"{label}: states and CLIP's words for them")
    doc.table(["state", "typical snapshot", "nearest words (cosine)", "dwell median (IQR), steps", "visits",
               "time"], _state_rows(run, s, fig_dir, prefix),
              "Each state: the snapshot nearest its centre, CLIP's nearest words to it with their cosines, how long "
              "the run stays in it per visit, how often it comes back, and its share of the run.")
    if s.concepts:
        doc.table(["state", "closest concept probe"], [[k, v] for k, v in s.top_concepts.items()],
                  "The concept probe (--concepts) each state's mean embedding is closest to.")
    explain_section(doc, run, fig_dir, prefix, ident)   # with analysis/explain.json (clipxai explain)
    trust_section(doc, run, ident)   # with analysis/evaluation.json (clipxai evaluate)
    doc.heading(3, f"{label}: charts")
    problems = list(run.problems) + s.notes + _charts(doc, run, s, fig_dir, prefix)
    if problems:
        doc.heading(3, "Problems and notes")
        doc.preformatted("\n".join(problems))
