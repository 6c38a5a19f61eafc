"""Written words: renders of the prompt's words read as written, pictures of its meanings do not (toy)."""

import numpy as np
import pytest
import torch

from clipxai.analysis.trust.judges import image_embeddings, noise_images
from clipxai.analysis.trust.written import (
    available_fonts,
    has_glyphs,
    is_written,
    looks,
    prompt_words,
    render_words,
    written_reference,
    written_score,
)
from clipxai.models import load_clip
from clipxai.toy import world


@pytest.fixture(scope="module")
def toy():
    return load_clip("toy", "cpu")


@pytest.fixture(scope="module")
def planted_embeddings(toy):
    return image_embeddings(toy, world.generate(40, 301, planted_fraction=1.0).images)


def test_prompt_words_drop_emoji_selectors():
    assert prompt_words("❤️") == ["\u2764"]
    assert prompt_words("  I   love you ") == ["I", "love", "you"]


def test_renders_are_deterministic_and_use_several_fonts():
    fonts = available_fonts()
    assert fonts[0] is None and len(fonts) >= 2  # PIL's default and at least one TrueType font here
    a, b = render_words(["love"], 64), render_words(["love"], 64)
    assert a.shape == (len(looks()), 3, 64, 64) and torch.equal(a, b)
    j1, j2 = (
        render_words(["love"], 64, jitter_seed=3, count=8),
        render_words(["love"], 64, jitter_seed=3, count=8),
    )
    assert torch.equal(j1, j2) and not torch.equal(j1, render_words(["love"], 64, jitter_seed=4, count=8))
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0 and float(a.std()) > 0.1  # something was drawn
    # the heart glyph is drawn only by the fonts that have it (not by PIL's default)
    assert not has_glyphs(None, "\u2764") and has_glyphs(None, "love")
    hearts = render_words(["\u2764"], 64)
    assert 0 < len(hearts) < len(a)
    with pytest.raises(ValueError, match="no available font"):
        render_words(["\ue000"], 64)


@pytest.mark.parametrize("words", [["love"], ["\u2764"]])
def test_renders_of_the_words_are_written_and_the_meanings_are_not(toy, planted_embeddings, words):
    ref = written_reference(toy, words)
    renders = render_words(words, toy.input_resolution, jitter_seed=99, count=40)  # looks not in the pool
    hit = is_written(ref.score(image_embeddings(toy, renders))).mean()
    assert hit >= 0.9
    assert is_written(ref.score(planted_embeddings)).mean() <= 0.05
    assert is_written(ref.score(image_embeddings(toy, noise_images(16, 64, seed=5)))).mean() <= 0.05
    # measured: toy cannot tell "love" from other words (specificity ~0); the heart glyph from letters it can
    assert (ref.specificity < 1.5) if words == ["love"] else (ref.specificity > 0.3)


def test_written_score_function_matches_the_reference(toy, planted_embeddings):
    ref = written_reference(toy, ["love"], ["dog", "tree", "car"])
    direct = written_score(toy, planted_embeddings[:5], ["love"], ["dog", "tree", "car"])
    np.testing.assert_allclose(direct, ref.score(planted_embeddings[:5]))
    assert (direct < -5).all()  # far from writing, not a close call
