"""CLIP's opinion of each state: the words whose text embeddings lie closest to it.

A state's query is the mean of its snapshots' unit image embeddings; words are embedded
through prompt templates (``clipxai.analysis.words.vocab``, cached per model) and ranked by cosine. The
default vocabulary is the model's own whole-word tokens plus an optional user file; ``only``
restricts it to the user's list (e.g. the toy world's vocabulary).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clipxai.errors import ClipxaiError


@dataclass
class Labels:
    """Ranked words per state (and per chosen snapshot), with what vocabulary produced them."""

    states: dict[int, list[tuple[str, float]]]
    vocabulary: str
    templates: list[str]
    model: str
    snapshots: dict[int, list[tuple[str, float]]] = field(default_factory=dict)

    def name(self, state: int, words: int = 2) -> str:
        """A short name for a state: its top words."""
        return ", ".join(w for w, _ in self.states.get(state, [])[:words])

    def names(self, words: int = 2) -> dict[int, str]:
        return {s: self.name(s, words) for s in self.states}

    def to_dict(self) -> dict:
        def ranked(items):
            return [{"word": w, "similarity": round(float(s), 4)} for w, s in items]
        return {"model": self.model, "vocabulary": self.vocabulary, "templates": self.templates,
                "states": {str(s): ranked(v) for s, v in self.states.items()},
                "snapshots": {str(i): ranked(v) for i, v in self.snapshots.items()}}


def build_vocabulary(vocab_file: str | Path | None = None, only: bool = False,
                     model=None) -> tuple[list[str], str]:
    """(words, description): the model's whole words plus ``vocab_file``, or only ``vocab_file``.

    The words come from ``model``'s own tokenizer; without a model, from OpenAI's CLIP BPE.
    """
    from clipxai.analysis.words import vocab  # noqa: PLC0415

    extra = vocab.read_word_file(vocab_file) if vocab_file else []
    if only:
        if not extra:
            raise ClipxaiError("A vocabulary restricted to a user list needs that list (--vocab FILE).")
        return extra, f"{len(extra)} entries of {Path(vocab_file).name}"
    own = vocab.model_words(model) if model is not None else vocab.clip_words()
    words = list(dict.fromkeys(own + extra))
    desc = f"{len(words)} words: {getattr(model, 'name', 'CLIP')}'s whole-word tokens"
    return words, desc + (f" plus {Path(vocab_file).name}" if vocab_file else "")


def state_queries(embeddings: np.ndarray, states: np.ndarray) -> np.ndarray:
    """(K, D): the mean unit embedding of each state's snapshots."""
    e = np.asarray(embeddings, dtype=np.float64)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    return np.stack([e[states == s].mean(axis=0) for s in range(int(states.max()) + 1)]).astype(np.float32)


def label_states(model, embeddings: np.ndarray, states: np.ndarray, words: list[str], description: str,
                 k: int = 5, snapshot_index=(), templates=None, cache_dir=None) -> Labels:
    """Top-``k`` words for every state's centroid (and for the snapshots in ``snapshot_index``)."""
    from clipxai.analysis.words import vocab  # noqa: PLC0415

    templates = tuple(templates or vocab.DEFAULT_TEMPLATES)
    e = np.asarray(embeddings, dtype=np.float32)
    if e.shape[1] != model.embed_dim:
        raise ClipxaiError(f"The run's embeddings have {e.shape[1]} dimensions but {model.name} makes "
                           f"{model.embed_dim}; label with the model the run was made with (--model).")
    matrix = vocab.vocabulary_embeddings(model, words, templates, cache_dir=cache_dir)
    by_state = dict(enumerate(vocab.rank(state_queries(e, states), matrix, words, k)))
    index = sorted(set(int(i) for i in snapshot_index))
    by_snapshot = dict(zip(index, vocab.rank(e[index], matrix, words, k))) if index else {}
    return Labels(by_state, description, list(templates), model.name, by_snapshot)
