"""The palette term (sliced Wasserstein distance of the pixels' colours to a palette) and the diversity term
(each seed pushed away from the other seeds of its batch), alone and on the toy world."""

import warnings

import numpy as np
import pytest
import torch

import clipxai
from clipxai.cli.commands import main
from clipxai.errors import TermError
from clipxai.terms.diversity import pairwise_dissimilarity
from clipxai.terms.load import load_term
from clipxai.terms.palette import palette_distance, parse_colours

PALETTE = "#c0392b,#f1c40f,#ecf0f1,#2c3e50"


def test_colours_are_read_as_hex_and_anything_else_is_one_sentence():
    assert torch.allclose(parse_colours("#ff0000, 00ff80"), torch.tensor([[1.0, 0, 0], [0, 1.0, 128 / 255]]))
    for bad, words in (("#ff00", "not a colour written #rrggbb"), ("red", "not a colour"), (",", "at least one")):
        with pytest.raises(TermError, match=words):
            parse_colours(bad)
    assert load_term(f"palette:{PALETTE}").name == f"palette({PALETTE})"
    with pytest.raises(TermError, match="needs its colours"):
        load_term("palette")


def test_the_distance_is_zero_for_the_palette_in_equal_shares_and_grows_away_from_it():
    colours = parse_colours(PALETTE)
    exact = colours.repeat_interleave(64, dim=0)[torch.randperm(256, generator=torch.Generator().manual_seed(1))]
    image = exact.T.reshape(1, 3, 16, 16)
    assert palette_distance(image, colours).item() < 1e-6
    one_colour = colours[:1].T.reshape(1, 3, 1, 1).expand(1, 3, 16, 16)  # the right colours, wrong shares
    assert palette_distance(one_colour, colours).item() > 0.1
    noise = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    nearer = 0.5 * noise + 0.5 * image
    assert palette_distance(nearer, colours).max() < palette_distance(noise, colours).min()


def test_dissimilarity_is_minus_the_mean_cosine_to_the_other_seeds_and_its_gradient_pushes_apart():
    same = torch.ones(3, 4)
    assert torch.allclose(pairwise_dissimilarity(same), torch.full((3,), -1.0))
    assert torch.allclose(pairwise_dissimilarity(torch.eye(3)), torch.zeros(3))
    assert pairwise_dissimilarity(torch.ones(1, 4)).tolist() == [0.0]
    x = torch.tensor([[1.0, 0.1], [1.0, -0.1]], requires_grad=True)
    pairwise_dissimilarity(x).sum().backward()
    with torch.no_grad():
        apart = x + 0.1 * x.grad
    assert pairwise_dissimilarity(apart).sum() > pairwise_dissimilarity(x.detach()).sum()


def test_diversity_on_embeddings_and_on_a_layers_gram_matrices_in_a_batched_run(tiny_clip, tmp_path):
    runs = clipxai.ascend("a red heart", model_obj=tiny_clip, steps=3, snapshot_every=1, cutouts=2, seeds=3,
                          terms=["diversity=0.5", "diversity:blocks.1"], out=str(tmp_path), quiet=True)
    for run in runs:
        metrics = run.metrics()
        assert run.manifest["terms"][-2:] == ["diversity", "diversity(blocks.1)"]
        assert all(-1 <= m["term/diversity"] <= 1 and -1 <= m["term/diversity(blocks.1)"] <= 0 for m in metrics)
    alone = clipxai.ascend("a red heart", model_obj=tiny_clip, steps=2, snapshot_every=1, cutouts=2,
                           terms=["diversity"], out=str(tmp_path), quiet=True)[0]
    assert [m["term/diversity"] for m in alone.metrics()] == [0.0, 0.0]   # one seed has no other to differ from


def test_bad_palette_and_diversity_terms_are_one_sentence(tiny_clip_file, tmp_path, capsys):
    for spec, words in (("palette:#12345", "not a colour written #rrggbb"), ("diversity:", "needs a layer"),
                        ("diversity:blocks.40", "blocks.40")):
        code = main(["ascend", "x", "--model", str(tiny_clip_file), "--term", spec, "--steps", "1",
                     "--out", str(tmp_path / "runs"), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and words in err and err.count("\n") == 1, err
        assert not (tmp_path / "runs").exists()


def test_terms_lists_both(capsys):
    assert main(["terms"]) == 0
    out = capsys.readouterr().out
    assert "palette" in out and "sliced Wasserstein" in out and "diversity" in out


def _final(runs) -> np.ndarray:
    return np.stack([np.clip(r.images[-1].astype(np.float32), 0, 1) for r in runs])


def _toy_ascent(model, out, **options):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*the analysis needs at least 3")
        return _final(clipxai.ascend("❤️", model_obj=model, snapshot_every=max(1, options["steps"] - 1), quiet=True,
                                     activations="none", record_gradients=False, out=str(out), **options))


def test_on_the_toy_the_palette_halves_the_colour_distance_and_keeps_the_prompt(tmp_path):
    from clipxai.models import load_clip
    from clipxai.toy.groundtruth import prompt_similarity

    palette = "#e0242a,#111111"   # red on near-black
    model, colours = load_clip("toy", "cpu"), parse_colours(palette)
    measured = {}
    for weight in (0, 4):
        images = _toy_ascent(model, tmp_path / str(weight), steps=40, seeds=2, cutouts=4,
                             terms=[f"palette:{palette}={weight}"] if weight else [])
        measured[weight] = (palette_distance(torch.from_numpy(images), colours).mean().item(),
                            float(prompt_similarity(model, images, "❤️").mean()))
    (plain_distance, plain_sim), (distance, sim) = measured[0], measured[4]
    assert distance <= 0.5 * plain_distance, measured
    assert sim >= 0.9 * plain_sim, measured


def _mean_pairwise_cosine(features: torch.Tensor) -> float:
    unit = features / features.norm(dim=1, keepdim=True)
    cos = unit @ unit.T
    k = len(cos)
    return float((cos.sum() - cos.diagonal().sum()) / (k * (k - 1)))


def test_on_the_toy_diversity_spreads_the_seeds_of_a_batch_as_the_judge_sees_them(tmp_path):
    from clipxai.models import load_clip
    from clipxai.toy.evaluate import image_features
    from clipxai.toy.groundtruth import HEART_OPTIONS

    model, judge = load_clip("toy", "cpu"), load_clip("toy-b", "cpu")
    spread = {}
    for weight in (0, 1):
        images = _toy_ascent(model, tmp_path / str(weight), steps=20, seeds=4, **HEART_OPTIONS,
                             terms=["diversity=1"] if weight else [])
        spread[weight] = _mean_pairwise_cosine(image_features(judge, images))
    assert spread[1] < spread[0], spread


@pytest.mark.slow  # 10 batches of 8 seeds; the test above covers the same mechanism on one small batch
def test_on_the_toy_diversity_reaches_more_distinct_meanings_over_five_batches():
    from clipxai.models import load_clip
    from clipxai.toy.diversity import diversity_check

    model, judge = load_clip("toy", "cpu"), load_clip("toy-b", "cpu")
    without = diversity_check(model, judge, weight=0, batches=5)
    with_term = diversity_check(model, judge, weight=1.0, batches=5)
    assert sum(with_term.distinct) > sum(without.distinct), (without.distinct, with_term.distinct)
