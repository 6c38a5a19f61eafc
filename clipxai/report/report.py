"""``write_report``: one self-contained HTML research report (and its Markdown twin) for runs.

It opens with what was found, in plain words: one sentence per run (where its snapshots went
and what its similarity did at every step, side by side), the final image of every run and
a strip of where each run went; then a table of contents. With several runs, a comparison
comes next; then one section per run: the verdicts with the numbers behind them, each state
with its picture, its words and its dwell time, and the charts (``clipxai.report.sections``).
A chart with nothing to show is replaced by one line saying why. The configuration and the
environment are folded away, shown once when every run shares them, and the definitions of
the numbers close the page. Runs that have a summary.json are reported as analyzed; the
others are analyzed first. Summaries are read as ``clipxai.runs.summary.Summary``.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

from clipxai.analysis.analyze import AnalyzeOptions, ensure_summary
from clipxai.analysis.draw.sheets import journeys, thumbnails
from clipxai.analysis.motion.verdict import plural, verdict_label
from clipxai.errors import ClipxaiError
from clipxai.report.definitions import DEFINITIONS
from clipxai.report.document import CSP, HTML_MARK, MARKDOWN_MARK, Document, anchor
from clipxai.report.findings import finding, overall, run_label, state_name
from clipxai.report.sections import (  # noqa: F401  (FIGURES, _numbers, nothing_to_show: imported from here by scripts)
    FIGURES,
    _fmt,
    _numbers,
    _pct,
    nothing_to_show,
    run_section,
)
from clipxai.runs.format import FINAL_IMAGE
from clipxai.runs.summary import Summary
from clipxai.util.files import staged_files
from clipxai.util.paths import check_can_write, is_inside
from clipxai.util.words import verdict_phrase

# -- configuration and environment, once when shared ------------------------------------------

def _flat(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            out[f"{prefix}{key}"] = text if len(text) < 300 else text[:297] + "..."
    return out


def _config(run) -> dict[str, str]:
    return _flat(run.config)


def _environment(run, s: Summary) -> dict[str, str]:
    import matplotlib  # noqa: PLC0415
    import sklearn  # noqa: PLC0415

    m = run.manifest.get("model") or {}
    versions = run.manifest.get("versions") or {}
    rows = {"model": f"{m.get('name')} (sha256 {str(m.get('sha256', 'n/a'))[:16]})",
            "device": str(run.manifest.get("device", "n/a")), "run status": run.status}
    rows.update({f"run: {k}": str(v) for k, v in sorted(versions.items())})
    rows.update({"analysis: clipxai": str(s.clipxai_version),
                 "analysis: python / numpy / scikit-learn / matplotlib":
                     f"{platform.python_version()} / {np.__version__} / {sklearn.__version__} / {matplotlib.__version__}",
                 "analysis: options": json.dumps(s.options, ensure_ascii=False)[:600]})
    return rows


def _shared_and_own(tables: list[dict[str, str]]) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The entries every table has with the same value, and what is left of each table."""
    shared = {k: v for k, v in tables[0].items() if all(t.get(k) == v for t in tables[1:])}
    return shared, [{k: v for k, v in t.items() if k not in shared} for t in tables]


def _settings(doc: Document, runs, labels, summaries) -> None:
    """Configuration and environment: one folded table of what all runs share, then per-run rows."""
    for title, tables in (("Configuration", [_config(r) for r in runs]),
                          ("Environment", [_environment(r, s) for r, s in zip(runs, summaries)])):
        if not any(tables):
            doc.paragraph(f"No {title.lower()} recorded (legacy run).")
            continue
        shared, own = _shared_and_own(tables) if len(tables) > 1 else (tables[0], [{}])
        what = "shared by all runs" if len(runs) > 1 else "of the run"
        doc.open_details(f"{title} {what} ({plural(len(shared), 'entry', 'entries')})")
        doc.table(["option" if title == "Configuration" else "item", "value"], [[k, v] for k, v in shared.items()],
                  f"The {title.lower()} {what}, as run.json records it.")
        doc.close_details()
        if any(own):
            doc.open_details(f"{title}: what differs between the runs")
            doc.table(["run", "option" if title == "Configuration" else "item", "value"],
                      [[label, k, v] for label, t in zip(labels, own) for k, v in t.items()],
                      f"Only the {title.lower()} entries whose values differ from run to run.")
            doc.close_details()


def _run_anchors(runs) -> list[str]:
    """Each run section's anchor: ``run-<folder>``, numbered when two folders share a name."""
    out: list[str] = []
    for r in runs:
        base = ident = f"run-{anchor(r.path.name)}"
        i = 1
        while ident in out:
            i += 1
            ident = f"{base}-{i}"
        out.append(ident)
    return out


