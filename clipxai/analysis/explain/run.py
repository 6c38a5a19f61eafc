"""A run explained state by state: ``RUN/analysis/explain.json`` and its figures.

From the run's snapshots (the images CLIP saw), its prompts and its analysis' states, this
decomposes every snapshot's embedding into CLIP's components, ranks per state the components
that make the prompt similarity (with bootstrap intervals and words), tests per state whether
mean-ablating its ``k`` components of largest total effect (``effects``, estimated on half of
the state's snapshots) drops the similarity on the other half more than ``k`` random ones do
(``paired.paired_ablation_test``; its direct top ``k`` are tested beside them), and maps over
each state's typical snapshot where its heads write the similarity (the per-patch
decomposition). ``prepare`` checks everything the user
gave before any work, so bad input costs one sentence and writes nothing; ``Explanation.write``
writes only inside ``RUN/analysis/``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from clipxai.analysis.explain.decompose import decompose, decomposition_names
from clipxai.analysis.explain.effects import EFFECT_METHODS, halves, rank_by_total_effect
from clipxai.analysis.explain.figures import TOP_FIGURE, draw_map, draw_top
from clipxai.analysis.explain.paired import paired_ablation_test, spread
from clipxai.analysis.explain.states import bootstrap_means, contributions, explain_states
from clipxai.errors import ClipxaiError, RunError
from clipxai.models.ablate import component_means, summing_writes
from clipxai.models.components import ComponentError, component, vision_tower
from clipxai.models.prefix import keeping_residuals
from clipxai.util.files import image_files, staged_files, write_json
from clipxai.util.paths import check_writable_inside, inside

EXPLAIN_FILE = "explain.json"
KEEP_BYTES = 512 << 20    # the tested snapshots' residual streams kept from the decomposition's pass, at most
SCHEMA = "clipxai.explain/1"


@dataclass
class ExplainOptions:
    """Every choice of ``clipxai explain``; the defaults are what docs/analysis.md describes."""

    state: int | None = None          # explain only this state
    top: int = 5                      # components listed per state
    k: int = 3                        # components ablated per state (fewer when the model has few)
    draws: int = 100                  # random k-sets the ablation is compared with
    ablation_images: int = 8          # snapshots per state the ablation is tested on (spread over the state)
    effect_images: int = 8            # other snapshots of the state the total effects are estimated on
    effect_method: str = "auto"       # how: exact (greedy real ablation), attribution, auto (exact up to 40)
    mean_images: int = 64             # snapshots (spread over the run) the mean writes are taken over
    reference: str | None = None      # a folder of images to take the mean writes over instead
    components: tuple[str, ...] = ()  # components reported for every state besides its top ones
    words: int = 5                    # words per component
    basis: int = 3                    # words in each component's text basis
    bootstrap: int = 1000
    seed: int = 0
    batch_size: int = 32

    def to_dict(self) -> dict:
        return {**asdict(self), "components": list(self.components)}


def reference_files(folder: str) -> list[Path]:
    """The images of a ``--reference`` folder, or one sentence saying why it is not one."""
    return image_files(folder, "reference")


def _load_model(run, model, device: str):
    if model is not None:
        return model
    if not run.model_name:
        raise ClipxaiError("This run does not say which CLIP made it; pass --model.")
    from clipxai.models.load import load_clip  # noqa: PLC0415
    return load_clip(run.model_name, device=device)


def prepare(run, opts: ExplainOptions, model=None, device: str = "auto"):
    """The model to explain ``run`` with, once the run, the model and every option are known to fit.

    Raises one sentence (and nothing is written) for a run without snapshot images or text
    prompts, a model whose image tower is not a ViT, an unknown component name, a reference that
    is not a folder of images, or options out of range.
    """
    if "images" not in run.array_names() or run.n == 0:
        raise RunError(f"{run.path} has no snapshots (images) to explain; record some with clipxai ascend.")
    if not any(p.get("kind", "text") == "text" for p in run.prompts):
        raise ClipxaiError(f"{run.path} has no text prompt whose similarity could be explained.")
    if (opts.top < 1 or opts.k < 1 or opts.draws < 100 or opts.ablation_images < 1 or opts.mean_images < 1
            or opts.effect_images < 1):
        raise ClipxaiError("--top, --k and the image counts must be at least 1, and --draws at least 100.")
    if opts.effect_method not in EFFECT_METHODS:
        raise ClipxaiError(f"The total effects are estimated by {', '.join(EFFECT_METHODS)}, not "
                           f"'{opts.effect_method}'.")
    if opts.reference is not None:
        reference_files(opts.reference)
    clip_model = _load_model(run, model, device)
    vision_tower(clip_model)                              # a ResNet tower: ComponentError, one sentence
    for name in opts.components:
        c = component(clip_model, name)
        if c.kind not in ("embed", "head", "mlp"):
            raise ComponentError(f"{name} is a whole {'block' if c.kind == 'block' else 'attention'}; the "
                                 f"explanation speaks of embed, heads (blocks.i.attn.headh) and MLPs (blocks.i.mlp).")
    return clip_model


def state_path(run, summary: dict, state: int | None) -> np.ndarray:
    """The state of every snapshot from the analysis' summary, checked against the run and ``state``."""
    path = np.asarray(summary.get("states") or [], dtype=int)
    if len(path) != run.n:
        raise ClipxaiError(f"The analysis of {run.path} is older than its snapshots; run `clipxai analyze "
                           f"{run.path}` again.")
    known = sorted(int(s) for s in set(path.tolist()) if s >= 0)
    if state is not None and state not in known:
        raise ClipxaiError(f"{run.path} has no state {state}; its states are {', '.join(map(str, known))}.")
    return path


