"""``clipxai analyze``, ``clipxai report`` and ``clipxai compare``: files in, files out.

The commands only parse options and wire the analysis functions to run folders; every
decision lives in ``analyze.py``, ``report.py`` and ``compare.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from clipxai.analysis.draw.project import METHODS as PROJECTIONS
from clipxai.analysis.motion.dynamics import dynamics_sentence
from clipxai.analysis.states.assign import STATE_MODELS
from clipxai.analysis.states.cluster import METHODS
from clipxai.errors import ClipxaiError
from clipxai.util.interrupt import stop_on_interrupt


def _k(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        k = int(value)
    except ValueError:
        raise click.BadParameter("use 'auto' or a whole number of states", param_hint="--k") from None
    if k < 1:
        raise click.BadParameter("the number of states must be at least 1", param_hint="--k")
    return k


def _projections(value: str) -> tuple[str, ...]:
    names = tuple(p.strip().lower() for p in value.split(",") if p.strip())
    bad = [p for p in names if p not in PROJECTIONS and p != "none"]
    if bad:
        raise click.BadParameter(f"'{bad[0]}' is not one of {', '.join(PROJECTIONS)} (or none)",
                                 param_hint="--projection")
    return tuple(p for p in names if p != "none")


def analysis_options(fn):
    """The options shared by analyze, report and compare (how states are found and labelled)."""
    options = [
        click.option("--features", default="auto", show_default=True,
                     help="What to analyze: auto, embeddings, activations:<layer> (e.g. activations:resblocks.7) or pixels."),
        click.option("--method", type=click.Choice(METHODS), default="kmeans", show_default=True,
                     help="Clustering method (k chosen by silhouette; gmm by BIC; hdbscan by density)."),
        click.option("--k", "k", default="auto", show_default=True, help="Number of states, or auto."),
        click.option("--k-max", type=click.IntRange(2, 50), default=10, show_default=True,
                     help="Largest number of states tried when --k is auto."),
        click.option("--states", "state_model", type=click.Choice(STATE_MODELS), default="hmm", show_default=True,
                     help="State path: an HMM's Viterbi path over the clusters, or the clusters as they are."),
        click.option("--concepts", default=None,
                     help='Concept probes, comma-separated (e.g. "love,mouth,hands,ring,heart"); needs the model.'),
        click.option("--model", default=None,
                     help="CLIP to use for labels, concepts and legacy runs (default: the run's own model)."),
        click.option("--embedding-model", default=None,
                     help="For a run of several models: whose embeddings to analyze (default: the first model's)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps."),
        click.option("--vocab", "vocab_file", type=click.Path(path_type=Path), default=None,
                     help="A word list (one per line) added to CLIP's vocabulary for the labels."),
        click.option("--vocab-only", is_flag=True, help="Label with the --vocab list only."),
        click.option("--top-words", type=click.IntRange(1, 50), default=5, show_default=True,
                     help="Words per state."),
        click.option("--no-labels", is_flag=True, help="Skip the word labels (no model needed)."),
        click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
                     help="Seed of every random choice."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def build_options(features, method, k, k_max, state_model, concepts, model, device, vocab_file, vocab_only,
                  top_words, no_labels, seed, projection="pca", no_gif=False, embedding_model=None):
    from clipxai.analysis.analyze import AnalyzeOptions  # noqa: PLC0415
    from clipxai.analysis.draw.chart import parse_concepts  # noqa: PLC0415

    return AnalyzeOptions(
        features=features, method=method, k=_k(k), k_max=k_max, state_model=state_model,
        projections=_projections(projection), concepts=parse_concepts(concepts) if concepts is not None else None,
        model=model, device=device, labels=not no_labels, vocab_file=str(vocab_file) if vocab_file else None,
        vocab_only=vocab_only, top_words=top_words, gif=not no_gif, seed=seed, embedding_model=embedding_model)


PROJECTION_OPTION = dict(
    default="pca", show_default=True,
    help="2-D pictures to draw: pca, umap, tsne (comma-separated) or none. UMAP compiles code with numba "
         "the first time (cached afterwards).")
FEW_SNAPSHOTS = 20  # below this, a verdict rests on too little to be trusted


def describe(summary: dict) -> str:
    """A few lines a person reads: verdict, the numbers behind it, and each state's words."""
    from clipxai.analysis.motion.verdict import plural  # noqa: PLC0415
    from clipxai.util.words import verdict_phrase  # noqa: PLC0415

    rate = summary["switch_rate_per_100_steps"]
    lo, hi = rate["ci95"]
    lines = [
        f"{summary['run']['path']}: {verdict_phrase(summary)} ({summary['verdict']})",   # the words every view uses
        f"  {plural(summary['n_states'], 'state')}, {plural(summary['switches'], 'switch')}, {rate['value']:.3g} "
        f"per 100 steps (95% CI {lo:.3g}-{hi:.3g}), over {plural(summary['n_snapshots'], 'snapshot')}",
    ]
    labels = (summary.get("labels") or {}).get("states", {})
    for s, d in summary["dwell_steps"].items():
        words = ", ".join(w["word"] for w in labels.get(s, [])[:3])
        opinion = ((summary.get("labels") or {}).get("opinion") or {}).get(s)
        words = "; ".join(filter(None, [words, opinion and f"opinion: {opinion['text']}"]))
        lines.append(f"  state {s}: dwell median {d['median']:.4g} steps (IQR {d['iqr']:.4g}), "
                     f"{100 * d['occupancy']:.0f}% of the run" + (f"  [{words}]" if words else ""))
    lines.append(f"  why: {summary['verdict_reason']}")
    lines.append(f"  per step: {dynamics_sentence(summary.get('dynamics'))}")
    for note in summary.get("notes", []):
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def few_snapshots_warning(summary: dict) -> str | None:
    n = summary["n_snapshots"]
    if n >= FEW_SNAPSHOTS:
        return None
    return (f"warning: only {n} snapshots; a verdict on so few is not trustworthy (record at least {FEW_SNAPSHOTS}: "
            f"more steps, or a smaller --snapshot-every).")


