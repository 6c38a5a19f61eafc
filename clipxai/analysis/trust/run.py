"""A run's trust checks: ``RUN/analysis/evaluation.json``, one entry per state and one for the final image.

Each state of the run's analysis is measured on up to ``per_state`` of its snapshots, spread evenly
over it (its most typical snapshot among them), and the final image on ``final.png`` (the image
after the last step; the last snapshot only when a run has none). Images are clipped to [0, 1],
as a picture file holds them: a judge scores what a viewer sees. All of them go through each
model once together (``evaluate.measure``), so the cost grows with the images measured, not the
entries. ``check_run``, ``load_judges`` and ``load_reference`` check everything the user gave
before any work, so bad input costs one sentence and writes nothing; only ``RUN/analysis/`` is written.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from clipxai.analysis.trust import toyworld
from clipxai.analysis.trust.evaluate import entry, measure
from clipxai.analysis.trust.judges import text_embeddings
from clipxai.analysis.trust.sparse import sparse_reading
from clipxai.analysis.trust.written import prompt_words
from clipxai.errors import ClipxaiError, ModelLoadError, RunError
from clipxai.runs.format import FINAL_IMAGE
from clipxai.util.files import image_files, staged_files, write_json
from clipxai.util.paths import check_writable_inside, inside

EVALUATION_FILE = "evaluation.json"
SCHEMA = "clipxai.evaluation/1"
PER_STATE = 8  # snapshots measured per state (spread over it)
MIN_REFERENCE = 3  # the fewest reference images (the pathway's spread needs three)


@dataclass
class EvaluateOptions:
    """Every choice of ``clipxai evaluate``; the defaults are what docs/analysis.md describes."""

    judges: tuple[str, ...] = ()  # names of the judges (default: ``default_judges``)
    reference: str | None = None  # a folder of natural images (toy runs: the toy world's images)
    labels: tuple[str, ...] = ()  # candidate readings (default: the toy world's, or the states' words)
    per_state: int = PER_STATE

    def to_dict(self) -> dict:
        return {**asdict(self), "judges": list(self.judges), "labels": list(self.labels)}


def parse_labels(text: str | None) -> tuple[str, ...]:
    """``a,b,c`` as labels, or one sentence when it is not at least two different, non-empty labels."""
    if text is None:
        return ()
    labels = tuple(w.strip() for w in str(text).split(","))
    if any(not w for w in labels) or len(set(labels)) < 2 or len(set(labels)) != len(labels):
        raise ClipxaiError(f"--labels {text!r} must be two or more different labels separated by commas, none empty.")
    return labels


def check_run(run) -> None:
    """One sentence when ``run`` has no snapshot images or no text prompt to evaluate them against."""
    if "images" not in run.array_names() or run.n == 0:
        raise RunError(f"{run.path} has no snapshots (images) to evaluate; record some with clipxai ascend.")
    if run.main_prompt is None:
        raise ClipxaiError(f"{run.path} has no text prompt to evaluate its images against.")


def run_models(run) -> list[str]:
    """The names of the models the ascent used (every member of an ensemble)."""
    names = [m["describe"].get("name") or m["label"] for m in run.embedding_models()]
    return [str(n) for n in dict.fromkeys([run.model_name, *names]) if n]


def local_openai_models() -> list[str]:
    """OpenAI's named models whose weights are already on this machine (never downloaded here)."""
    from clipxai.models.offline import clip_cache_dir, openai_model_urls  # noqa: PLC0415

    cache = clip_cache_dir()
    return [name for name, url in openai_model_urls().items() if (cache / os.path.basename(url)).is_file()]


def default_judges(run) -> list[str]:
    """The models this machine has that the ascent did not use: a toy's twin, or cached OpenAI models."""
    used = set(run_models(run))
    pool = list(toyworld.TWINS) if toyworld.is_toy(run.model_name) else local_openai_models()
    return [name for name in pool if name not in used]


def load_judge(name: str, device: str = "auto"):
    """The judge ``name`` (any ``--model`` form) from this machine only: a named model that is not
    cached is one sentence, never a download."""
    from clipxai.models.load import load_clip  # noqa: PLC0415
    from clipxai.models.offline import clip_cache_dir, openai_model_urls  # noqa: PLC0415

    url = openai_model_urls().get(name)
    if url and not Path(name).exists() and not (clip_cache_dir() / os.path.basename(url)).is_file():
        raise ModelLoadError(f"The judge '{name}' is not in {clip_cache_dir()} and evaluate never downloads a model; "
                             f"place {os.path.basename(url)} there, or name a judge this machine has "
                             f"(`clipxai models` lists them).")
    return load_clip(name, device=device)


