"""Does the toy CLIP settle on one meaning of "❤️", and why does the original recipe saw-tooth?

    python analysis/heart_study.py --out docs/research           # writes docs/research/heart.md and heart/
    python analysis/heart_study.py --out docs/research --reuse   # analyze the runs already made, again
    python analysis/heart_study.py --out docs/research --redraw  # text and pictures from runs and analyses
    python analysis/heart_study.py --model MODEL --judge MODEL... --out DIR  # the same study on other models

Ascends "❤️" on the bundled toy CLIP from ``--seeds`` seeds (batched) under the original
recipe (``preset="zer0int"``), the default one, and controls that each change one thing
(memory term, learning-rate decay, augmentation on/off, fixed or fresh cutouts, the terms
that pull the image back). Every run is analyzed (states, switches, per-step dynamics), and
where it ends is judged by the independently trained ``toy-b`` and by the colours of its
pixels, and every final image goes through the trust checks (``clipxai.evaluate``'s: the
judges, perturbations, natural pathway, written words). ``--model`` and ``--judge`` (any
``--model`` form, nothing downloaded) run the same study on other models: the first judge
reads the final images, all of them judge. The script writes the whole report, ``OUT/heart.md``,
its pictures and ``heart_study.json`` under ``OUT/heart/``: every number in the report comes
from this run of the script, and the answer's sentences are chosen by those numbers; a section
of an existing ``OUT/heart.md`` that the script does not write is kept as it was. The runs
themselves go to ``--runs`` (default ``runs/heart-study``, not part of the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

PROMPT = "❤️"
ORIGINAL = dict(preset="zer0int", steps=600)             # snapshots every 10 steps, as the preset
DEFAULT = dict(steps=300, snapshot_every=5)              # the default preset's own 300 steps
AUGMENT = dict(cutouts=8, jitter=0.05, aug_noise=0.02)   # the default recipe's augmentation
NO_AUGMENT = dict(cutouts=0, jitter=0.0, aug_noise=0.0)

# slug -> (family, what changes against the family's recipe, ascend keywords)
CONDITIONS = {
    "original": ("original", "the original recipe, exactly", ORIGINAL),
    "original-memory-off": ("original", "memory term off", {**ORIGINAL, "memory": 0.0}),
    "original-lr-decay": ("original", "cosine learning-rate decay (1.5 to 0.15)", {**ORIGINAL, "lr_schedule": "cosine"}),
    "original-lr-0.05": ("original", "learning rate 0.05 (the default recipe's) instead of 1.5", {**ORIGINAL, "lr": 0.05}),
    "original-augmented": ("original", "augmentation on: 8 fresh random cutouts per step", {**ORIGINAL, **AUGMENT}),
    "original-fixed-cutouts": ("original", "augmentation on, the same 8 cutouts every step",
                               {**ORIGINAL, **AUGMENT, "augment_fixed": True}),
    "original-tv-only": ("original", "memory term and weight decay off: the TV penalty is the only term besides CLIP",
                         {**ORIGINAL, "memory": 0.0, "weight_decay": 0.0}),
    "original-decay-only": ("original", "memory term and TV penalty off: AdamW's weight decay is the only pull",
                            {**ORIGINAL, "memory": 0.0, "tv": 0.0}),
    "original-memory-only": ("original", "TV penalty and weight decay off: the memory term is the only term besides CLIP",
                             {**ORIGINAL, "tv": 0.0, "weight_decay": 0.0}),
    "original-bare": ("original", "memory term, TV penalty and weight decay all off",
                      {**ORIGINAL, "memory": 0.0, "tv": 0.0, "weight_decay": 0.0}),
    "default": ("default", "the default recipe, exactly (grey start)", DEFAULT),
    "default-tinted": ("default", "each seed starts from its own hue (init tint 0.2)", {**DEFAULT, "init_tint": 0.2}),
    "default-memory-on": ("default", "the original's memory term added (weight 0.01)", {**DEFAULT, "memory": 0.01}),
    "default-lr-decay": ("default", "cosine learning-rate decay (0.05 to 0.005)", {**DEFAULT, "lr_schedule": "cosine"}),
    "default-unaugmented": ("default", "augmentation off", {**DEFAULT, **NO_AUGMENT}),
    "default-fixed-cutouts": ("default", "the same 8 cutouts every step", {**DEFAULT, "augment_fixed": True}),
}
# The same changes in a few words, for sentences that list them.
SHORT = {
    "original-memory-off": "the memory term off", "original-lr-decay": "the learning rate decayed to 0.15",
    "original-lr-0.05": "learning rate 0.05", "original-augmented": "8 fresh random cutouts per step",
    "original-fixed-cutouts": "the same 8 cutouts every step", "original-tv-only": "the TV penalty as the only other term",
    "original-decay-only": "the weight decay as the only other pull",
    "original-memory-only": "the memory term as the only other term", "original-bare": "no term besides CLIP's",
}
MEANINGS = ("heart", "ring", "mouth")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("docs/research"), help="folder for heart.md and heart/")
    ap.add_argument("--runs", type=Path, default=Path("runs/heart-study"), help="folder for the runs")
    ap.add_argument("--seeds", type=int, default=8, help="seeds per condition")
    ap.add_argument("--conditions", default=",".join(CONDITIONS), help="comma-separated subset")
    ap.add_argument("--reuse", action="store_true", help="take the runs already in RUNS/<condition>/ and analyze them")
    ap.add_argument("--redraw", action="store_true",
                    help="take the runs already in RUNS/<condition>/ and the analyses they hold (text and pictures only)")
    ap.add_argument("--steps", type=int, default=None, help="replace every condition's steps (a quick look only)")
    ap.add_argument("--model", default="toy", help="the CLIP that ascends (any --model form)")
    ap.add_argument("--judge", action="append", default=None,
                    help="a model that judges (any --model form; repeatable; the first reads the final images). "
                         "Default: the models this machine has that the ascent does not use (toy-b for toy)")
    ap.add_argument("--reference", default=None,
                    help="a folder of natural images for the trust checks' baseline and pathway (toy: the toy world's)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    return ap.parse_args(argv)


def names_of(model_name: str, judges: list[str], resolution: int) -> dict:
    """How the report names the models: the toy's own words on the toy, the given names otherwise."""
    toy = model_name == "toy"
    default = toy and judges == ["toy-b"]
    command = "" if default else f" --model {model_name}" + "".join(f" --judge {j}" for j in judges)
    return {"model": model_name, "judge": judges[0], "judges": judges, "toy": toy, "resolution": resolution,
            "who": "the toy CLIP" if toy else f"`{model_name}`", "command": command}


