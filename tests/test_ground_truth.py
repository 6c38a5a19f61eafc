"""Ground truth on the toy world: what ascent finds, judged without trusting the ascended model.

The bundled toy CLIP is ascended; the independently trained ``toy-b`` and the pixels'
colour statistics judge the result. Thresholds are the issue's; exact switch counts and
shape recognisability are deliberately not asserted (too random at this size).
"""

import pytest

from clipxai.models import load_clip
from clipxai.toy import groundtruth

@pytest.fixture(scope="module")
def models():
    return load_clip("toy", "cpu"), load_clip("toy-b", "cpu")


@pytest.fixture(scope="module")
def heart(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("heart")
    return groundtruth.heart_check(*models, seeds=16, steps=100, out=out, cutouts=4, lr=0.1)


def test_ascent_without_augmentation_is_adversarial_and_with_cutouts_gets_the_colour(models):
    plain, cutouts = groundtruth.colour_check(*models, steps=100, seeds=2, lr=0.1)
    # Without augmentation the toy CLIP is satisfied (high self-similarity) by images that
    # neither the judge nor the pixel statistics read as the asked colour.
    # (Noise puts ~7% of its bright pixels near any colour, so the plain images are judged by
    # the colour that dominates them, which is almost never the asked one.)
    measured = (plain, cutouts)
    assert plain.self_similarity > cutouts.self_similarity, measured
    assert plain.judge_agreement <= 0.5, measured
    assert plain.pixel_agreement <= 0.25, measured
    # With cutouts the colour is right, by the judge and by the pixels.
    assert cutouts.judge_agreement >= 0.85, measured
    assert cutouts.pixel_share > 1.5 * plain.pixel_share, measured


def test_heart_ascent_ends_on_a_planted_concept(heart):
    # Most seeds end on a planted meaning of "❤️" by its colour signature, and the judge
    # confirms at least one of them. (Reaching *several* meanings across seeds is what the
    # world was built to show; with the bundled models and these settings nearly every seed
    # ends on the red heart, which docs/toy-world.md reports as an open finding.)
    read = [p for p in heart.pixel_concepts if p is not None]
    assert len(read) >= 12, heart.pixel_concepts
    assert heart.reached, (heart.pixel_concepts, heart.judge_concepts)
