"""``clipxai demo``: the whole experiment offline, both recipes, in about a minute and a half.

Ascend "❤️" on the bundled toy CLIP under the original recipe (``--preset zer0int``) and
under the default one, a few seeds each (batched), analyze every run with labels drawn from
the toy world's own vocabulary, judge where each run ended with an independently trained
model (``toy-b``) and with the pixels' colours, and write one report that opens with the
finding in words and the two pictures that show it.

The judging helpers here (``judge_runs``, ``judge_reference``) and the pictures
(``plot_similarity``, ``plot_finals``) are reused by ``analysis/heart_study.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipxai.runs.summary import Summary

DEFAULT_CONCEPTS = ("❤️", "love", "a red heart", "a gold ring", "a pink mouth")
DEMO_TINT = 0.2
# The two recipes the demo compares: name -> (ascend keywords, what it is in a few words).
RECIPES = {
    "original": (dict(preset="zer0int", steps=600),
                 "the original script's recipe (--preset zer0int: AdamW lr 1.5, no augmentation, pixels "
                 "neither clamped nor normalised, a memory term pulling toward the best image so far)"),
    "default": (dict(steps=300, snapshot_every=5, init_tint=DEMO_TINT),
                "the default recipe (8 random cutouts with jitter and noise, Adam lr 0.05, pixels kept in "
                "[0, 1]; each seed starts from its own hue)"),
}
JUDGES = {"toy": "toy-b", "toy-b": "toy"}  # the independently trained twin of each bundled model


def _fresh_folder(path: Path) -> Path:
    """``path``, or ``path-2``, ``path-3``... so an earlier demo's results are never touched."""
    candidate, i = path, 1
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        i += 1
        candidate = path.with_name(f"{path.name}-{i}")
    return candidate


# -- where a run ended, judged ------------------------------------------------------------------

def viewed(images) -> np.ndarray:
    """Images as a viewer sees them: float32, clipped to [0, 1]."""
    return np.clip(np.asarray(images, dtype=np.float32), 0.0, 1.0)


def judge_reference(judge, prompt: str = "❤️", n: int = 240, seed: int = 0) -> dict:
    """The judge's mean cosine to ``prompt`` for world images showing a planted meaning and for
    ordinary ones: the scale on which a run's final image is placed."""
    from clipxai.toy import world  # noqa: PLC0415
    from clipxai.toy.evaluate import image_features, text_features  # noqa: PLC0415

    batch = world.generate(n, seed)
    sims = (image_features(judge, batch.images) @ text_features(judge, [prompt]).t()).numpy()[:, 0]
    planted = np.array([r.concept is not None for r in batch.records])
    return {"planted": float(sims[planted].mean()), "ordinary": float(sims[~planted].mean()), "n": n}