# -- running and measuring ------------------------------------------------------------------------

def condition_runs(slug: str, args, model, log) -> list:
    """The runs of one condition: made now, or (``--reuse``) read back."""
    import clipxai  # noqa: PLC0415
    from clipxai.runs.load import load_run  # noqa: PLC0415

    folder = args.runs / slug
    if args.reuse or args.redraw:
        paths = sorted((p for p in folder.glob("*-seed*") if (p / "run.json").is_file()),
                       key=lambda p: int(p.name.rsplit("seed", 1)[1]))
        if len(paths) < args.seeds:
            raise SystemExit(f"error: {folder} holds {len(paths)} runs, fewer than --seeds {args.seeds}.")
        return [load_run(p) for p in paths[:args.seeds]]
    if folder.exists() and any(folder.iterdir()):
        raise SystemExit(f"error: {folder} already holds runs; pass --reuse to analyze them, or remove it.")
    t = time.perf_counter()
    options = {**CONDITIONS[slug][2], **({"steps": args.steps} if args.steps else {})}
    runs = clipxai.ascend(PROMPT, model_obj=model, seeds=args.seeds, out=str(folder), name=slug, quiet=True,
                          **options)
    log(f"  ascended in {time.perf_counter() - t:.0f} s")
    return runs


def measure(slug: str, runs, model, judges, log, redraw: bool = False, reference=None) -> dict:
    """Analyze each run (``redraw``: read the analysis it already has) and judge where it ended; the
    numbers of one condition."""
    from clipxai.analysis.analyze import AnalyzeOptions, analyze_run  # noqa: PLC0415
    from clipxai.runs.summary import read_summary  # noqa: PLC0415
    from clipxai.toy.demo import judge_runs, similarity_level  # noqa: PLC0415

    opts = AnalyzeOptions(projections=("pca",), labels=False, gif=False)
    t = time.perf_counter()
    summaries = [(redraw and read_summary(run)) or analyze_run(run, opts, model=model) for run in runs]
    judged = judge_runs(runs, judges[0], PROMPT)
    trusted = trust_finals(runs, model, judges, reference)
    log(f"  analyzed and judged in {time.perf_counter() - t:.0f} s")
    seeds = []
    for run, s, j, e in zip(runs, summaries, judged, trusted):
        d = s.get("dynamics") or {}
        seeds.append({
            "seed": run.manifest.get("seed"), "path": str(run.path),
            "verdict": s["verdict"], "n_states": s["n_states"], "switches": s["switches"],
            "cycling": bool(d.get("cycling")), "n_drops": d.get("n_events"),
            "mean_spacing_steps": d.get("mean_spacing_steps"), "spacing_cv": d.get("spacing_cv"),
            "amplitude": d.get("amplitude"), "p_value": _drop_p(d), "regular": bool(d.get("regular")),
            "snapshot_aliasing": bool(d.get("snapshot_aliasing")), "snapshot_interval": d.get("snapshot_interval"),
            "similarity": similarity_level(run, PROMPT),
            **{k: j[k] for k in ("judge", "pixels", "agree", "judge_changes_second_half",
                                 "judge_final_share_second_half", "judge_similarity", "pixel_range")},
            "trust": e,
        })
    family, change, options = CONDITIONS[slug]
    ascent = max(float(run.metrics()[-1].get("time", 0.0)) for run in runs)  # the batch's own clock
    return {"slug": slug, "family": family, "change": change, "options": options, "steps": int(runs[0].steps[-1]) + 1,
            "ascent_seconds": round(ascent, 1), "seeds": seeds, **aggregate(seeds)}


def trust_finals(runs, model, judges, reference=None) -> list[dict]:
    """The trust checks of each run's final image (``final.png``, clipped to [0, 1]), all measured in one
    batch: the numbers ``clipxai evaluate`` gives its ``final`` entry (the written check on the prompt's words)."""
    from clipxai.analysis.trust import toyworld  # noqa: PLC0415
    from clipxai.analysis.trust.evaluate import entry  # noqa: PLC0415
    from clipxai.analysis.trust.evaluate import measure as measure_images  # noqa: PLC0415
    from clipxai.analysis.trust.run import final_image  # noqa: PLC0415

    finals = np.stack([final_image(run)[0] for run in runs]).astype(np.float32)
    toy = toyworld.is_toy(model.name) and reference is None
    m = measure_images(model, finals, PROMPT, judges=judges, labels=toyworld.labels(),
                       reference=toyworld.reference_images() if toy else reference,
                       natural=toyworld.natural_images() if toy else None)
    keys = ("trusted", "flags", "transfer_rate", "agreement", "robustness_min", "pathway_max", "written", "verdict")
    out = []
    for i in range(len(runs)):
        e = entry(m, [i])
        out.append({**{k: e[k] for k in keys}, "model_z": e["model"]["z"],
                    "judges": {name: {"cosine": v["cosine"], "z": v["z"]} for name, v in e["judges"].items()}})
    return out