def _prompts(run, model) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """(the text prompts, their unit embeddings [P, D], their weights [P])."""
    prompts = [{"text": p["text"], "weight": float(p.get("weight", 1.0))} for p in run.prompts
               if p.get("kind", "text") == "text"]
    with torch.inference_mode():
        emb = model.encode_text([p["text"] for p in prompts]).float().cpu().numpy().astype(np.float64)
    emb /= np.maximum(np.linalg.norm(emb, axis=-1, keepdims=True), 1e-12)
    return prompts, emb, np.array([p["weight"] for p in prompts])


def _vocabulary(model, summary: dict):
    """(words, unit text embeddings) of the vocabulary the analysis labelled with (cached on disk)."""
    from clipxai.analysis.words.label import build_vocabulary  # noqa: PLC0415
    from clipxai.analysis.words.vocab import vocabulary_embeddings  # noqa: PLC0415

    options = (summary.get("analysis") or {}).get("options") or {}
    vocab_file = options.get("vocab_file")
    vocab_file = vocab_file if vocab_file and Path(vocab_file).is_file() else None
    words, _ = build_vocabulary(vocab_file, bool(options.get("vocab_only")) and vocab_file is not None, model=model)
    return words, vocabulary_embeddings(model, words).numpy()


def _reading_labels(model, summary: dict, states: list[int]) -> tuple[list[str], np.ndarray | None]:
    """The first word of each state's label: the zero-shot reading the ablation watches (None if < 2)."""
    from clipxai.analysis.words.vocab import vocabulary_embeddings  # noqa: PLC0415

    by_state = ((summary.get("labels") or {}).get("states")) or {}
    words = list(dict.fromkeys(str(by_state[str(s)][0]["word"]) for s in states if by_state.get(str(s))))
    if len(words) < 2:
        return words, None
    return words, vocabulary_embeddings(model, words).numpy()


def _reference_folder(opts: ExplainOptions, model):
    """(the ``--reference`` folder's images the mean writes are taken over, what explain.json says of them)."""
    from clipxai.prompts import load_image  # noqa: PLC0415
    files = reference_files(opts.reference)
    batch = torch.cat([load_image(p, model.input_resolution) for p in files])
    return batch, {"kind": "folder", "path": str(Path(opts.reference).expanduser().resolve()), "images": len(files)}


def _within(rows: np.ndarray, start: int, stop: int) -> torch.Tensor:
    """The positions in a batch of images ``start:stop`` of those of ``rows`` (sorted) that fall in it."""
    return torch.as_tensor(rows[(rows >= start) & (rows < stop)] - start)


def _asked(score: np.ndarray, names: list[str], wanted: list[str], rng) -> list[dict]:
    """The contribution (mean, bootstrap 95% interval) of each component the user named."""
    if not wanted:
        return []
    cols = [names.index(w) for w in wanted]
    mean, lo, hi = bootstrap_means(score[:, cols], rng)
    return [{"component": w, "contribution": float(m), "ci95": [float(a), float(b)]}
            for w, m, a, b in zip(wanted, mean, lo, hi)]