def _final_images(runs, summaries, labels, fig_dir: Path) -> list[tuple[Path, str]]:
    from PIL import Image as PILImage  # noqa: PLC0415

    pictures = []
    for i, (run, s, label) in enumerate(zip(runs, summaries, labels)):
        path = fig_dir / f"final_{i}.png"
        last = s.states[-1] if s.states else 0
        final = run.path / FINAL_IMAGE   # the image after the last step; the last snapshot may be earlier
        if final.is_file() and is_inside(run.path, final):   # never a picture a link brings in from elsewhere
            with PILImage.open(final) as im:
                im = im.convert("RGB")
                im.resize((170, round(170 * im.height / im.width)), PILImage.NEAREST).save(path)
            done = run.manifest.get("steps_done")
            after = f"after step {done - 1}" if isinstance(done, int) and done > 0 else "after the last step"
            pictures.append((path, f"{label}, final image ({after}); its last snapshot's state: {state_name(s, last)}"))
            continue
        if "images" not in run.array_names() or run.n == 0:
            continue
        PILImage.fromarray(thumbnails(run.images, [run.n - 1], 170)[run.n - 1]).save(path)
        step = s.steps[-1] if s.steps else "n/a"
        pictures.append((path, f"{label}, last snapshot (step {step}; no final image): {state_name(s, last)}"))
    return pictures


def _journeys(runs, summaries, labels, fig_dir: Path) -> Path | None:
    rows = [{"label": f"{label}: {verdict_phrase(s.data) or verdict_label(s.verdict, s.n_states)}", "images": run.images,
             "steps": np.asarray(run.steps), "states": np.asarray(s.states or [0] * run.n)}
            for run, s, label in zip(runs, summaries, labels) if "images" in run.array_names() and run.n]
    if not rows:
        return None
    path = fig_dir / "journeys.png"
    journeys(rows).save(path)
    return path


def _what_we_found(doc: Document, runs, summaries, labels, fig_dir: Path) -> None:
    doc.heading(2, "What we found", "what-we-found")
    doc.items([f"**{label}**{finding(label, s)[len(label):]}" for label, s in zip(labels, summaries)],
              css="findings")
    doc.paragraph(overall(summaries))
    finals = _final_images(runs, summaries, labels, fig_dir)
    if finals:
        doc.gallery(finals)
    strip = _journeys(runs, summaries, labels, fig_dir)
    if strip is not None:
        doc.figure(strip, "Where each run went: snapshots spread evenly from the first step to the last, framed "
                          "in the colour of their state.", "natural")