def trust_aggregate(seeds: list[dict]) -> dict:
    """How many seeds of a condition each trust check calls which way."""
    t = [s["trust"] for s in seeds]
    rng = lambda key: [min(e[key] for e in t), max(e[key] for e in t)] if all(e[key] is not None for e in t) else None  # noqa: E731
    return {
        "trusted": sum(e["trusted"] for e in t),
        "seen": sum(e["transfer_rate"] is not None and e["transfer_rate"] >= 0.5 for e in t),
        "fragile": sum("fragile" in e["flags"] for e in t),
        "unseen_by_model": sum("not seen by the model" in e["flags"] for e in t),
        "unusual_pathway": sum("unusual pathway" in e["flags"] for e in t),
        "written": sum("written" in e["flags"] for e in t),
        "robustness_min_range": rng("robustness_min"),
        "pathway_max_range": rng("pathway_max"),
    }


def _drop_p(d: dict) -> float | None:
    """The drop test's p of a run: the smaller of its two tests' (skewness surrogates, sign test), either of
    which makes a run cycling (docs/analysis.md)."""
    ps = [d.get("p_value"), ((d.get("drop_search") or {}).get("sign_test") or {}).get("p_value")]
    ps = [float(x) for x in ps if isinstance(x, (int, float))]
    return min(ps) if ps else None


def spacing_words(r: dict, lead: str = "") -> str:
    """How a condition's drops come, in the one vocabulary: "every ~N steps" only when every cycling seed's
    drops keep time (``regular``), otherwise "~N steps apart on average"."""
    n = r["spacing_median"]
    if n is None:
        return ""
    if r.get("regular", 0) == r["cycling"]:
        return f"{lead}every ~{n:.0f} steps"
    return f"{lead}~{n:.0f} steps apart on average"


def aggregate(seeds: list[dict]) -> dict:
    n = len(seeds)
    cyc = [s for s in seeds if s["cycling"]]
    spacing = [s["mean_spacing_steps"] for s in cyc]
    p = [s["p_value"] for s in seeds if s["p_value"] is not None]
    return {
        "n": n,
        "cycling": len(cyc),
        "regular": sum(bool(s.get("regular")) for s in cyc),
        "spacing_median": float(np.median(spacing)) if spacing else None,
        "spacing_range": [float(min(spacing)), float(max(spacing))] if spacing else None,
        "p_range": [float(min(p)), float(max(p))] if p else None,
        "aliased": sum(s["snapshot_aliasing"] for s in seeds),
        "drops_range": [min(s["n_drops"] or 0 for s in seeds), max(s["n_drops"] or 0 for s in seeds)],
        "states_median": float(np.median([s["n_states"] for s in seeds])),
        "switches_median": float(np.median([s["switches"] for s in seeds])),
        "switches_max": int(max(s["switches"] for s in seeds)),
        "verdicts": dict(Counter(s["verdict"] for s in seeds)),
        "judge": dict(Counter(s["judge"] for s in seeds)),
        "pixels": dict(Counter(s["pixels"] or "none" for s in seeds)),
        "agree": sum(s["agree"] for s in seeds),
        "reached": sorted({s["judge"] for s in seeds if s["agree"]}),
        "judge_changes_total": sum(s["judge_changes_second_half"] for s in seeds),
        "judge_changes_max": max(s["judge_changes_second_half"] for s in seeds),
        "judge_similarity_median": float(np.median([s["judge_similarity"] for s in seeds])),
        "late_mean_median": float(np.median([s["similarity"]["late_mean"] for s in seeds])),
        "late_sd_median": float(np.median([s["similarity"]["late_sd"] for s in seeds])),
        "pixel_min": min(s["pixel_range"][0] for s in seeds),
        "pixel_max": max(s["pixel_range"][1] for s in seeds),
        "trust": trust_aggregate(seeds),
    }


# -- pictures -------------------------------------------------------------------------------------

def shrink(path: Path, colours: int = 96) -> Path:
    """Store a picture with an adaptive palette: a few times smaller, the same to the eye."""
    from PIL import Image  # noqa: PLC0415

    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colors=colours, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    return path


def plot_grid(results: dict, runs: dict, path: Path, size: int = 48) -> Path:
    """Every condition's final images (clipped to [0, 1], ``size`` pixels) in one tiled picture: one
    row per condition, each tile marked with the judge's reading (upper-case when the colours agree)."""
    from matplotlib.figure import Figure  # noqa: PLC0415
    from PIL import Image  # noqa: PLC0415

    from clipxai.toy.demo import viewed  # noqa: PLC0415

    slugs = list(results)
    cols = max(len(runs[s]) for s in slugs)
    gap, left = 3, 1.75   # pixels between tiles, inches of row labels
    step = size + gap
    canvas = np.ones((len(slugs) * step, cols * step, 3), dtype=np.uint8) * 255
    for r, slug in enumerate(slugs):
        for c, run in enumerate(runs[slug]):
            tile = (viewed(run.images[-1]).transpose(1, 2, 0) * 255).round().astype(np.uint8)
            tile = np.asarray(Image.fromarray(tile).resize((size, size), Image.Resampling.BOX))
            canvas[r * step:r * step + size, c * step:c * step + size] = tile
    dpi = 100
    h, w = canvas.shape[0] / dpi, canvas.shape[1] / dpi
    fig = Figure(figsize=(w + left, h), dpi=dpi)
    ax = fig.add_axes([left / (w + left), 0, w / (w + left), 1])
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([r * step + size / 2 for r in range(len(slugs))])
    ax.set_yticklabels(slugs, fontsize=7)
    for side in ax.spines.values():
        side.set_visible(False)
    for r, slug in enumerate(slugs):
        for c, s in enumerate(results[slug]["seeds"]):
            letter = s["judge"][0]
            ax.text(c * step + 2, r * step + 9, letter.upper() if s["agree"] else letter,
                    fontsize=6, color="white", weight="bold",
                    bbox=dict(boxstyle="square,pad=0.1", fc="black", ec="none", alpha=0.6))
    fig.savefig(path)
    return shrink(path)