def load_model(run, device: str = "auto"):
    """The model that made ``run`` (the first of an ensemble), or one sentence when the run does not say."""
    if not run.model_name:
        raise ClipxaiError(f"{run.path} does not say which CLIP made it; pass --model.")
    from clipxai.models.load import load_clip  # noqa: PLC0415

    return load_clip(run.model_name, device=device)


def load_judges(judges, device: str = "auto") -> list:
    """Judges given as names or as loaded models, loaded once each (the same name twice counts once)."""
    out = {}
    for j in judges:
        model = load_judge(j, device) if isinstance(j, str) else j
        out.setdefault(model.name, model)
    return list(out.values())


def load_reference(folder: str | None, shape: tuple[int, int]) -> torch.Tensor | None:
    """The images of a ``--reference`` folder at the run's image shape (height, width), or one sentence."""
    if folder is None:
        return None
    from clipxai.prompts import load_image  # noqa: PLC0415

    files = image_files(folder, "reference")
    if len(files) < MIN_REFERENCE:
        raise ClipxaiError(f"The reference {folder} holds {len(files)} image(s); the checks need at least {MIN_REFERENCE}.")
    return torch.cat([load_image(p, shape) for p in files])


def state_groups(run, summary: dict, per_state: int) -> dict[int, np.ndarray]:
    """Per state of the analysis, the snapshot rows measured: up to ``per_state`` spread over the state,
    its most typical snapshot among them."""
    path = np.asarray(summary.get("states") or [], dtype=int)
    if len(path) != run.n:
        raise ClipxaiError(f"The analysis of {run.path} is older than its snapshots; run `clipxai analyze "
                           f"{run.path}` again.")
    reps = summary.get("representatives") or {}
    groups = {}
    for s in sorted(int(v) for v in set(path.tolist()) if v >= 0):
        rows = np.flatnonzero(path == s)
        picked = rows[np.unique(np.linspace(0, len(rows) - 1, min(per_state, len(rows))).round().astype(int))]
        typical = int((reps.get(str(s)) or {}).get("snapshot", -1))
        if typical in rows and typical not in picked:
            picked = np.sort(np.append(picked[: max(per_state - 1, 1)], typical))
        groups[s] = picked
    return groups


def final_image(run) -> tuple[np.ndarray, dict]:
    """The run's final image [3, H, W] in [0, 1] (``final.png``, else the last snapshot) and where it came from."""
    file = run.path / FINAL_IMAGE
    shape = tuple(run.images.shape[-2:])
    if file.is_file():
        from clipxai.prompts import load_image  # noqa: PLC0415

        return load_image(file, shape)[0].numpy(), {"source": FINAL_IMAGE, "step": run.manifest.get("steps_done")}
    last = np.clip(np.asarray(run.images[-1], dtype=np.float32), 0, 1)
    return last, {"source": "last snapshot", "step": int(run.steps[-1])}


def _state_words(summary: dict) -> dict[int, list[str]]:
    by_state = ((summary.get("labels") or {}).get("states")) or {}
    return {int(s): [str(w["word"]) for w in words if isinstance(w, dict) and "word" in w]
            for s, words in by_state.items() if isinstance(words, list)}


def _vocabulary(model, summary: dict, toy: bool) -> tuple[list[str], np.ndarray, str]:
    """(words, text embeddings, in words) of the sparse reading's vocabulary: the toy world's words on a
    toy, else the vocabulary the analysis labelled with (its embeddings cached on disk)."""
    if toy:
        words = toyworld.vocabulary()
        return words, text_embeddings(model, words).numpy(), f"{len(words)} words of the toy world"
    from clipxai.analysis.words.label import build_vocabulary  # noqa: PLC0415
    from clipxai.analysis.words.vocab import vocabulary_embeddings  # noqa: PLC0415

    options = (summary.get("analysis") or {}).get("options") or {}
    vocab_file = options.get("vocab_file")
    vocab_file = vocab_file if vocab_file and Path(vocab_file).is_file() else None
    words, desc = build_vocabulary(vocab_file, bool(options.get("vocab_only")) and vocab_file is not None, model=model)
    return words, vocabulary_embeddings(model, words).numpy(), desc