def readable(value) -> str:
    """A value of the run's config as a table cell: a parameterization ``{"name": "pixels", "options":
    {"sigma": 0.1}}`` reads "pixels (sigma 0.1)", other dicts "key value, ...", lists joined by commas."""
    if isinstance(value, dict):
        if "name" in value and set(value) <= {"name", "options"}:
            options = readable(value.get("options") or {})
            return f"{value['name']} ({options})" if options else str(value["name"])
        return ", ".join(f"{k} {readable(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(readable(v) for v in value)
    return "n/a" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _comparison(doc: Document, comp, runs, labels) -> None:
    """The runs side by side: every number of the comparison table, in fewer, readable columns."""
    rows = []
    for label, r in zip(labels, comp.rows):   # one row per run, in the runs' order (names may repeat)
        lo, hi = r["rate_ci95"]
        cycling = r["per_step"] if str(r["per_step"]).startswith("cycling") else ""   # said beside the verdict, as everywhere
        words = verdict_label(r["verdict"], r["n_states"]) + (f"; {cycling}" if cycling else "")
        rows.append([label, words, str(r["n_states"]),
                     f"{r['switches']} ({r['returns']})", f"{r['rate_per_100']:.3g} ({lo:.3g}-{hi:.3g})",
                     _fmt(r["median_dwell"], ".4g"),
                     f"{_fmt(r['silhouette'], '.2f')} / {_fmt(r['jump_ratio'])}",
                     f"{_fmt(r['drift'], '.1f')} / {_pct(r['late_share'])}", r["per_step"]])
    header = ["run", "states: verdict", "states", "switches (returns)", "rate per 100 steps (95% CI)",
              "median dwell, steps", "silhouette / jump ratio", "drift / late share", "per step"]
    extra = [c for c in ("prompt", "param", "seed") if len({str(r.get(c)) for r in comp.rows}) > 1
             and not (c == "seed" and labels[0].startswith("seed"))]
    for c in extra:
        header.insert(1, c)
        for row, r in zip(rows, comp.rows):
            row.insert(1, readable(r.get(c)))
    doc.table(header, rows, "The runs side by side, from their snapshots: the states verdict and its numbers "
                            "(returns: switches back into a state left before; silhouette: how separated the states "
                            "are; jump ratio: a switch's move against moves inside a state), and the per-step "
                            "dynamics of the similarity.")
    for name, caption in (("shared_projection", "Every run in one PCA plane."),
                          ("occupancy", "Share of each run's snapshots in each shared concept.")):
        doc.figure(comp.folder / comp.figures[name], caption, "full")
    if comp.concept_occupancy:
        concepts = list(next(iter(comp.concept_occupancy.values())))
        doc.table(["run", *concepts], [[label, *[f"{100 * v[c]:.0f}%" for c in concepts]]
                                       for label, v in zip(labels, comp.concept_occupancy.values())],
                  "The chart above in numbers: the share of each run's snapshots nearest to each shared concept "
                  "(clusters of all runs' snapshots together, named by their nearest words). A run can sit in a "
                  "concept that its own analysis does not count as a state of its own.")


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


def _intro(runs, summaries) -> str:
    models = sorted({r.model_label for r in runs if r.model_label})
    steps = sorted({s.steps[-1] for s in summaries if s.steps}) or ["n/a"]
    span = f"{steps[0]}" if len(steps) == 1 else f"{steps[0]}-{steps[-1]}"
    model = f" (model: {', '.join(models)})" if models else ""
    # a style prompt (--style) is scored apart from the content prompt: say so, and where its values are
    styles = sorted({str(r.option("style")) for r in runs if r.option("style")})
    style = (f" The style prompt {', '.join(f'“{t}”' for t in styles)} was scored apart from the content prompt: "
             f"its values are the term style(...) in the loss-terms chart, not the prompt similarity." if styles else "")
    return (f"{plural(len(runs), 'run')}{model}, snapshots up to step {span}.{style} Metrics are computed in PCA "
            f"space, never in UMAP or t-SNE coordinates; every number is defined at the end, under "
            f"How to read the numbers.")


def write_report(paths, output: str | Path = "report.html", opts: AnalyzeOptions | None = None,
                 title: str | None = None, reanalyze: bool = False, log=None, model=None,
                 overwrite: bool = False, lead: str | None = None,
                 lead_figures: list[tuple[str | Path, str]] = ()) -> tuple[Path, Path]:
    """Write ``output`` (HTML), ``output`` with .md and the ``<stem>_figures`` folder; returns both paths.

    ``lead`` (paragraphs separated by blank lines) and ``lead_figures`` (picture path, caption;
    pictures inside ``output``'s folder) open the report, before any table: the finding in words.

    An existing ``output`` or Markdown twin is replaced only when a report wrote it, or with
    ``overwrite``; that is checked before anything is analyzed.
    """
    from clipxai.runs.load import load_runs  # noqa: PLC0415

    opts = opts or AnalyzeOptions(projections=("pca",))
    log = log or (lambda msg: None)
    output = Path(output).expanduser()
    check_report_target(output, overwrite)
    runs = load_runs(paths)
    summaries = [Summary(ensure_summary(run, opts, reanalyze, model, log)) for run in runs]
    md_path = output.with_suffix(".md")
    # Everything is written aside and moved into place once whole (the HTML and its Markdown twin last):
    # a full disk or a stop leaves no half report, and an earlier one as it was.
    with staged_files(output.parent, f"the report {output}", last=(output.name, md_path.name)) as stage:
        fig_dir = stage / f"{output.stem}_figures"
        fig_dir.mkdir()
        prompts = list(dict.fromkeys(r.prompt for r in runs if r.prompt))
        title = title or ("What CLIP sees in " + ", ".join(f"“{p}”" for p in prompts) if prompts else "clipxai report")
        labels = [run_label(r, runs) for r in runs]
        doc = Document(title)
        for text in (lead or "").split("\n\n"):
            if text.strip():
                doc.paragraph(text.strip())
        for path, caption in lead_figures:
            doc.figure(Path(path), caption)
        doc.paragraph(_intro(runs, summaries), css="lead")
        _what_we_found(doc, runs, summaries, labels, fig_dir)
        contents = [("what-we-found", "What we found", 1)]
        if len(runs) > 1:
            contents.append(("all-runs-together", "All runs together", 1))
        anchors = _run_anchors(runs)
        contents += [(ident, label, 1) for ident, label in zip(anchors, labels)]
        contents += [("configuration-and-environment", "Configuration and environment", 1),
                     ("how-to-read-the-numbers", "How to read the numbers", 1)]
        doc.contents(contents)
        parent = os.path.commonpath([r.path.resolve().parent for r in runs])
        doc.paragraph(f"Browse these runs step by step: clipxai view {parent}", css="note")
        if len(runs) > 1:
            from clipxai.report.compare import compare_runs  # noqa: PLC0415
            log("comparing runs")
            comp = compare_runs(paths, fig_dir / "compare", opts=opts, log=log, model=model)
            doc.heading(2, "All runs together", "all-runs-together")
            _comparison(doc, comp, runs, labels)
        for i, (run, s, label, ident) in enumerate(zip(runs, summaries, labels, anchors)):
            run_section(doc, run, s, fig_dir, i, label, ident)
        doc.heading(2, "Configuration and environment", "configuration-and-environment")
        _settings(doc, runs, labels, summaries)
        doc.heading(2, "How to read the numbers", "how-to-read-the-numbers")
        doc.definitions(DEFINITIONS)

        log("writing the report")
        (stage / output.name).write_text(doc.to_html(), encoding="utf-8")
        (stage / md_path.name).write_text(doc.to_markdown(output.parent, staged=stage), encoding="utf-8")
    return output, md_path