def plot_controls(results: dict, runs: dict, path: Path, window: int = 150) -> Path:
    """The last ``window`` steps of the similarity of the first two seeds of every condition."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    slugs = list(results)
    cols = 4
    rows = (len(slugs) + cols - 1) // cols
    fig = Figure(figsize=(11, 1.85 * rows), dpi=75)
    axes = np.asarray(fig.subplots(rows, cols, squeeze=False)).ravel()
    key = f"sim/{PROMPT}"
    for ax, slug in zip(axes, slugs):
        for run in runs[slug][:2]:
            rows_ = [m for m in run.metrics() if isinstance(m.get(key), (int, float))]
            steps = np.array([m["step"] for m in rows_])
            values = np.array([m[key] for m in rows_])
            keep = steps > steps[-1] - window
            ax.plot(steps[keep], values[keep], lw=0.7)
        res = results[slug]
        ax.set_title(f"{slug}: {res['cycling']}/{res['n']} cycling", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes[len(slugs):]:
        ax.set_axis_off()
    fig.tight_layout()
    fig.savefig(path)
    return shrink(path)


# -- the report -----------------------------------------------------------------------------------

def _f(x, spec=".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def _counts(d: dict, order=MEANINGS + ("none",)) -> str:
    keys = [k for k in order if k in d] + sorted(k for k in d if k not in order)
    return ", ".join(f"{k} {d[k]}" for k in keys) or "-"


def _dyn_cell(r: dict) -> str:
    text = f"{r['cycling']}/{r['n']}"
    if r["spacing_median"] is not None:
        lo, hi = r["spacing_range"]
        text += f", {spacing_words(r)} ({lo:.0f}-{hi:.0f})"
    return text


def condition_table(results: list[dict]) -> list[str]:
    head = ("condition", "what changes", "states (median)", "switches (median, max)", "verdicts",
            "cycling seeds, drop spacing", "drop-test p (range)", "similarity, 2nd half (SD)",
            "judge reads", "colours read", "judge = colours", "judge changes, 2nd half (total, max)",
            "judge cos to ❤️", "pixel range")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        p = r["p_range"]
        cells = [f"`{r['slug']}`", r["change"], f"{r['states_median']:g}",
                 f"{r['switches_median']:g}, {r['switches_max']}",
                 ", ".join(f"{k} {v}" for k, v in sorted(r["verdicts"].items())), _dyn_cell(r),
                 "n/a" if p is None else f"{p[0]:.3f}-{p[1]:.3f}",
                 f"{r['late_mean_median']:.3f} ({r['late_sd_median']:.3f})",
                 _counts(r["judge"]), _counts(r["pixels"]), f"{r['agree']}/{r['n']}",
                 f"{r['judge_changes_total']}, {r['judge_changes_max']}", f"{r['judge_similarity_median']:.2f}",
                  f"{r['pixel_min']:.3g} to {r['pixel_max']:.3g}"]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def seed_table(results: list[dict]) -> list[str]:
    head = ("condition", "seed", "verdict", "states", "switches", "cycling", "drops", "spacing", "p",
            "judge", "colours", "judge changes (2nd half)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        for s in r["seeds"]:
            lines.append("| " + " | ".join([
                f"`{r['slug']}`", str(s["seed"]), s["verdict"], str(s["n_states"]), str(s["switches"]),
                "yes" if s["cycling"] else "no", str(s["n_drops"]), _f(s["mean_spacing_steps"], ".1f"),
                _f(s["p_value"], ".3f"), s["judge"], s["pixels"] or "none",
                str(s["judge_changes_second_half"])]) + " |")
    return lines


def _share(r: dict) -> str:
    return f"{r['cycling']} of {r['n']}"


def answer(res: dict, reference: dict, who: str = "the toy CLIP") -> list[str]:
    """The answer in plain words; every sentence is chosen by, and quotes, the measured numbers."""
    out = []
    o, d = res.get("original"), res.get("default")
    mostly = lambda r: r["cycling"] >= 0.75 * r["n"]  # noqa: E731
    rarely = lambda r: r["cycling"] <= 0.25 * r["n"]  # noqa: E731
    unlike = lambda r: r["judge_similarity_median"] < (reference["planted"] + reference["ordinary"]) / 2  # noqa: E731
    if o:
        moves = ("the similarity saw-tooths" if mostly(o) else "the similarity does not cycle" if rarely(o)
                 else "the similarity saw-tooths in some seeds")
        ends = (", and the image it reaches is hardly “❤️” to another model of the same world" if unlike(o)
                else ", and it reaches a planted meaning" if o["agree"] >= 0.75 * o["n"] else "")
        text = f"**Under the original recipe {moves}{ends}.** In {_share(o)} seeds the similarity to “❤️” "
        text += ("drops suddenly and climbs back" + (
            f"{spacing_words(o, ' ' if o['regular'] == o['cycling'] else ', ')} (median over seeds; drop test p "
            f"{o['p_range'][0]:.3f}-{o['p_range'][1]:.3f} over all seeds)" if o["spacing_median"] else "")
            + f", until the last step, around {o['late_mean_median']:.2f}. ")
        interval = next((s["snapshot_interval"] for s in o["seeds"] if s["snapshot_interval"]), None)
        if o["aliased"]:
            text += (f"Snapshots every {interval:g} steps are too sparse to resolve it (under two per cycle in "
                     f"{o['aliased']} of {o['cycling']} cycling seeds), and the states found in them say ")
        else:
            text += "The states found in the snapshots say "
        text += (f"{_counts(o['verdicts'], ())}, with a median of {o['switches_median']:g} switches. The judge's "
                 f"reading of the snapshots changes {o['judge_changes_total']} time(s) in all over the second halves "
                 f"of the runs (at most {o['judge_changes_max']} in one)"
                 + (", but between readings of pictures it scores as hardly “❤️” (below), so these changes say "
                    "little about meanings. " if unlike(o) else ". "))
        if o["pixel_min"] < 0 or o["pixel_max"] > 1:
            text += (f"The pixels leave [0, 1] (from {o['pixel_min']:.3g} to {o['pixel_max']:.3g}); shown as a "
                     f"viewer sees them (clipped), ")
        else:
            text += "In the final images "
        text += (f"the independent judge reads {_counts(o['judge'])}, the colours read {_counts(o['pixels'])}, "
                 f"and the two agree for {o['agree']} of {o['n']}. The judge's own cosine to “❤️” is "
                 f"{o['judge_similarity_median']:.2f} (median), against {reference['planted']:.2f} for world images "
                 f"of a planted meaning and {reference['ordinary']:.2f} for ordinary ones"
                 + (f": {who} is satisfied by a pattern that another model of the same world scores as "
                    "hardly “❤️”." if unlike(o) else "."))
        out.append(text)
    if d:
        settles = rarely(d)
        text = ("**Under the default recipe the similarity settles"
                + (", on one planted meaning per seed" if settles and d["agree"] >= 0.75 * d["n"] else "")
                + ".** " if settles else "**Under the default recipe the similarity cycles in some seeds.** ")
        text += (f"{_share(d)} seeds cycle; the similarity holds {d['late_mean_median']:.2f} over the second half "
                 f"(step-to-step SD {d['late_sd_median']:.3f}); the states say {_counts(d['verdicts'], ())}. From the "
                 f"default grey start the judge reads {_counts(d['judge'])} and the colours {_counts(d['pixels'])} "
                 f"(agreeing for {d['agree']} of {d['n']}); the judge's reading of the snapshots changes "
                 f"{d['judge_changes_total']} time(s) in all over the second halves of the {d['n']} runs.")
        t = res.get("default-tinted")
        if t:
            text += (f" Started from different hues (`default-tinted`), the judge reads {_counts(t['judge'])} and the "
                     f"colours {_counts(t['pixels'])}, agreeing for {t['agree']} of {t['n']} "
                     f"({', '.join(t['reached']) or 'no meaning'} reached); {_share(t)} seeds cycle, and the judge's "
                     f"reading of the snapshots changes {t['judge_changes_total']} time(s) in all over their second "
                     f"halves.")
            if len(t["reached"]) >= 2 and t["judge_changes_total"] == 0 and rarely(t):
                text += (" Which meaning a run settles on is decided by where it starts and is not revisited: "
                         f"under this recipe {who} is multistable, and it does not wander between meanings.")
        out.append(text)
    # Why the original saw-tooths: the single changes, sorted by what they did.
    singles = [r for k, r in res.items() if r["family"] == "original" and k != "original"]
    if o and singles:
        keeps = [r for r in singles if mostly(r)]
        stops = [r for r in singles if r["cycling"] == 0]
        mostly_gone = [r for r in singles if rarely(r) and r["cycling"] > 0]
        weak = [r for r in singles if r not in keeps + stops + mostly_gone]
        name = lambda rs: ", ".join(f"{SHORT.get(r['slug'], r['change'])} ({_share(r)})" for r in rs)  # noqa: E731
        text = ("**Why the original recipe saw-tooths.**" if mostly(o) else "**What the controls change.**")
        text += f" Changing one thing, or one group of terms, at a time (seeds cycling of {o['n']}),"
        said = []
        if keeps:
            said.append(f"the saw-tooth survives {name(keeps)}")
        if weak:
            said.append(f"it becomes rarer with {name(weak)}")
        if mostly_gone:
            said.append(f"the drop test finds it in few seeds with {name(mostly_gone)}")
        if stops:
            said.append(f"in none with {name(stops)}")
        text += " " + "; ".join(said) + "."
        mem, only = res.get("original-memory-off"), res.get("original-memory-only")
        tvo, wdo, bare = (res.get(k) for k in ("original-tv-only", "original-decay-only", "original-bare"))
        if mem and only and mostly(mem) and rarely(only):
            text += (f" The memory term is not its cause: removed, the saw-tooth stays ({_share(mem)}); kept as the "
                     f"only term besides CLIP's, the drop test finds none ({_share(only)}).")
        if tvo and wdo and bare and rarely(bare) and (mostly(tvo) or mostly(wdo)):
            alone = [f"the TV penalty alone ({_share(tvo)}, drops {spacing_words(tvo)})"
                     if not rarely(tvo) else None,
                     f"AdamW's weight decay alone ({_share(wdo)}, {spacing_words(wdo)})"
                     if not rarely(wdo) else None]
            lo, hi = bare["drops_range"]
            text += (f" What it needs, of the original's terms, is one that pulls the pixels back toward small, smooth values while the "
                     f"ascent pushes them out: {' and '.join(a for a in alone if a)} bring it back. With no term "
                     f"besides CLIP's, {_share(bare)} seeds cycle: the pixels grow far out of range (from "
                     f"{bare['pixel_min']:.3g} to {bare['pixel_max']:.3g}) and the similarity keeps climbing, to "
                     f"{bare['late_mean_median']:.2f}; it still dips now and then ({lo}-{hi} drops per run), but "
                     f"its falls are no sharper than its rises beyond its own noise (drop test p "
                     f"{bare['p_range'][0]:.3f}-{bare['p_range'][1]:.3f}).")
        lr, low = res.get("original-lr-decay"), res.get("original-lr-0.05")
        if lr and low and not rarely(lr) and not rarely(low):
            text += (f" A smaller step does not end it: with the learning rate decayed to 0.15, {_share(lr)} "
                     f"cycle; at the default recipe's 0.05, {_share(low)} (drops "
                     f"{spacing_words(low)}). Whether Adam's normalised step is needed as "
                     f"well is not separated here: every condition uses it.")
        aug, fixed = res.get("original-augmented"), res.get("original-fixed-cutouts")
        if aug and fixed:
            if rarely(aug) and not rarely(fixed):
                text += (f" Fresh cutouts, not augmentation as such, take the saw-tooth away: with 8 new random "
                         f"cutouts every step {_share(aug)} seeds cycle, with the same 8 cutouts every step "
                         f"{_share(fixed)} (drops {spacing_words(fixed)}). The saw-tooth "
                         f"goes with an objective that is the same at every step; one drawn afresh each step breaks it"
                         + (" in most seeds." if aug["cycling"] else "."))
            else:
                text += (f" With 8 fresh random cutouts every step {_share(aug)} seeds cycle, with the same 8 "
                         f"cutouts every step {_share(fixed)}.")
            text += (f" Either way augmentation changes what the image becomes: the judge and the colours agree "
                     f"for {aug['agree']} of {aug['n']} with fresh cutouts and {fixed['agree']} of {fixed['n']} "
                     f"with fixed ones (judge: {_counts(aug['judge'])} with fresh, {_counts(fixed['judge'])} with fixed), against "
                     f"{o['agree']} of {o['n']} without augmentation.")
        out.append(text)
    dm, du, df, dl = (res.get(k) for k in ("default-memory-on", "default-unaugmented", "default-fixed-cutouts",
                                            "default-lr-decay"))
    if d and any((dm, du, df, dl)):
        text = "**The same controls on the default recipe.**"
        if dm:
            text += f" Adding the original's memory term: {_share(dm)} seeds cycle."
        if dl:
            text += f" Cosine decay of the learning rate: {_share(dl)} cycle."
        if du:
            text += (f" Without augmentation: {_share(du)} cycle, the similarity climbs higher "
                     f"({du['late_mean_median']:.2f} against {d['late_mean_median']:.2f}) and the judge and the "
                     f"colours agree for {du['agree']} of {du['n']} (judge {_counts(du['judge'])}, colours "
                     f"{_counts(du['pixels'])}, judge's cosine to “❤️” {du['judge_similarity_median']:.2f}): "
                     f"{who}'s own similarity rises while the picture stops being a planted meaning.")
        if df:
            text += (f" The same cutouts every step: {_share(df)} cycle; the similarity holds "
                     f"{df['late_mean_median']:.2f}, and judge and colours agree for {df['agree']} of {df['n']} "
                     f"(judge's cosine to “❤️” {df['judge_similarity_median']:.2f})"
                     + (": the same views every step are fooled much as no views are." if du and
                        max(df["agree"], du["agree"]) <= 0.25 * df["n"] else "."))
        out.append(text)
    return out


def cannot(res: dict, reference: dict, names: dict | None = None) -> str:
    """What the toy's numbers do not say about real CLIP (or whose numbers these are, on other models),
    and which of its cautions this run showed."""
    names = names or {"toy": True}
    text = (
        "**What this does not say about real CLIP.** Every number here is the toy CLIP's: a small ViT trained on a "
        "world where “❤️” has exactly three planted meanings told apart by colour, judged by a twin trained the "
        "same way. Whether a real CLIP (ViT-L/14, as the original experiment used) wanders among mouths, rings, "
        "holding hands and the word “love”, settles on one, or saw-tooths while drawing patterns no other model "
        "reads as “❤️” cannot be concluded without its weights: its landscape, its meanings and their basins are "
        "not the toy's, and at 224 pixels the original recipe's total-variation penalty, a sum over pixels, is "
        "for the same roughness about twelve times what it is at the toy's 64. What carries over is the instrument: the same commands "
        "(`clipxai ascend \"❤️\" --preset zer0int`, `clipxai analyze`) measure the per-step dynamics and the "
        "states on real weights, and the conditions above are the controls to run there.")
    if not names["toy"]:
        text = (f"**Whose numbers these are.** Every number here is {names['who']}'s, judged by "
                f"{', '.join(f'`{j}`' for j in names['judges'])}; the planted meanings (“a red heart”, “a gold ring”, "
                "“a pink mouth”) and the colours are the toy world's, so on other weights they are candidate "
                "readings, not ground truth.")
    o, du = res.get("original"), res.get("default-unaugmented")
    cautions = []
    if o and o["aliased"]:
        cautions.append("a recipe can cycle step by step while the states in its snapshots say "
                        f"{_counts(o['verdicts'], ())}")
    low = (reference["planted"] + reference["ordinary"]) / 2
    adversarial = [r["slug"] for r in (o, du) if r and r["judge_similarity_median"] < low]
    if adversarial:
        cautions.append("the model's own similarity can rise on a picture that an independent model hardly "
                        f"scores as the prompt ({', '.join(f'`{a}`' for a in adversarial)})")
    if cautions:
        if names["toy"]:
            text += " Two cautions from the toy apply there as well: " if len(cautions) == 2 else " One caution applies there as well: "
        else:
            text += " Two cautions this run shows: " if len(cautions) == 2 else " One caution this run shows: "
        text += "; and ".join(cautions) + "."
    return text


def write_markdown(out: Path, results: dict, reference: dict, figures: dict, timing: dict, seeds: int,
                   names: dict | None = None) -> Path:
    names = names or names_of("toy", ["toy-b"], 64)
    who, judge = names["who"], names["judge"]
    res = list(results.values())
    main = [r for r in res if r["slug"] in ("original", "default")]
    cast = ("the bundled `toy` CLIP ascends, the independently trained `toy-b` judges" if names["toy"]
            and names["judges"] == ["toy-b"] else
            f"`{names['model']}` ascends, {', '.join(f'`{j}`' for j in names['judges'])} "
            f"judge{'' if len(names['judges']) > 1 else 's'}")
    lines = [
        "<!-- written by analysis/heart_study.py; edit the script, not this file -->",
        f"# Does {who} settle on one meaning of “❤️”?",
        "",
        f"Generated by `python analysis/heart_study.py --out {out.as_posix()}{names.get('command', '')}`: "
        f"{timing['ascent_minutes']:.0f} min "
        f"of ascent and {timing['analysis_minutes']:.0f} min of analysis, judging and drawing on {timing['cpus']} "
        f"CPU cores shared with other work (load average {timing['load']} at the end; one thread per process)"
        + ("; the runs were made by an earlier invocation and analyzed again with --reuse"
           if timing.get("runs_reused") else "")
        + ("; the text and pictures were then redrawn from the same runs and analyses with --redraw"
           if timing.get("redrawn") else "") + ". "
        f"{seeds} seeds per condition, batched; {cast}. Every number below comes from that run of the script (all of them, per seed, in "
        f"[heart/heart_study.json](heart/heart_study.json)).",
        "",
        "## The answer",
        "",
    ]
    for paragraph in answer(results, reference, who):
        lines += [paragraph, ""]
    lines += [cannot(results, reference, names), "", "## Pictures", ""]
    for name, caption in figures.items():
        lines += [f"![{caption}](heart/{name})", "", f"*{caption}*", ""]
    lines += ["## The two recipes", ""] + condition_table(main) + [""]
    lines += ["## Controls: one change at a time", ""]
    lines += condition_table(res) + [""]
    lines += [
        "Columns: *states*, *switches* and *verdicts* are the analysis of the snapshots (docs/analysis.md); "
        "*cycling seeds* are those whose per-step similarity drops suddenly and recovers beyond its own noise "
        "(drop test p < 0.01, at least 5 drops, still dropping in the last third), with the median and range of "
        "their mean drop spacing (\"every\" only when every cycling seed's drops keep time, docs/analysis.md); "
        "*drop-test p* is over all seeds, the smaller of the drop test's two p-values (skewness against "
        "surrogates, sudden drops against sudden rises); *similarity, 2nd half* is the median over seeds "
        "of the mean logged cosine to “❤️” over the second half of the run (with fresh augmentation it is the mean "
        f"over that step's cutouts), and its median step-to-step SD; *judge reads* is `{judge}`'s zero-shot choice "
        "among “a red heart”, “a gold ring”, “a pink mouth” for the final image clipped to [0, 1]; *colours read* "
        "is the planted meaning whose colour dominates its pixels (`world.classify_concept`, none when no colour "
        "wins); *judge changes* count how often the judge's reading of the snapshots changes over the second "
        f"half of a run (all seeds, and the most in one); *judge cos to ❤️* is `{judge}`'s cosine to “❤️” "
        "for the final image (median; world images of a "
        f"planted meaning: {reference['planted']:.2f}, ordinary world images: {reference['ordinary']:.2f}); "
        "*pixel range* is the raw final image's.",
        "",
        "## What was run",
        "",
        "| condition | family | ascend options |",
        "|---|---|---|",
    ]
    for r in res:
        opts = ", ".join(f"{k}={v!r}" for k, v in r["options"].items())
        lines.append(f"| `{r['slug']}` | {r['family']} | `{opts}` |")
    lines += [
        "",
        f"Each condition is `clipxai.ascend(\"❤️\", model_obj={'toy' if names['toy'] else 'model'}, seeds={seeds}, "
        f"**options)` (seeds 0-{seeds - 1}); "
        f"the original recipe is `preset=\"zer0int\"` at {who}'s own input size ({names['resolution']} px), which "
        "reproduces the "
        "original script step for step (tests/test_original_recipe.py). Every run is analyzed with "
        "`analyze_run(run, AnalyzeOptions(projections=(\"pca\",), labels=False))`; the judging helpers are "
        "`clipxai.toy.demo.judge_runs` (which reuses `groundtruth.zero_shot_concept` and `world.classify_concept`). "
        f"*judge changes* count how often `{judge}`'s reading of the snapshots changes over the second half of a run.",
        "",
        "## Every seed",
        "",
    ] + seed_table(res) + [""]
    path = out / "heart.md"
    lines += kept_sections(path, [line for line in lines if line.startswith("## ")] + [TRUST_HEADING])
    lines += trust_section(results, names)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


TRUST_HEADING = "## Is it really there? (`clipxai evaluate`)"


def kept_sections(path: Path, written: list[str]) -> list[str]:
    """The ``## `` sections of the report already at ``path`` that the script does not write (another
    script's, e.g. "Which components make the states"), as they are, in their order."""
    if not path.is_file():
        return []
    out, keep = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            keep = line not in written
        if keep:
            out.append(line)
    return out + ([""] if out and out[-1] else [])


