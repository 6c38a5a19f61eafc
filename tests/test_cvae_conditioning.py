"""Conditions: CLIP sentence embeddings computed once per (model, sentence), and the condition layout."""

import pytest
import torch

from clipxai.generators.cvae import conditioning as C
from clipxai.models import random_clip, wrap_module

SENTENCES = ["a big red heart in the center", "a small blue square on the left",
             "a smiling woman wearing eyeglasses", "a big red heart in the center"]


def counting(monkeypatch):
    """Record every batch of sentences actually sent through the text encoder."""
    seen = []
    real = C.encode_sentences

    def spy(model, sentences, batch_size=256):
        seen.append(list(sentences))
        return real(model, sentences, batch_size)
    monkeypatch.setattr(C, "encode_sentences", spy)
    return seen


def test_embeddings_equal_clips_own_encoding_for_any_length(tiny_clip, tmp_path):
    got = C.text_embeddings(tiny_clip, SENTENCES, cache_dir=tmp_path)
    ref = tiny_clip.encode_text(SENTENCES)
    torch.testing.assert_close(got, ref / ref.norm(dim=-1, keepdim=True), atol=1e-5, rtol=1e-5)
    assert got.shape == (4, 64)


def test_each_sentence_is_encoded_once_and_then_read_from_disk(tiny_clip, tmp_path, monkeypatch):
    seen = counting(monkeypatch)
    first = C.text_embeddings(tiny_clip, SENTENCES, cache_dir=tmp_path)
    assert sorted(seen[0]) == sorted(set(SENTENCES))          # repeats de-duplicated
    second = C.text_embeddings(tiny_clip, SENTENCES + ["a cat"], cache_dir=tmp_path)
    assert seen[1:] == [["a cat"]]                             # only the new sentence
    torch.testing.assert_close(second[:4], first)
    C.text_embeddings(tiny_clip, SENTENCES, cache_dir=tmp_path)
    assert len(seen) == 2


def test_the_store_is_keyed_by_the_models_weights(tiny_clip, tmp_path, monkeypatch):
    C.text_embeddings(tiny_clip, SENTENCES, cache_dir=tmp_path)
    other = wrap_module(random_clip("tiny", seed=1), name="tiny")   # same name, other weights
    seen = counting(monkeypatch)
    got = C.text_embeddings(other, SENTENCES, cache_dir=tmp_path)
    assert len(seen) == 1
    ref = other.encode_text(SENTENCES)
    torch.testing.assert_close(got, ref / ref.norm(dim=-1, keepdim=True), atol=1e-5, rtol=1e-5)


def test_a_corrupt_store_is_recomputed(tiny_clip, tmp_path):
    C.text_embeddings(tiny_clip, SENTENCES, cache_dir=tmp_path)
    for f in tmp_path.glob("text-*.npy"):
        f.write_bytes(b"garbage")
    got = C.text_embeddings(tiny_clip, SENTENCES, cache_dir=tmp_path)
    assert torch.isfinite(got).all() and torch.allclose(got.norm(dim=-1), torch.ones(4))


@pytest.mark.parametrize("mode, dim", [("clip", 64), ("attributes", 5), ("both", 69)])
def test_condition_layout(mode, dim):
    cond = C.Conditioner(mode, clip_dim=64, n_attributes=5)
    unit = torch.nn.functional.normalize(torch.randn(3, 64), dim=-1)
    attrs = torch.tensor([[1.0, -1, 1, -1, 1]] * 3)
    c = cond.build(unit, attrs)
    assert c.shape == (3, dim) == (3, cond.dim)
    if cond.uses_clip:  # sqrt(D) * unit vector: entries of order one, norm sqrt(D)
        torch.testing.assert_close(c[:, :64].norm(dim=-1), torch.full((3,), 8.0))
    if cond.uses_attributes:
        assert torch.equal(c[:, -5:], attrs)


def test_unknown_condition_mode_is_a_clear_error():
    with pytest.raises(C.ClipxaiError, match="'pixels' is not one of clip, attributes, both"):
        C.Conditioner("pixels", 64, 5)
