"""``write_report``: one self-contained HTML research report (and its Markdown twin) for runs.

For every run: the verdict with the numbers behind it, each state with its picture, its
words and its dwell time, the charts, the run's configuration and the environment it ran
in. With several runs, a comparison (shared projection, oscillation table, occupancy of
shared concepts) comes first. Runs that have a summary.json are reported as analysed;
the others are analysed first with the given options.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path

import numpy as np

from ..errors import ClipxaiError, RunError
from ..files import atomic_write_text
from ..paths import check_can_write, inside
from .analyze import AnalyzeOptions, ensure_summary
from .document import CSP, HTML_MARK, MARKDOWN_MARK, MIME, Document, Image
from .dynamics import dynamics_sentence, dynamics_word
from .sheets import thumbnails

FIGURES = [  # (name in summary.json, caption)
    ("states", "State of the run at every step (one colour per state)."),
    ("trajectory_umap", "The trajectory in UMAP coordinates (a picture only: no number is computed here)."),
    ("trajectory_pca", "The trajectory in the first two principal components, centroids marked with their words."),
    ("trajectory_tsne", "The trajectory in t-SNE coordinates (a picture only)."),
    ("dynamics", "Every logged step of the similarity to the prompt: the sudden drops found (red), the trend, "
                 "and where snapshots fall (ticks at the bottom)."),
    ("similarity", "Similarity to the prompt over steps; background: the state."),
    ("concepts", "Similarity of every snapshot to each concept probe."),
    ("state_thumbnails", "The most typical snapshot of each state."),
    ("contact_sheet", "Snapshots spread over the run, framed in their state's colour."),
    ("animation", "The run as an animation."),
    ("dwell_survival", "How long visits last: Kaplan-Meier survival of dwell times (censored first/last visits)."),
    ("transitions", "Which state follows which."),
    ("switch_rate_windows", "Switch rate in the early, middle and late third (does it die out?)."),
    ("recurrence", "Recurrence plot: dark where the run is close to where it was before."),
    ("model_selection", "How the number of states was chosen."),
    ("loss_terms", "The loss and every objective term over steps."),
    ("gradient", "The gradient over the run."),
    ("activations", "Per-layer activation statistics over steps."),
]


def _fmt(x, spec=".3g") -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return format(x, spec)
    return str(x)


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def state_count_rows(s: dict) -> list[list[str]]:
    """How the states were counted, with the numbers the model-selection figure shows."""
    a = s["analysis"]
    c = a["clustering"]
    chosen = c["scores"].get(str(c["k"]))
    score = "" if chosen is None else f" ({c['selection']} {chosen:.2f})" if c["selection"] == "silhouette" else ""
    merged = a.get("transient_cluster_sizes") or []
    rows = [["clusters chosen", f"k = {c['k']} by {c['selection']}{score}"
             + (f"; {len(merged)} transient cluster(s) ({', '.join(map(str, merged))} snapshot(s)) merged away"
                if merged else "")],
            ["silhouette of the states / jump ratio", f"{_fmt(s.get('silhouette'), '.2f')} / {_fmt(s.get('jump_ratio'))}"]]
    return rows


def _numbers(s: dict) -> list[list[str]]:
    rate = s["switch_rate_per_100_steps"]
    per = s.get("periodicity") or {}
    trend = s.get("trend") or {}
    rec = s.get("recurrence") or {}
    dw = s["dwell_steps_all"]
    return [
        ["snapshots", f"{s['n_snapshots']} (steps {s['steps'][0]}-{s['steps'][-1]})"],
        ["states", str(s["n_states"])],
        ["switches (returns to an earlier state)", f"{s['switches']} ({s.get('returns')})"],
        ["switch rate per 100 steps (95% CI)", f"{rate['value']:.3g} ({rate['ci95'][0]:.3g}-{rate['ci95'][1]:.3g})"],
        ["dwell, median (IQR) in steps", f"{dw['median']:.4g} ({dw['iqr']:.4g})"
         + (" (lower bound)" if dw.get("lower_bound") else "")],
        ["rate early / middle / late", " / ".join(f"{w['rate_per_100_steps']:.3g}" for w in s["windows"])],
        ["trend of the rate (Laplace test)", f"{trend.get('direction')} (p={_fmt(trend.get('p_value'))})"],
        *state_count_rows(s),
        ["drift: start to end in noise units / share in the last third",
         f"{_fmt((s.get('drift') or {}).get('total_noise_units'), '.1f')} / {_pct((s.get('drift') or {}).get('late_share'))}"],
        ["periodicity (surrogate p, period in snapshots)",
         f"p={_fmt(per.get('p_value'))}, period {per.get('period_snapshots', 'n/a')}"],
        ["recurrence rate / determinism / laminarity",
         f"{_fmt(rec.get('recurrence_rate'))} / {_fmt(rec.get('determinism'))} / {_fmt(rec.get('laminarity'))}"],
        ["features / clustering / state path",
         f"{s['analysis']['features']} / {s['analysis']['clustering']['method']} "
         f"(k by {s['analysis']['clustering']['selection']}) / {s['analysis']['state_model']}"],
    ]


def _state_rows(run, s: dict, fig_dir: Path, prefix: str) -> list[list]:
    labels = (s.get("labels") or {}).get("states", {})
    reps = s.get("representatives", {})
    pictures = {}
    if reps and "images" in run.array_names():
        from PIL import Image as PILImage  # noqa: PLC0415
        idx = {int(k): v["snapshot"] for k, v in reps.items()}
        thumbs = thumbnails(run.images, list(idx.values()), 96)
        for state, i in idx.items():
            path = fig_dir / f"{prefix}state_{state}.png"
            PILImage.fromarray(thumbs[i]).save(path)
            pictures[state] = Image(path, f"state {state}", 96)
    rows = []
    for key, d in s["dwell_steps"].items():
        words = ", ".join(f"{w['word']} ({w['similarity']:.2f})" for w in labels.get(key, []))
        rows.append([key, pictures.get(int(key), ""), words or "n/a",
                     f"{d['median']:.4g} ({d['iqr']:.4g})" + (" lower bound" if d.get("lower_bound") else ""),
                     str(d["visits"]), f"{100 * d['occupancy']:.0f}%"])
    return rows


def _config_rows(run) -> list[list[str]]:
    rows = []
    for key, value in sorted(run.config.items()):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rows.append([str(key), text if len(text) < 300 else text[:297] + "..."])
    return rows


def _environment_rows(run, s: dict) -> list[list[str]]:
    import matplotlib  # noqa: PLC0415
    import sklearn  # noqa: PLC0415

    m = run.manifest.get("model") or {}
    versions = run.manifest.get("versions") or {}
    rows = [["model", f"{m.get('name')} (sha256 {str(m.get('sha256', 'n/a'))[:16]})"],
            ["device", str(run.manifest.get("device", "n/a"))],
            ["run status", run.status]]
    rows += [[f"run: {k}", str(v)] for k, v in sorted(versions.items())]
    rows += [["analysis: clipxai", str(s.get("clipxai_version"))],
             ["analysis: python / numpy / scikit-learn / matplotlib",
              f"{platform.python_version()} / {np.__version__} / {sklearn.__version__} / {matplotlib.__version__}"],
             ["analysis: options", json.dumps(s["analysis"].get("options", {}), ensure_ascii=False)[:600]]]
    return rows


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


def _run_section(doc: Document, run, s: dict, fig_dir: Path, index: int) -> None:
    prefix = f"run{index}_"
    prompt = run.prompt or "(prompt not recorded)"
    doc.heading(2, f"Run {run.path.name}: “{prompt}”")
    doc.paragraph(f"**States in the snapshots: {s['verdict']}**. {s['verdict_reason']}", css="verdict")
    d = s.get("dynamics")
    doc.paragraph(f"**Per-step dynamics: {dynamics_word(d)}**. {d['reason'] if d else dynamics_sentence(d)}",
                  css="verdict")
    doc.table(["measure", "value"], _numbers(s))
    doc.heading(3, "States and CLIP's words for them")
    doc.table(["state", "typical snapshot", "nearest words (cosine)", "dwell median (IQR), steps", "visits",
               "time"], _state_rows(run, s, fig_dir, prefix))
    if s.get("concepts"):
        c = s["concepts"]
        doc.table(["state", "closest concept probe"], [[k, v] for k, v in c.get("top_concept_by_state", {}).items()])
    doc.heading(3, "Charts")
    skipped = []
    for name, caption in FIGURES:
        source, problem = _figure_file(run.analysis_dir, (s.get("figures") or {}).get(name))
        if problem:
            skipped.append(f"figure '{name}': {problem}; left out")
        if source is not None:
            target = fig_dir / f"{prefix}{name}{source.suffix.lower()}"
            shutil.copyfile(source, target)
            doc.figure(target, caption)
    doc.heading(3, "Configuration")
    rows = _config_rows(run)
    if rows:
        doc.table(["option", "value"], rows)
    else:
        doc.paragraph("No configuration recorded (legacy run).")
    doc.heading(3, "Environment")
    doc.table(["item", "value"], _environment_rows(run, s))
    problems = list(run.problems) + list(s.get("notes", [])) + skipped
    if problems:
        doc.heading(3, "Problems and notes")
        doc.preformatted("\n".join(problems))


def _written_by_report(path: Path, mark: str) -> bool:
    """Whether ``path`` is a file a report wrote (its mark, or the policy line every report had)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    return mark.encode() in head or (mark == HTML_MARK and f'content="{CSP}"'.encode() in head)