def wrote(run, summary: dict) -> str:
    """What analyze wrote, naming the animation when there is one."""
    figures = summary.get("figures") or {}
    n = len([k for k in figures if k != "animation"])
    line = f"  wrote {run.analysis_dir / 'summary.json'} and {n} figure{'s' if n != 1 else ''}"
    if "animation" in figures:
        line += f", and the animation {run.analysis_dir / figures['animation']}"
    return line


def wrote_evaluation(run) -> str | None:
    """The evaluation's verdict on the final image and where it was written, when there is one."""
    from clipxai.analysis.trust.run import EVALUATION_FILE, read_evaluation  # noqa: PLC0415

    data = read_evaluation(run)
    if data is None:
        return None
    return f"  final image: {data['final']['verdict']}\n  wrote {run.analysis_dir / EVALUATION_FILE}"


def _log(quiet: bool):
    return (lambda msg: None) if quiet else (lambda msg: click.echo(f"  ... {msg}", err=True))


def _runs_in(path: Path) -> list[Path] | None:
    """The runs in ``path`` when it is a folder of runs rather than a run itself, else None."""
    from clipxai.runs.find import find_runs  # noqa: PLC0415
    from clipxai.runs.format import RUN_FILE  # noqa: PLC0415

    if not path.is_dir() or (path / RUN_FILE).exists():
        return None
    found = find_runs(path)
    return found or None


def open_in_browser(path: Path) -> bool:
    """Open ``path`` in the user's web browser; one sentence on standard error when there is none."""
    import webbrowser  # noqa: PLC0415

    try:
        ok = webbrowser.open(Path(path).resolve().as_uri())
    except webbrowser.Error:
        ok = False
    if not ok:
        click.echo(f"No web browser could be started here; open {path} in one yourself.", err=True)
    return bool(ok)


OPEN_OPTION = dict(is_flag=True, help="Open the report in the web browser when it is written.")


@click.command("analyze", context_settings={"show_default": True})
@click.argument("run_path", type=click.Path(path_type=Path))
@analysis_options
@click.option("--projection", **PROJECTION_OPTION)
@click.option("--no-gif", is_flag=True, help="Do not write the animated GIF.")
@click.option("--opinion", is_flag=True,
              help="Also ask CLIP's opinion of each state: a few words ascended to match it (clipxai opinion).")
@click.option("--explain", is_flag=True,
              help="Also explain each state: which components of CLIP make it, and does ablating them matter "
                   "(clipxai explain; writes analysis/explain.json).")
@click.option("--evaluate", is_flag=True,
              help="Also evaluate each state and the final image: other models, perturbations, the natural "
                   "pathway, written words (clipxai evaluate; writes analysis/evaluation.json).")
@click.option("--judge", "judges", multiple=True,
              help="With --evaluate (implies it): a model that judges the images (any --model form); repeatable. "
                   "Default: the models this machine has that the ascent did not use (toy-b for toy).")
@click.option("--reference", type=click.Path(path_type=Path), default=None,
              help="With --evaluate (implies it): a folder of natural images for the judges' baseline and the "
                   "natural pathway (a toy run uses the toy world's images).")
