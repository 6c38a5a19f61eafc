"""CLIP's own words for a concept: the vocabulary, its cached embeddings, nearest neighbours.

The vocabulary is the set of whole words in the model's own tokenizer (for OpenAI's CLIP
and most others, its BPE table), so any CLIP model can name what an embedding is close to
without a network or a word list. Embedding ~33k words is slow on a CPU for real models,
so the result is cached on disk, keyed by the model's weights hash and the exact words and
templates; the second call only reads a file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from clipxai.errors import ClipxaiError
from clipxai.models.tokenizers import clip_words
from clipxai.util.files import save_npy

# Two templates: the bare word (what CLIP matches typography and short prompts against) and
# a photo caption (the visual sense). More templates cost one full pass over the vocabulary each.
DEFAULT_TEMPLATES: tuple[str, ...] = ("a photo of {}.", "{}")
CACHE_FORMAT = 1
# Words embedded per chunk: bounds memory for large models without many tiny batches.
_CHUNK = 2048

class VocabError(ClipxaiError):
    """A word list or query for the vocabulary tools is unusable."""


# ---------------------------------------------------------------------------------------
# Words

def model_words(model) -> list[str]:
    """The whole-word tokens of ``model``'s own tokenizer (OpenAI's BPE words for a bare module)."""
    vocabulary = getattr(model, "vocabulary", None)
    return list(vocabulary()) if callable(vocabulary) else clip_words()


def read_word_file(path: str | Path) -> list[str]:
    """Words or short phrases, one per line; blank lines and ``#`` comments are skipped."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise VocabError(f"The word list {path} does not exist or is not a file.")
    data = path.read_bytes()
    if b"\x00" in data:
        raise VocabError(f"The word list {path} is a binary file, not text with one word per line.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise VocabError(f"The word list {path} is not UTF-8 text (bad byte at offset {err.start}).") from err
    words: list[str] = []
    for line in text.splitlines():
        entry = " ".join(line.split())
        if entry and not entry.startswith("#"):
            words.append(entry)
    if not words:
        raise VocabError(f"The word list {path} holds no words (only blank lines or comments).")
    return list(dict.fromkeys(words))


# ---------------------------------------------------------------------------------------
# Embeddings

def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _check_templates(templates: Sequence[str]) -> tuple[str, ...]:
    templates = tuple(templates)
    if not templates:
        raise VocabError("At least one template is needed to embed words.")
    for t in templates:
        if t.count("{}") != 1:
            raise VocabError(f"The template '{t}' must contain '{{}}' exactly once.")
    return templates


def embed_texts(model, texts: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES,
                progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Unit-normalised mean over templates of each text's unit-normalised embedding (CPU fp32).

    ``progress(done, total)`` is called after each chunk of texts, if given.
    """
    templates = _check_templates(templates)
    texts = list(texts)
    out = torch.empty(len(texts), model.embed_dim, dtype=torch.float32)
    for start in range(0, len(texts), _CHUNK):
        chunk = texts[start:start + _CHUNK]
        acc = torch.zeros(len(chunk), model.embed_dim, dtype=torch.float32)
        for template in templates:
            acc += _unit(model.encode_text([template.format(t) for t in chunk]).cpu())
        out[start:start + len(chunk)] = _unit(acc)
        if progress is not None:
            progress(start + len(chunk), len(texts))
    return out


def default_cache_dir() -> Path:
    """Where vocabulary embeddings are kept: ``$CLIPXAI_CACHE/vocab`` or ``~/.cache/clipxai/vocab``."""
    root = os.environ.get("CLIPXAI_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "clipxai"
    return base / "vocab"


def cache_path(model, words: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES,
               cache_dir: str | Path | None = None) -> Path:
    """The cache file for these words and templates under this model's weights."""
    key = json.dumps([CACHE_FORMAT, list(words), list(templates)], ensure_ascii=False)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    model_key = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(model.sha256))[:80]
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / f"{model_key}-{digest}.npy"


def _read_cache(path: Path, rows: int, dim: int) -> torch.Tensor | None:
    """The cached matrix, or None when absent or unusable (it will be recomputed)."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    if arr.shape != (rows, dim) or arr.dtype != np.float32 or not np.isfinite(arr).all():
        return None
    return torch.from_numpy(np.ascontiguousarray(arr))


def _write_cache(path: Path, matrix: torch.Tensor) -> None:
    """Write through a temporary file and rename, so readers never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_npy(matrix.numpy(), path)
    except OSError:
        pass  # an unwritable cache only costs time on the next call


def vocabulary_embeddings(model, words: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES,
                          cache_dir: str | Path | None = None,
                          progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """(len(words), D) unit-normalised fp32 CPU embeddings of ``words``, cached on disk."""
    words = list(words)
    templates = _check_templates(templates)
    if not words:
        raise VocabError("The word list is empty.")
    path = cache_path(model, words, templates, cache_dir)
    cached = _read_cache(path, len(words), model.embed_dim)
    if cached is not None:
        return cached
    matrix = embed_texts(model, words, templates, progress=progress)
    _write_cache(path, matrix)
    return matrix


# ---------------------------------------------------------------------------------------
# Neighbours

def _as_queries(query, dim: int) -> torch.Tensor:
    q = torch.as_tensor(np.asarray(query.detach().cpu() if torch.is_tensor(query) else query),
                        dtype=torch.float32)
    if q.dim() == 1:
        q = q.unsqueeze(0)
    if q.dim() != 2 or q.shape[1] != dim:
        raise VocabError(
            f"The query embeddings have shape {tuple(q.shape)}, but this model's embeddings "
            f"have {dim} dimensions."
        )
    return _unit(q)


def rank(query, vocab: torch.Tensor, words: Sequence[str], k: int = 10) -> list[list[tuple[str, float]]]:
    """The ``k`` rows of ``vocab`` (unit embeddings of ``words``) closest to each query row."""
    q = _as_queries(query, vocab.shape[1])
    sims = q @ vocab.T
    top = sims.topk(min(max(int(k), 1), len(words)), dim=1)
    return [
        [(words[i], float(s)) for s, i in zip(row_s.tolist(), row_i.tolist())]
        for row_s, row_i in zip(top.values, top.indices)
    ]


def nearest(model, query, words: Sequence[str], k: int = 10,
            templates: Sequence[str] = DEFAULT_TEMPLATES,
            cache_dir: str | Path | None = None) -> list[list[tuple[str, float]]]:
    """The ``k`` words closest (cosine) to each query row, best first."""
    words = list(words)
    return rank(query, vocabulary_embeddings(model, words, templates, cache_dir=cache_dir), words, k)


# ---------------------------------------------------------------------------------------
# CLI
