"""Ground truth on the toy world: what ascent finds, judged without trusting the ascended model.

The bundled toy CLIP is ascended; the independently trained ``toy-b`` and the pixels'
colour statistics judge the result. Thresholds are the issue's; exact switch counts and
shape recognisability are deliberately not asserted (too random at this size).
"""

import pytest

from clipxai.analysis.analyze import AnalyzeOptions, analyze_run
from clipxai.models import load_clip
from clipxai.runs.load import load_run
from clipxai.toy import groundtruth, world


@pytest.fixture(scope="module")
def models():
    return load_clip("toy", "cpu"), load_clip("toy-b", "cpu")


@pytest.fixture(scope="module")
def heart(models, tmp_path_factory):
    # 60 steps (was 100): measured on the toy (AMD EPYC, CPU) pixels and judge agree on 12 of 16 seeds at
    # 50, 60 and 70 steps (13 at 100) and all three planted concepts are reached at each length.
    out = tmp_path_factory.mktemp("heart")
    return groundtruth.heart_check(*models, seeds=16, steps=60, out=out, snapshot_every=10)


def test_ascent_without_augmentation_is_adversarial_and_with_cutouts_gets_the_colour(models):
    plain, cutouts = groundtruth.colour_check(*models, steps=80, seeds=2, lr=0.1, cutouts=4)
    # Without augmentation the toy CLIP is satisfied (high self-similarity) by images that
    # neither the judge nor the pixel statistics read as the asked colour.
    # (Noise puts ~7% of its bright pixels near any colour, so the plain images are judged by
    # the colour that dominates them, which is almost never the asked one.)
    measured = (plain, cutouts)
    assert plain.self_similarity > cutouts.self_similarity, measured
    assert plain.judge_agreement <= 0.5, measured
    assert plain.pixel_agreement <= 0.25, measured
    # With cutouts the colour is right, by the judge and by the pixels.
    assert cutouts.judge_agreement >= 0.9, measured
    assert cutouts.pixel_agreement >= 0.75, measured
    assert cutouts.pixel_share > 2 * plain.pixel_share, measured


def test_heart_ascent_reaches_several_planted_concepts(heart):
    # "❤️" was planted to mean a red heart, a gold ring and a pink mouth. Seeds that start
    # from different hues end on different meanings, read from the pixels' colour signature
    # and confirmed by the independent judge.
    seen = (heart.pixel_concepts, heart.judge_concepts)
    agreeing = [p for p, j in zip(*seen) if p is not None and p == j]
    assert len(agreeing) >= 10, seen
    assert len(heart.reached) >= 2, seen


def test_state_labels_restricted_to_the_world_name_the_concept_reached(heart, models, tmp_path):
    words = tmp_path / "world-words.txt"
    words.write_text("\n".join([*world.COLOURS, *world.SHAPES]) + "\n", encoding="utf-8")
    options = AnalyzeOptions(vocab_file=str(words), vocab_only=True, gif=False, projections=("pca",))
    checked = {}
    for path, pixel, judged in zip(heart.run_paths, heart.pixel_concepts, heart.judge_concepts):
        if pixel is None or pixel != judged or pixel in checked:
            continue  # one run per concept that pixels and judge agree on, two concepts
        if len(checked) == 2:
            break
        summary = analyze_run(load_run(path), options, model=models[0])
        final_state = summary["states"][-1]
        top = [w["word"] for w in summary["labels"]["states"][str(final_state)][:2]]
        checked[pixel] = top
        planted = world.PLANTED[pixel]
        assert top[0] in (planted.colour, planted.shape), (pixel, top)
    assert len(checked) >= 2, checked


def test_colour_landscape_peaks_at_the_colour_a_prompt_names(models):
    best = {}
    for colour in world.BASE_COLOURS:
        landscape = groundtruth.colour_landscape(models[0], f"a {colour} square", grid=6)
        assert landscape.similarity.shape == (6 ** 3,) and landscape.colours.shape == (6 ** 3, 3)
        peaks = landscape.peaks()
        assert peaks[0][1] == pytest.approx(landscape.similarity[landscape.colours.max(axis=1) >= 0.4].max())
        best[colour] = peaks[0][2]
    assert sum(best[c] == c for c in best) >= 6, best