@click.option("--json", "as_json", is_flag=True, help="Print summary.json instead of the text summary.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
def analyze_command(run_path, projection, no_gif, as_json, quiet, opinion, explain, evaluate, judges, reference,
                    **kw):
    """Cluster, project, chart and quantify a run; writes RUN/analysis/ (summary.json, figures).

    RUN_PATH may also be a folder of runs (a batch of seeds, a sweep): each run in it is analyzed.
    """
    from clipxai.analysis.analyze import analyze_run  # noqa: PLC0415
    from clipxai.runs.load import open_run  # noqa: PLC0415

    opts = build_options(projection=projection, no_gif=no_gif, **kw)
    opts.opinion = opinion
    opts.explain = explain
    opts.evaluate = evaluate or bool(judges) or reference is not None
    opts.judges = tuple(judges) or None
    opts.reference = None if reference is None else str(reference)
    batch = _runs_in(run_path)
    judge_models = None
    if opts.evaluate:  # the judges and the reference checked once, before any run is analyzed
        from clipxai.analysis.trust.run import load_judges, load_reference  # noqa: PLC0415
        first = open_run(batch[0] if batch else run_path)
        if opts.reference is not None and "images" in first.array_names():
            load_reference(opts.reference, tuple(first.images.shape[-2:]))
        judge_models = load_judges(judges, opts.device) if judges else None
    if batch is None:
        run = open_run(run_path)
        with stop_on_interrupt():
            summary = analyze_run(run, opts, log=_log(quiet), judges=judge_models)
        if as_json:
            click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
            return
        click.echo(describe(summary))
        click.echo(wrote(run, summary))
        if opts.evaluate and (line := wrote_evaluation(run)):
            click.echo(line)
        warning = few_snapshots_warning(summary)
        if warning:
            click.echo(warning, err=True)
        click.echo(f"next: clipxai report {run_path} -o report.html --open")
        return
    summaries, failed = [], []
    for i, path in enumerate(batch):
        if not as_json:
            click.echo(f"[{i + 1}/{len(batch)}] {path}", err=True)
        try:
            run = open_run(path)
            with stop_on_interrupt():
                summary = analyze_run(run, opts, log=_log(quiet), judges=judge_models)
        except ClipxaiError as err:
            failed.append(path)
            click.echo(f"  skipped: {err}", err=True)
            continue
        summaries.append(summary)
        if not as_json:
            click.echo(describe(summary))
            click.echo(wrote(run, summary))
            if opts.evaluate and (line := wrote_evaluation(run)):
                click.echo(line)
            warning = few_snapshots_warning(summary)
            if warning:
                click.echo(f"  {warning}", err=True)
    if as_json:
        click.echo(json.dumps(summaries, indent=2, ensure_ascii=False))
    elif summaries:
        click.echo(f"next: clipxai report {' '.join(str(s['run']['path']) for s in summaries)} -o report.html --open")
    if failed:
        raise ClipxaiError(f"{len(failed)} of {len(batch)} runs in {run_path} could not be analyzed "
                           f"(first: {failed[0]}); the others were.")


@click.command("report", context_settings={"show_default": True})
@click.argument("run_paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="The HTML file; a Markdown twin and its figures folder go beside it.")
@click.option("--title", default=None, help="Title of the report (default: from the prompts).")
@click.option("--force", "--overwrite", "overwrite", is_flag=True,
              help="Replace an existing file at -o (or its .md twin) even if no report wrote it.")
@click.option("--reanalyze", is_flag=True, help="Analyze again even where summary.json exists.")
@click.option("--open", "open_after", **OPEN_OPTION)
@analysis_options
@click.option("--projection", **PROJECTION_OPTION)
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
def report_command(run_paths, output, title, overwrite, reanalyze, open_after, projection, quiet, **kw):
    """Write one self-contained HTML report (and a Markdown twin) for one or more runs (a folder of runs
    stands for every run in it)."""
    from clipxai.report.report import write_report  # noqa: PLC0415

    opts = build_options(projection=projection, **kw)
    with stop_on_interrupt():
        html_path, md_path = write_report(run_paths, output, opts=opts, title=title, reanalyze=reanalyze,
                                          log=_log(quiet), overwrite=overwrite)
    click.echo(f"wrote {html_path} and {md_path}")
    if open_after:
        open_in_browser(html_path)


@click.command("compare", context_settings={"show_default": True})
@click.argument("run_paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the comparison figures and table (default: ./compare-<first run name>).")
@click.option("--reanalyze", is_flag=True, help="Analyze again even where summary.json exists.")
@analysis_options
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress messages.")
def compare_command(run_paths, out_dir, reanalyze, as_json, quiet, **kw):
    """Several runs side by side: shared projection, oscillation table, concept occupancy."""
    from clipxai.report.compare import compare_runs  # noqa: PLC0415

    opts = build_options(projection="pca", **kw)
    with stop_on_interrupt():
        result = compare_runs(run_paths, out_dir, opts=opts, reanalyze=reanalyze, log=_log(quiet))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(result.table_text())
        click.echo(f"wrote {result.folder}", file=sys.stdout)