def _baseline_sets(opts: EvaluateOptions, reference, toy: bool) -> tuple[object, object, dict]:
    """(reference, natural, what they are): the user's folder, the toy world's images, or none (noise only)."""
    if reference is not None:
        path = str(Path(opts.reference).expanduser().resolve()) if opts.reference else None
        return reference, None, {"kind": "folder", "path": path, "images": len(reference)}
    if toy:
        ref, nat = toyworld.reference_images(), toyworld.natural_images()
        return ref, nat, {"kind": "toy world", "images": len(ref), "natural_images": len(nat)}
    return None, None, {"kind": "none", "images": 0}


def evaluate_run(run, summary: dict, opts: EvaluateOptions, model, judges: list, reference=None, log=None) -> dict:
    """What evaluation.json holds for ``run`` by the states of its analysis ``summary`` (nothing written)."""
    log = log or (lambda msg: None)
    t0 = time.perf_counter()
    prompt, toy = run.main_prompt, toyworld.is_toy(model.name)
    groups = state_groups(run, summary, opts.per_state)
    final, final_info = final_image(run)
    rows = np.concatenate([g for g in groups.values()]) if groups else np.zeros(0, int)
    images = np.clip(np.asarray(run.images[np.sort(rows)] if len(rows) else run.images[:0], np.float32), 0, 1)
    order = {int(r): i for i, r in enumerate(np.sort(rows))}
    batch = np.concatenate([images, final[None].astype(np.float32)])
    words_by_state = _state_words(summary)
    labels = list(opts.labels) or (toyworld.labels() if toy else list(dict.fromkeys(
        w for s in groups for w in words_by_state.get(s, [])[:3])))
    labels = labels if len(labels) >= 2 else []
    words = list(dict.fromkeys(prompt_words(prompt) + [ws[0] for s, ws in words_by_state.items() if ws and s in groups]))
    ref, natural, ref_info = _baseline_sets(opts, reference, toy)
    log(f"measuring {len(batch)} images with {model.name} and {len(judges)} judge(s)")
    m = measure(model, torch.from_numpy(batch), prompt, judges=judges, reference=ref, labels=labels or None,
                words=words, natural=natural)
    vocab, vocab_emb, vocab_desc = _vocabulary(model, summary, toy)
    steps = np.asarray(run.steps)

    def one(idx) -> dict:
        e = entry(m, idx)
        target = m.own.embeddings[list(idx)].mean(dim=0).numpy()
        e["sparse_reading"] = sparse_reading(target, vocab_emb, vocab, centre=m.centre)
        return e

    states = [{"state": s, "snapshots": int((np.asarray(summary["states"]) == s).sum()),
               "steps": [int(steps[r]) for r in g], "nearest_words": words_by_state.get(s, [])[:5],
               **one([order[int(r)] for r in g])} for s, g in groups.items()]
    return {
        "schema": SCHEMA, "run": str(run.path), "prompt": prompt, "model": model.name,
        "judges": [j.name for j in judges], "reference": ref_info, "labels": labels, "written_words": words,
        "vocabulary": vocab_desc, "options": opts.to_dict(),
        "final": {**final_info, **one([len(batch) - 1])}, "states": states,
        "seconds": round(time.perf_counter() - t0, 3),
    }


def write_evaluation(run, data: dict) -> Path:
    """``data`` as ``RUN/analysis/evaluation.json`` (atomically, never outside the run folder)."""
    folder = run.analysis_dir
    check_writable_inside(run.path, folder)
    path = inside(run.path, Path(folder.name) / EVALUATION_FILE, "evaluation")
    with staged_files(folder, f"the evaluation of {run.path}") as stage:   # a full disk leaves the earlier one
        write_json(stage / path.name, data)
    return path


def read_evaluation(run) -> dict | None:
    """The run's evaluation.json (a ``Run`` or a run folder), or None when it has none or it cannot be read."""
    folder = Path(getattr(run, "path", run)) / "analysis"
    try:
        data = json.loads(inside(folder, EVALUATION_FILE, "evaluation").read_text(encoding="utf-8"))
    except (RunError, OSError, ValueError):
        return None
    ok = isinstance(data, dict) and data.get("schema") == SCHEMA and isinstance(data.get("states"), list)
    return data if ok else None
