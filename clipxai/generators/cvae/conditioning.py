"""What the CVAE is conditioned on: CLIP text embeddings of the sentences, the attributes, or both.

Embedding a sentence costs a text-transformer pass, and a real dataset repeats sentences
heavily (CelebA's 200k rows share far fewer), so embeddings are computed once per
(model, sentence): de-duplicated, batched by token length, and kept in an on-disk store
keyed by the model's weights hash. A second training on the same data only reads a file.

A condition vector is the unit CLIP embedding times sqrt(D) (entries of order one, like
the +1/-1 attributes beside it), the attribute vector, or the two concatenated.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from clipxai.errors import ClipxaiError
from clipxai.util.files import atomic_write_text, save_npy

MODES = ("clip", "attributes", "both")
STORE_FORMAT = 1
_CHUNK = 4096  # sentences tokenized and encoded per progress report


@dataclass(frozen=True)
class Conditioner:
    """How condition vectors are laid out: ``[sqrt(D) * unit CLIP embedding | attributes]``."""

    mode: str
    clip_dim: int = 0
    n_attributes: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ClipxaiError(f"The condition '{self.mode}' is not one of {', '.join(MODES)}.")

    @property
    def uses_clip(self) -> bool:
        return self.mode in ("clip", "both")

    @property
    def uses_attributes(self) -> bool:
        return self.mode in ("attributes", "both")

    @property
    def dim(self) -> int:
        return self.clip_dim * self.uses_clip + self.n_attributes * self.uses_attributes

    def build(self, clip_unit: torch.Tensor | None, attributes: torch.Tensor | None) -> torch.Tensor:
        """(N, dim) condition vectors from unit CLIP embeddings (N, D) and/or attributes (N, A)."""
        parts = []
        if self.uses_clip:
            if clip_unit is None:
                raise ValueError("this conditioner needs CLIP embeddings")
            parts.append(clip_unit.float() * self.clip_dim ** 0.5)
        if self.uses_attributes:
            if attributes is None:
                raise ValueError("this conditioner needs attribute vectors")
            parts.append(attributes.float())
        return torch.cat(parts, dim=1)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "clip_dim": self.clip_dim, "n_attributes": self.n_attributes}


# -- the embedding store ---------------------------------------------------------------------

def default_store_dir() -> Path:
    """``$CLIPXAI_CACHE/cvae-text`` or ``~/.cache/clipxai/cvae-text``."""
    root = os.environ.get("CLIPXAI_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "clipxai") / "cvae-text"


class EmbeddingStore:
    """Unit text embeddings of one model, by sentence: ``<key>.json`` (sentences) + ``<key>.npy``."""

    def __init__(self, model, cache_dir: str | Path | None = None):
        self.model = model
        key = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(model.sha256))[:80]
        root = Path(cache_dir).expanduser() if cache_dir is not None else default_store_dir()
        self.base = root / f"text-v{STORE_FORMAT}-{key}"
        self.sentences: list[str] = []
        self.matrix = np.zeros((0, model.embed_dim), np.float32)
        self._read()
        self.row = {s: i for i, s in enumerate(self.sentences)}

    def _read(self) -> None:
        try:
            sentences = json.loads(self.base.with_suffix(".json").read_text(encoding="utf-8"))
            matrix = np.load(self.base.with_suffix(".npy"), allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return  # absent or unreadable: start empty
        if (isinstance(sentences, list) and matrix.dtype == np.float32
                and matrix.shape == (len(sentences), self.model.embed_dim)):
            self.sentences, self.matrix = sentences, matrix

    def _write(self) -> None:
        """The array first, then the sentence list that makes it valid (temp file + rename)."""
        try:
            self.base.parent.mkdir(parents=True, exist_ok=True)
            save_npy(self.matrix, self.base.with_suffix(".npy"))
            atomic_write_text(self.base.with_suffix(".json"), json.dumps(self.sentences, ensure_ascii=False))
        except OSError:
            pass  # an unwritable cache only costs time next time

    def embed(self, sentences: Sequence[str], progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
        """(len(sentences), D) unit fp32 CPU embeddings; only sentences never seen are encoded."""
        unique = list(dict.fromkeys(sentences))
        missing = [s for s in unique if s not in self.row]
        if missing:
            new = np.empty((len(missing), self.model.embed_dim), np.float32)
            for start in range(0, len(missing), _CHUNK):
                chunk = missing[start:start + _CHUNK]
                feats = encode_sentences(self.model, chunk)
                new[start:start + len(chunk)] = (feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)).numpy()
                if progress is not None:
                    progress(start + len(chunk), len(missing))
            self.matrix = np.concatenate([self.matrix, new])
            for s in missing:
                self.row[s] = len(self.sentences)
                self.sentences.append(s)
            self._write()
        index = np.fromiter((self.row[s] for s in sentences), np.int64, count=len(sentences))
        return torch.from_numpy(self.matrix[index])


@torch.no_grad()
def encode_sentences(model, sentences: list[str], batch_size: int = 256) -> torch.Tensor:
    """Raw text features (CPU fp32), batched by length as ``ClipModel.encode_text`` does."""
    return model.encode_text(list(sentences), batch_size=batch_size).cpu()


def text_embeddings(model, sentences: Sequence[str], cache_dir: str | Path | None = None,
                    progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Unit CLIP embeddings of ``sentences`` (one row each, repeats included), via the store."""
    return EmbeddingStore(model, cache_dir).embed(sentences, progress=progress)