def _ablation(model, images, rows, target, direct: list[str], pool: list[str], means: dict, k: int, reading,
              opts: ExplainOptions, seed: int, prefix=None) -> tuple[dict, dict]:
    """(the ablation of a state's ``k`` components of largest total effect, that of its direct top ``k``).

    The total effects are estimated on half of the state's snapshots (``effects.halves``) and
    both sets are tested on the other half, against the same random draws; ``prefix`` is the
    tested snapshots' unablated encoding when the decomposition's pass kept it.
    """
    estimate, tested_on, held_out = halves(rows, opts.effect_images, opts.ablation_images)
    ranking = rank_by_total_effect(model, images[estimate], target, pool, means, k, method=opts.effect_method,
                                   batch_size=opts.batch_size)
    test = paired_ablation_test(model, images[tested_on], target, ranking["components"], pool, means=means, k=k,
                                draws=opts.draws, label_embeddings=reading, seed=seed, batch_size=opts.batch_size,
                                also=direct, prefix=prefix)
    also = test.pop("also")
    total = {**test, "ranked_by": "total_effect", "effect_method": ranking["method"],
             "effects": ranking["effects"], "estimated_on": len(estimate), "held_out": held_out}
    return total, {**also, "ranked_by": "direct_contribution", "images": test["images"]}


def _maps(model, images, rows: dict[int, int], target: np.ndarray, batch_size: int) -> dict[int, np.ndarray]:
    """Per state, the heads' per-patch contributions to the similarity over its typical snapshot [g, g]."""
    if not rows:
        return {}
    states = sorted(rows)
    pp = decompose(model, images[[rows[s] for s in states]], per_patch=True, batch_size=batch_size)
    norm = pp.embedding.double().norm(dim=-1).clamp_min(1e-12)
    per_token = torch.einsum("bhtd,d->bt", pp.patches.double(), torch.as_tensor(target)) / norm[:, None]
    patches = per_token[:, 1:].numpy()                    # token 0 is the class token
    side = int(round(np.sqrt(patches.shape[1])))
    if side * side != patches.shape[1]:
        return {}
    return {s: patches[i].reshape(side, side) for i, s in enumerate(states)}


@dataclass
class Explanation:
    """A run explained: ``data`` is what explain.json holds, ``maps`` the heat maps to draw."""

    run: object
    data: dict
    maps: dict = field(default_factory=dict)     # state -> (snapshot row, grid)

    def write(self, log=None) -> dict:
        """Write the figures and explain.json inside ``RUN/analysis/``; returns what explain.json holds."""
        log = log or (lambda msg: None)
        folder = self.run.analysis_dir
        check_writable_inside(self.run.path, folder)
        inside(self.run.path, folder, "analysis folder")
        log("drawing the explanation's figures")
        # Written aside and moved into place whole: a full disk leaves the earlier explanation as it was.
        with staged_files(folder, f"the explanation of {self.run.path}", last=(EXPLAIN_FILE,)) as stage:
            (stage / "figures").mkdir()
            figures = {"top_components": f"figures/{TOP_FIGURE}.png", "maps": {}}
            draw_top(self.data["states"], stage / figures["top_components"], [self.run.prompt or ""])
            images = self.run.images
            for entry in self.data["states"]:
                s = entry["state"]
                if s in self.maps:
                    row, grid = self.maps[s]
                    name = f"figures/explain_map_state{s}.png"
                    draw_map(images[row], grid, stage / name,
                             f"state {s}: where the heads write the similarity (step {entry['map']['step']})")
                    entry["map"]["file"] = name
                    figures["maps"][str(s)] = name
            data = {**self.data, "figures": figures}
            write_json(stage / EXPLAIN_FILE, data)
        return data