def trust_section(results: dict, names: dict) -> list[str]:
    """The trust checks of every condition's final images, and whether the call separates the two recipes
    the way the judge's cosines do."""
    judges = ", ".join(f"`{j}`" for j in names["judges"])
    lines = [TRUST_HEADING, "",
             f"Every final image (`final.png`, clipped to [0, 1] as any picture file) scored as `clipxai evaluate` "
             f"scores a run's `final` entry, all seeds of a condition measured together: judged by {judges}"
             + (", the toy world's images as reference" if names["toy"] else "")
             + " (docs/analysis.md defines every number). *Trusted*: seen by the ascending model (z >= 2), by at "
             "least half of the judges (transfer) and not fragile; the natural pathway is reported beside the call.",
             "",
             "| condition | trusted | seen by the judges | fragile | not seen by the model | robustness_min | "
             "unusual pathway (reported) | pathway_max |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results.values():
        t, n = r["trust"], r["n"]
        lo_hi = lambda v, spec: "n/a" if v is None else f"{v[0]:{spec}} to {v[1]:{spec}}"  # noqa: E731
        lines.append(f"| `{r['slug']}` | {t['trusted']}/{n} | {t['seen']}/{n} | {t['fragile']}/{n} | "
                     f"{t['unseen_by_model']}/{n} | {lo_hi(t['robustness_min_range'], '.2f')} | "
                     f"{t['unusual_pathway']}/{n} | {lo_hi(t['pathway_max_range'], '.1f')} |")
    o, d = results.get("original"), results.get("default")
    if o and d:
        lower, higher = (o, d) if o["judge_similarity_median"] <= d["judge_similarity_median"] else (d, o)
        suspect = lower["n"] - lower["trust"]["trusted"]
        trusted = higher["trust"]["trusted"]
        both = suspect >= 7 / 8 * lower["n"] and trusted >= 7 / 8 * higher["n"]
        lines += ["", f"The judge's cosine to “❤️” puts `{lower['slug']}` below `{higher['slug']}` "
                  f"({lower['judge_similarity_median']:.2f} against {higher['judge_similarity_median']:.2f}, median); "
                  f"the call finds `{lower['slug']}` suspect in {suspect} of {lower['n']} seeds and `{higher['slug']}` "
                  f"trusted in {trusted} of {higher['n']}: "
                  + ("it separates the recipes the way the judge does." if both else
                     "it does not separate the recipes in at least 7 in 8 of the seeds each.")]
    return lines + [""]


def load_models(args) -> tuple:
    """(the ascending model, the judges, the reference images or None) from this machine only, or one
    sentence (ClipxaiError): an unknown or uncached model, no judge to be had, a bad reference folder."""
    from clipxai.analysis.trust import toyworld  # noqa: PLC0415
    from clipxai.analysis.trust.run import load_judge, load_judges, load_reference, local_openai_models  # noqa: PLC0415
    from clipxai.errors import ClipxaiError  # noqa: PLC0415

    model = load_judge(args.model, args.device)  # any --model form, never a download
    names = args.judge
    if names is None:
        pool = list(toyworld.TWINS) if toyworld.is_toy(args.model) else local_openai_models()
        names = [n for n in pool if n != args.model]
        if not names:
            raise ClipxaiError(f"No judge for {args.model} on this machine; name one or more with --judge MODEL.")
    judges = load_judges(names, args.device)
    reference = (None if args.reference is None
                 else load_reference(args.reference, (model.input_resolution, model.input_resolution)))
    return model, judges, reference


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)
    from clipxai.toy.demo import judge_reference, plot_similarity  # noqa: PLC0415

    slugs = [s.strip() for s in args.conditions.split(",") if s.strip()]
    unknown = [s for s in slugs if s not in CONDITIONS]
    if unknown:
        print(f"error: unknown condition '{unknown[0]}'; choose from {', '.join(CONDITIONS)}.", file=sys.stderr)
        return 2

    def log(msg):
        print(msg, flush=True)

    t0 = time.perf_counter()
    from clipxai.errors import ClipxaiError  # noqa: PLC0415

    try:
        model, judges, natural = load_models(args)
    except ClipxaiError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    judge = judges[0]
    names = names_of(args.model, [j.name for j in judges], model.input_resolution)
    results, runs = {}, {}
    for slug in slugs:
        log(f"{slug}: {CONDITIONS[slug][1]}")
        runs[slug] = condition_runs(slug, args, model, log)
        results[slug] = measure(slug, runs[slug], model, judges, log, args.redraw, natural)
        r = results[slug]
        log(f"  {_dyn_cell(r)} cycling; judge {_counts(r['judge'])}; colours {_counts(r['pixels'])}; "
            f"agree {r['agree']}/{r['n']}")
    reference = judge_reference(judge, PROMPT)
    fig_dir = args.out / "heart"
    fig_dir.mkdir(parents=True, exist_ok=True)
    figures = {}
    pair = {k: [(run, {"events": []}) for run in runs[k][:3]] for k in ("original", "default") if k in runs}
    if pair:
        from clipxai.analysis.motion.dynamics import dynamics_from_run  # noqa: PLC0415
        pair = {k: [(run, dynamics_from_run(run).to_dict()) for run, _ in v] for k, v in pair.items()}
        shrink(plot_similarity(pair, fig_dir / "similarity.png", PROMPT))
        o = results.get("original") or {}
        figures["similarity.png"] = (
            "The similarity to “❤️” at every step for three seeds of each recipe (triangles: the sudden drops "
            "found), and the last steps of one original run with its snapshots (ticks)"
            + (f": drops {spacing_words(o)} (median over its cycling seeds) against snapshots "
               f"every {o['seeds'][0]['snapshot_interval']:g}." if o.get("spacing_median") else "."))
    plot_grid(results, runs, fig_dir / "finals.png")
    figures["finals.png"] = ("Final images (clipped to [0, 1]) of every seed, one row per condition; the letter is "
                             "the judge's reading (h, r, m), upper-case where the colours agree.")
    plot_controls(results, runs, fig_dir / "controls.png")
    figures["controls.png"] = ("The last 150 steps of the similarity to “❤️”, two seeds per condition, with how "
                               "many of its seeds cycle.")
    seconds = time.perf_counter() - t0
    ascent = sum(r["ascent_seconds"] for r in results.values())  # the runs' own clocks
    timing = {"ascent_minutes": round(ascent / 60, 1),
              "analysis_minutes": round((seconds - (0 if args.reuse or args.redraw else ascent)) / 60, 1),
              "cpus": os.cpu_count(), "load": ", ".join(f"{x:.1f}" for x in os.getloadavg()),
              "runs_reused": bool(args.reuse)}
    previous = fig_dir / "heart_study.json"
    if args.redraw and previous.is_file():  # the times are those of the command that analyzed, not this redrawing
        timing = {**json.loads(previous.read_text(encoding="utf-8")).get("timing", timing), "redrawn": True}
    previous.write_text(json.dumps(
        {"prompt": PROMPT, "model": args.model, "judge": judge.name, "judges": names["judges"],
         "reference": args.reference, "seeds": args.seeds, "timing": timing,
         "judge_reference": reference, "conditions": results}, indent=1, ensure_ascii=False), encoding="utf-8")
    path = write_markdown(args.out, results, reference, figures, timing, args.seeds, names)
    log(f"wrote {path} and {fig_dir}/ in {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