def check_report_target(output: Path, overwrite: bool = False) -> None:
    """Refuse, before any work, an output that would replace something a report did not write."""
    md_path, fig_dir = output.with_suffix(".md"), output.parent / f"{output.stem}_figures"
    if output.suffix.lower() == ".md":
        raise ClipxaiError(f"{output} ends in .md, the name of the report's Markdown twin; give the HTML file "
                           f"another name such as report.html.")
    for path in (output, md_path):
        if path.is_dir():
            raise ClipxaiError(f"{path} is a folder; give the report a file name such as report.html.")
    if fig_dir.exists() and not fig_dir.is_dir():
        raise ClipxaiError(f"{fig_dir} is a file, and the report keeps its figures in a folder of that name; "
                           f"choose another -o.")
    if not overwrite:
        for path, mark in ((output, HTML_MARK), (md_path, MARKDOWN_MARK)):
            if (path.exists() or path.is_symlink()) and not _written_by_report(path, mark):
                raise ClipxaiError(f"{path} exists and is not a report clipxai wrote; choose another -o, "
                                   f"or pass --overwrite to replace it.")
    check_can_write(output.parent, "report")


def write_report(paths, output: str | Path = "report.html", opts: AnalyzeOptions | None = None,
                 title: str | None = None, reanalyze: bool = False, log=None, model=None,
                 overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``output`` (HTML), ``output`` with .md and the ``<stem>_figures`` folder; returns both paths.

    An existing ``output`` or Markdown twin is replaced only when a report wrote it, or with
    ``overwrite``; that is checked before anything is analysed.
    """
    from ..runs import load_runs  # noqa: PLC0415

    opts = opts or AnalyzeOptions(projections=("pca",))
    log = log or (lambda msg: None)
    output = Path(output).expanduser()
    check_report_target(output, overwrite)
    runs = load_runs(paths)
    summaries = [ensure_summary(run, opts, reanalyze, model, log) for run in runs]
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fig_dir = output.parent / f"{output.stem}_figures"
        fig_dir.mkdir(exist_ok=True)
    except OSError as err:
        raise ClipxaiError(f"The report cannot be written next to {output} ({err.strerror}).") from err

    prompts = list(dict.fromkeys(r.prompt for r in runs if r.prompt))
    title = title or ("What CLIP sees in " + ", ".join(f"“{p}”" for p in prompts) if prompts else "clipxai report")
    doc = Document(title)
    verdicts = ", ".join(f"{r.path.name}: {s['verdict']} (per step: {dynamics_word(s.get('dynamics'))})" for r, s in zip(runs, summaries))
    doc.paragraph(f"{len(runs)} run(s). Verdicts (states in the snapshots, and per-step dynamics): {verdicts}. "
                  f"Every number below is defined in docs/analysis.md; "
                  f"metrics are computed in PCA space, never in UMAP or t-SNE coordinates.")
    parent = os.path.commonpath([r.path.resolve().parent for r in runs])
    doc.paragraph(f"Browse these runs step by step: clipxai view {parent}")
    if len(runs) > 1:
        from .compare import compare_runs  # noqa: PLC0415
        log("comparing runs")
        comp = compare_runs(paths, fig_dir / "compare", opts=opts, log=log, model=model)
        doc.heading(2, "All runs together")
        header, rows = comp.table_rows()
        doc.table(header, rows)
        for name, caption in (("shared_projection", "Every run in one PCA plane."),
                              ("occupancy", "Share of each run's snapshots in each shared concept.")):
            doc.figure(comp.folder / comp.figures[name], caption)
        if comp.concept_occupancy:
            concepts = list(next(iter(comp.concept_occupancy.values())))
            doc.table(["run", *concepts], [[n, *[f"{100 * v[c]:.0f}%" for c in concepts]]
                                           for n, v in comp.concept_occupancy.items()])
    for i, (run, s) in enumerate(zip(runs, summaries)):
        _run_section(doc, run, s, fig_dir, i)

    log("writing the report")
    atomic_write_text(output, doc.to_html())  # a stopped report never leaves half a file
    md_path = output.with_suffix(".md")
    atomic_write_text(md_path, doc.to_markdown(output.parent))
    return output, md_path