def explain_summary(run, summary: dict, opts: ExplainOptions, model, log=None) -> Explanation:
    """Explain every state (or ``opts.state``) of ``run`` by the states of its analysis ``summary``."""
    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    path = state_path(run, summary, opts.state)
    images = np.asarray(run.images, dtype=np.float32)
    prompts, prompt_emb, weights = _prompts(run, model)
    target = (weights[:, None] * prompt_emb).sum(axis=0)
    names = decomposition_names(model)
    pool = [n for n in names if n != "embed"]
    # The tested snapshots of every state keep their residual stream from the decomposition's pass
    # (the ablation test's unablated encoding), and the mean writes are summed in it too.
    tested = {s: halves(np.flatnonzero(path == s), opts.effect_images, opts.ablation_images)[1]
              for s in sorted(set(path.tolist())) if s >= 0 and opts.state in (None, s)}
    kept_rows = np.unique(np.concatenate(list(tested.values()))) if tested else np.zeros(0, dtype=int)
    mean_rows = spread(np.arange(len(images)), opts.mean_images) if opts.reference is None else None
    with contextlib.ExitStack() as stack:
        kept = stack.enter_context(keeping_residuals(model, budget=KEEP_BYTES))
        sums = None if mean_rows is None else stack.enter_context(summing_writes(model, pool))

        def select(start: int, stop: int) -> None:
            kept.select = _within(kept_rows, start, stop)
            if sums is not None:
                sums.select = _within(mean_rows, start, stop)
        log(f"decomposing {len(images)} snapshots" + ("" if sums is None else
                                                       f" and taking the mean writes over {len(mean_rows)}"))
        dec = decompose(model, images, batch_size=opts.batch_size, before_batch=select)
    if sums is not None:
        means, reference_info = sums.means(), {"kind": "snapshots", "images": len(mean_rows)}
    else:
        reference, reference_info = _reference_folder(opts, model)
        log(f"taking the mean writes over {reference_info['images']} images")
        means = component_means(model, reference, pool, batch_size=opts.batch_size)
    log("reading the components in words")
    vocabulary = _vocabulary(model, summary)
    parts, embedding = dec.parts.numpy(), dec.embedding.numpy()
    k = min(opts.k, len(pool) // 2)
    results = explain_states(parts, prompt_emb, path, names, embedding=embedding, weights=weights,
                             vocabulary=vocabulary, top=max(opts.top, k + 1), n_words=opts.words, basis=opts.basis,
                             draws=opts.bootstrap, seed=opts.seed)
    if opts.state is not None:
        results = [r for r in results if r["state"] == opts.state]
    score = contributions(parts, prompt_emb, embedding) @ weights
    wanted = [component(model, n).name for n in opts.components]
    reading_words, reading = _reading_labels(model, summary, [r["state"] for r in results])
    rng = np.random.default_rng(opts.seed)
    reps = {int(s): int(v["snapshot"]) for s, v in (summary.get("representatives") or {}).items()
            if 0 <= int(v.get("snapshot", -1)) < run.n}
    steps = np.asarray(run.steps)
    for r in results:
        s = r["state"]
        inside_rows = np.flatnonzero(path == s)
        reps.setdefault(s, int(inside_rows[len(inside_rows) // 2]))
        direct = [t["component"] for t in r["top"] if t["component"] != "embed"][:k]
        r["top"] = r["top"][:opts.top]
        r["asked"] = _asked(score[inside_rows], names, wanted, rng)
        r["ablation"] = r["ablation_direct"] = None
        if k >= 1:
            log(f"ranking state {s}'s components by total effect, then ablating its top {k} against "
                f"{opts.draws} random sets")
            prefix = kept.prefix(model, np.searchsorted(kept_rows, tested[s]), dec.embedding[tested[s]])
            r["ablation"], r["ablation_direct"] = _ablation(model, images, inside_rows, target, direct, pool,
                                                            means, k, reading, opts, seed=opts.seed + s,
                                                            prefix=prefix)
        r["map"] = {"snapshot": reps[s], "step": int(steps[reps[s]])}
    log("mapping the similarity over each state's typical snapshot")
    grids = _maps(model, images, {r["state"]: reps[r["state"]] for r in results}, target, opts.batch_size)
    for r in results:
        if r["state"] in grids:
            r["map"]["grid"] = np.round(grids[r["state"]], 6).tolist()
            r["map"]["heads_total"] = float(grids[r["state"]].sum())
    data = {"schema": SCHEMA, "run": str(run.path), "model": getattr(model, "name", run.model_name),
            "prompts": prompts, "images": len(images), "sum_error": dec.sum_error, "components": names,
            "reference": reference_info, "reading_words": reading_words, "options": opts.to_dict(),
            "states": results, "seconds": round(time.perf_counter() - t0, 2)}
    return Explanation(run, data, {s: (reps[s], g) for s, g in grids.items()})


def read_explanation(run) -> dict | None:
    """The run's explain.json (a ``Run`` or a run folder), or None when it has none or it cannot be read."""
    import json  # noqa: PLC0415

    folder = Path(getattr(run, "path", run)) / "analysis"
    try:
        path = inside(folder, EXPLAIN_FILE, "explanation")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (RunError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("states"), list) else None