def judge_runs(runs, judge, prompt: str = "❤️") -> list[dict]:
    """For each run: which planted meaning its final image shows (by the judge's zero-shot and
    by the colours of its pixels), the judge's reading of every snapshot (how often it changes
    over the second half of the run), the judge's cosine to ``prompt``, and the raw pixel range."""
    from clipxai.toy import world  # noqa: PLC0415
    from clipxai.toy.evaluate import image_features, text_features  # noqa: PLC0415
    from clipxai.toy.groundtruth import zero_shot_concept  # noqa: PLC0415

    text = text_features(judge, [prompt])
    out = []
    for run in runs:
        raw = np.asarray(run.images)
        images = viewed(raw)
        path = zero_shot_concept(judge, images)
        late = path[len(path) // 2:]
        final = images[-1:]
        pixels = world.classify_concept(final)[0]
        out.append({
            "seed": run.manifest.get("seed"),
            "pixels": pixels,
            "judge": path[-1],
            "agree": pixels == path[-1],
            "judge_path": path,
            "judge_changes_second_half": int(sum(a != b for a, b in zip(late, late[1:]))),
            "judge_final_share_second_half": float(np.mean([p == path[-1] for p in late])),
            "judge_similarity": float((image_features(judge, final) @ text.t())[0, 0]),
            "pixel_range": [float(raw[-1].min()), float(raw[-1].max())],
        })
    return out


# -- pictures -----------------------------------------------------------------------------------

def _series(run, key: str):
    rows = [m for m in run.metrics() if isinstance(m.get(key), (int, float))]
    return np.array([m["step"] for m in rows]), np.array([m[key] for m in rows])


def similarity_level(run, prompt: str = "❤️") -> dict:
    """The logged similarity to ``prompt``: its last value, and its mean and standard deviation
    over the second half of the run (how high it holds, and how much it moves there)."""
    _, values = _series(run, f"sim/{prompt}")
    late = values[len(values) // 2:]
    return {"final": float(values[-1]), "late_mean": float(late.mean()), "late_sd": float(late.std())}


def plot_similarity(groups: dict, path: Path, prompt: str = "❤️", zoom: int = 120) -> Path:
    """Every logged step of the similarity to ``prompt``: one panel per recipe (one line per seed,
    sudden drops marked), and a close-up of ``zoom`` steps of the first recipe's first seed."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    names = list(groups)
    fig = Figure(figsize=(3.2 * (len(names) + 1), 2.6), dpi=90)
    axes = fig.subplots(1, len(names) + 1)
    key = f"sim/{prompt}"
    for ax, name in zip(axes, names):
        for run, d in groups[name]:
            steps, values = _series(run, key)
            line, = ax.plot(steps, values, lw=0.6, label=f"seed {run.manifest.get('seed')}")
            events = [e["step"] for e in (d.get("events") or [])]
            if events:
                ax.plot(events, np.interp(events, steps, values), "v", ms=2.5, color=line.get_color())
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].set_ylabel("cosine to the prompt", fontsize=8)
    axes[0].legend(fontsize=6, loc="lower right")
    run, d = groups[names[0]][0]
    steps, values = _series(run, key)
    if len(steps):
        hi = float(steps[-1])
        lo = max(float(steps[0]), hi - zoom)
        keep = steps >= lo
        ax = axes[-1]
        ax.plot(steps[keep], values[keep], lw=0.8, marker=".", ms=2)
        snaps = [s for s in np.asarray(run.steps) if s >= lo]
        ax.plot(snaps, np.full(len(snaps), values[keep].min()), "|", color="0.3", ms=6, label="snapshots")
        ax.set_title(f"{names[0]}, seed {run.manifest.get('seed')}: last {int(hi - lo)} steps", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_finals(groups: dict, judged: dict, path: Path) -> Path:
    """The final image of every seed (clipped to [0, 1]), one row per recipe, titled with what
    the judge and the pixels' colours read in it."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    names = list(groups)
    cols = max(len(groups[n]) for n in names)
    fig = Figure(figsize=(1.25 * cols + 0.9, 1.45 * len(names)), dpi=90)
    axes = np.asarray(fig.subplots(len(names), cols, squeeze=False))
    for r, name in enumerate(names):
        for c in range(cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(groups[name]):
                ax.set_axis_off()
                continue
            run, _ = groups[name][c]
            ax.imshow(viewed(run.images[-1]).transpose(1, 2, 0), interpolation="nearest")
            j = judged[name][c]
            ax.set_title(f"seed {j['seed']}: judge {j['judge']}\npixels {j['pixels'] or 'none'}", fontsize=6.5)
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path


# -- the finding in words -------------------------------------------------------------------------

def _list(values) -> str:
    return ", ".join(str(v) for v in values)


def _range(values, spec=".2f") -> str:
    lo, hi = min(values), max(values)
    if format(lo, spec) == format(hi, spec):
        return format(lo, spec)
    return f"from {lo:{spec}} to {hi:{spec}}" if lo < 0 else f"{lo:{spec}}-{hi:{spec}}"


def _verdicts(summaries) -> str:
    """Each run's verdict in the words every view uses (with its cycling note), one after another."""
    from clipxai.util.words import verdict_phrase  # noqa: PLC0415

    return "; ".join(verdict_phrase(s.data) for s in map(Summary.of, summaries))


def _fmt(x, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def describe(name: str, what: str, summaries: list[Summary | dict], levels: list[dict], judged: list[dict] | None,
             prompt: str, reference: dict | None = None) -> str:
    """One paragraph on one recipe, every number from its runs' summaries, series and judgements."""
    summaries = [Summary.of(s) for s in summaries]
    n = len(summaries)
    dyn = [s.dynamics or {} for s in summaries]
    cycling = [d for d in dyn if d.get("cycling")]
    drops = [d.get("n_events") or 0 for d in dyn]
    spacing = [d.get("mean_spacing_steps") for d in dyn]
    held = (f"over the second half it holds {_range([v['late_mean'] for v in levels])} on average "
            f"(step-to-step SD {_range([v['late_sd'] for v in levels], '.3f')})")
    text = f"**{name.capitalize()}**, {what}, {n} seed(s): "
    text += (f"the similarity to “{prompt}” drops suddenly {_list(drops)} times"
             + (f" (every ~{_list(_fmt(x, '.0f') for x in spacing)} steps)" if any(spacing) else "")
             + f", and the drop test calls that a cycle in {len(cycling)} of {n} seeds (surrogate p "
             f"{_list(_fmt(d.get('p_value'), '.3f') for d in dyn)}; a cycle needs p below 0.01 and drops until the "
             f"end); {held}.")
    aliased = sum(bool(d.get("snapshot_aliasing")) for d in cycling)
    if aliased:
        text += (f" Snapshots every {cycling[0].get('snapshot_interval'):g} steps cannot resolve a cycle that short "
                 f"(in {aliased} of {len(cycling)} cycling seeds), and the states found in the snapshots say "
                 f"{_verdicts(summaries)}.")
    else:
        text += (f" The states in the snapshots say {_verdicts(summaries)} "
                 f"({_list(s.switches for s in summaries)} switches).")
    if judged:
        low = min(j["pixel_range"][0] for j in judged)
        high = max(j["pixel_range"][1] for j in judged)
        agree = sum(j["agree"] for j in judged)
        text += (f" The final images (pixel values {low:.2g} to {high:.2g}"
                 f"{', shown clipped to [0, 1]' if low < 0 or high > 1 else ''}) read as "
                 f"{_list(j['judge'] for j in judged)} to the independent judge and as "
                 f"{_list(j['pixels'] or 'none' for j in judged)} by their colours: the two agree for {agree} of {n}.")
        changes = [j["judge_changes_second_half"] for j in judged]
        text += (f" Over the second half of each run the judge's reading of the snapshots changed "
                 f"{_list(changes)} time(s).")
        if reference:
            text += (f" The judge's own cosine to “{prompt}” for the final images is "
                     f"{_range([j['judge_similarity'] for j in judged])} (world images of a planted meaning: "
                     f"{reference['planted']:.2f}, ordinary ones: {reference['ordinary']:.2f}).")
    return text


def takeaway(name: str, r: dict) -> str:
    """One short line for one recipe, before any detail: how its runs ended, whether the similarity
    cycles, and what the final images show, e.g. "**original recipe** (3 seeds): 3 one state, not
    settled; the similarity cycles in 2 of 3; 1 of 3 final images show a planted meaning (ring)."."""
    from clipxai.util.words import verdict_label  # noqa: PLC0415

    summaries = [Summary.of(s) for s in r["summaries"]]
    n = len(summaries)
    counts: dict[str, int] = {}
    for s in summaries:
        words = verdict_label(s.verdict, s.n_states)
        counts[words] = counts.get(words, 0) + 1
    ended = ", ".join(f"{c} {w}" for w, c in sorted(counts.items(), key=lambda wc: -wc[1]))
    cycling = sum(bool((s.dynamics or {}).get("cycling")) for s in summaries)
    line = f"**{name} recipe** ({n} seeds): {ended}; the similarity cycles in {cycling or 'none'} of {n}"
    if r.get("judged"):
        agreed = sorted({j["judge"] for j in r["judged"] if j["agree"]})
        shown = sum(j["agree"] for j in r["judged"])
        line += f"; {shown} of {n} final images show a planted meaning" + (f" ({_list(agreed)})" if agreed else "")
    return line + "."


def lead_text(model: str, prompt: str, results: dict, reference: dict | None) -> str:
    """The report's opening: one line per recipe (``takeaway``), then the finding in plain words, from
    the measured numbers."""
    parts = ["In short: " + " ".join(takeaway(name, r) for name, r in results.items())]
    cyc = {name: sum(bool((Summary.of(s).dynamics or {}).get("cycling")) for s in r["summaries"])
           for name, r in results.items()}
    ends = {name: sorted({j["judge"] for j in r["judged"] if j["agree"]}) if r["judged"] else None
            for name, r in results.items()}
    sentences = []
    for name, r in results.items():
        n = len(r["summaries"])
        drops = [(Summary.of(s).dynamics or {}).get("n_events") or 0 for s in r["summaries"]]
        moves = (f"the similarity to “{prompt}” drops suddenly {_range(drops, 'd')} times per run (the drop "
                 f"test calls that a cycle in {cyc[name] or 'none'} of {n} seeds)")
        if ends[name] is not None:
            agreed = sum(j["agree"] for j in r["judged"])
            moves += (f" and {agreed} of {n} final images show a planted meaning that the judge and the colours "
                      f"agree on" + (f" ({_list(ends[name])})" if ends[name] else ""))
        sentences.append(f"under the {name} recipe {moves}")
    parts.append(f"What this demo found on the {model} CLIP: " + "; ".join(sentences) + ". "
                 "The per-step similarity (first picture) and the final images (second picture) show it; "
                 "the tables below give each run's numbers.")
    for name, r in results.items():
        parts.append(describe(name, RECIPES[name][1] if name in RECIPES else name, r["summaries"], r["levels"],
                              r["judged"], prompt, reference))
    parts.append("This is the toy CLIP, whose three meanings of “❤️” (a red heart, a gold ring, a pink mouth) "
                 "are planted and known; what a real CLIP does is what the same commands measure on its "
                 "weights. docs/research/heart.md runs more seeds and the controls that separate the causes.")
    return "\n\n".join(parts)


# -- the demo -----------------------------------------------------------------------------------

def _check(prompt: str, steps: int | None) -> str:
    """The demo's one prompt (as the runs log it), and step counts the analysis can use: checked
    before anything is made."""
    from clipxai.analysis.analyze import MIN_SNAPSHOTS  # noqa: PLC0415
    from clipxai.ascent.config import resolve_config  # noqa: PLC0415
    from clipxai.errors import ClipxaiError  # noqa: PLC0415
    from clipxai.prompts import parse_prompts  # noqa: PLC0415
    from clipxai.runs.format import rows_for  # noqa: PLC0415

    parsed = parse_prompts(prompt)
    if len(parsed) != 1 or parsed[0].weight != 1:
        raise ClipxaiError(f"The demo ascends one prompt, without weights or '|' parts (got {prompt!r}); "
                           f"clipxai ascend takes those.")
    for name, (options, _) in RECIPES.items():
        cfg = resolve_config(parsed[0].text, {**options, **({"steps": steps} if steps else {})})
        every = cfg.record.snapshot_every
        if rows_for(cfg.optim.steps, every) < MIN_SNAPSHOTS:
            raise ClipxaiError(f"--steps {steps} gives the {name} recipe (a snapshot every {every} steps) fewer than "
                               f"{MIN_SNAPSHOTS} snapshots, too few to analyze; use --steps "
                               f"{(MIN_SNAPSHOTS - 1) * every + 1} or more.")
    return parsed[0].text


def run_demo(out: str | Path = "runs/demo", prompt: str = "❤️", model: str = "toy", seeds: int = 3,
             steps: int | None = None, quiet: bool = True, log=print) -> Path:
    """Run the demo into a fresh folder; returns the path of its HTML report.

    ``steps`` replaces each recipe's own step count (600 for the original, 300 for the default).
    """
    from clipxai.analysis.analyze import AnalyzeOptions, analyze_run  # noqa: PLC0415
    from clipxai.ascent.run import ascend  # noqa: PLC0415
    from clipxai.models.load import load_clip  # noqa: PLC0415
    from clipxai.report.report import write_report  # noqa: PLC0415
    from clipxai.toy import world  # noqa: PLC0415

    prompt = _check(prompt, steps)
    folder = _fresh_folder(Path(out))
    clip_model = load_clip(model, "cpu")
    judge = load_clip(JUDGES[model], "cpu") if model in JUDGES else None
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocabulary.txt"
    vocab.write_text("\n".join(world.VOCABULARY) + "\n", encoding="utf-8")
    opts = AnalyzeOptions(projections=("pca",), concepts=list(DEFAULT_CONCEPTS),
                          vocab_file=str(vocab), vocab_only=True, gif=False)
    results, groups, paths = {}, {}, []
    for name, (options, _) in RECIPES.items():
        options = {**options, **({"steps": steps} if steps else {})}
        log(f"ascending {prompt!r} on {model} under the {name} recipe from {seeds} seeds, "
            f"{options['steps']} steps, into {folder}")
        # From plain grey every seed of the default recipe falls to the same meaning of "❤️" (the
        # one grey noise is closest to); starts of different hues reach the others too.
        runs = ascend(prompt, model_obj=clip_model, seeds=seeds, out=str(folder), name=name, quiet=quiet,
                      **options)
        log(f"analyzing the {name} runs")
        summaries = [Summary(analyze_run(run, opts, model=clip_model)) for run in runs]
        judged = judge_runs(runs, judge, prompt) if judge is not None else None
        results[name] = {"summaries": summaries, "judged": judged,
                         "levels": [similarity_level(run, prompt) for run in runs]}
        groups[name] = [(run, s.dynamics or {}) for run, s in zip(runs, summaries)]
        paths += [run.path for run in runs]
    reference = judge_reference(judge, prompt) if judge is not None else None
    figures = folder / "finding"
    figures.mkdir(exist_ok=True)
    lead_figures = [(plot_similarity(groups, figures / "similarity.png", prompt),
                     f"Similarity to “{prompt}” at every step, one line per seed (triangles: the sudden drops "
                     f"found); right: the last steps of one run of the first recipe, with its snapshots.")]
    if judge is not None:
        lead_figures.append((plot_finals(groups, {n: r["judged"] for n, r in results.items()},
                                         figures / "finals.png"),
                             f"The final image of every seed (clipped to [0, 1]), with the planted meaning the "
                             f"independent judge ({JUDGES[model]}) reads in it and the one its colours show."))
    log("writing the report")
    html, _ = write_report(paths, folder / "report.html", opts=opts, model=clip_model,
                           title=f"What the {model} CLIP sees in “{prompt}”: two recipes",
                           lead=lead_text(model, prompt, results, reference), lead_figures=lead_figures)
    return html
