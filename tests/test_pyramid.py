"""The pyramid parameterization (Direct Ascent Synthesis) and the das preset.

On the toy world the right colour is known: the das preset must get it (by the independent
judge) and be far less adversarial than plain pixel ascent without augmentation.
"""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import clipxai
from clipxai.cli.commands import main
from clipxai.errors import ClipxaiError
from clipxai.params import make_param
from clipxai.params.pyramid import ladder, parse_resolutions, upsampling_matrix


def _make(size=(32, 32), batch=2, **options):
    return make_param("pyramid", batch=batch, shape=size, device=torch.device("cpu"),
                      generators=[torch.Generator().manual_seed(s) for s in range(batch)], **options)


def test_the_ladder_runs_from_one_pixel_to_the_full_side():
    assert ladder(64) == [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
    assert ladder(224)[-3:] == [128, 192, 224]
    assert parse_resolutions("all", 5) == [1, 2, 3, 4, 5]
    assert parse_resolutions("16, 1,4", 32) == [1, 4, 16]
    assert parse_resolutions((1, 8), 32) == [1, 8]


def test_upsampling_as_a_matrix_is_bicubic_interpolation():
    x = torch.randn(2, 3, 6, 5)
    mh, mw = upsampling_matrix(6, 32), upsampling_matrix(5, 24)
    ref = F.interpolate(x, size=(32, 24), mode="bicubic", align_corners=False)
    assert (mh @ x @ mw.T - ref).abs().max() < 1e-5
    assert torch.equal(upsampling_matrix(1, 7) @ torch.ones(1, 1) * 3, torch.full((7, 1), 3.0))


def test_the_image_is_the_squashed_sum_of_every_level():
    p = _make(sigma=0.5)
    image = p.image_fn()
    assert image.shape == (2, 3, 32, 32) and 0 < image.min() and image.max() < 1
    assert [tuple(t.shape) for t in p.params] == [(2, 3, s, s) for s in p.info["resolutions"]]
    with torch.no_grad():
        raw = sum(F.interpolate(t, size=(32, 32), mode="bicubic", align_corners=False) if t.shape[-1] > 1
                  else t.expand(-1, -1, 32, 32) for t in p.params)
    assert (image - (torch.tanh(raw) + 1) / 2).abs().max() < 1e-5
    # A flat grey start by default, the same for every seed; sigma draws each seed its own.
    grey = _make().image_fn()
    assert torch.allclose(grey, torch.full_like(grey, 0.5))
    assert not torch.equal(image[0], image[1])
    for squash in ("sigmoid", "clip"):
        assert torch.allclose(_make(squash=squash, mean=0.3).image_fn(), torch.full((2, 3, 32, 32), 0.3), atol=1e-6)


def test_every_level_gets_a_gradient_and_the_coarse_ones_the_largest():
    p = _make(sigma=0.1)
    target = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    (p.image_fn() - target).pow(2).sum().backward()
    norms = [t.grad.abs().max().item() for t in p.params]
    assert all(n > 0 for n in norms) and norms[0] > norms[-1]


def test_latents_are_the_concatenated_levels_or_their_rms(tiny_clip, tmp_path):
    run = clipxai.ascend("a red heart", model_obj=tiny_clip, param="pyramid", steps=3, snapshot_every=1,
                         cutouts=2, out=str(tmp_path), quiet=True)[0]
    layout = run.manifest["param"]["latent_layout"]
    sides = run.manifest["param"]["resolutions"]
    assert layout["kind"] == "concatenated" and sides == ladder(32)
    assert run.latents.shape == (3, sum(3 * s * s for s in sides))
    assert layout["offsets"][1] == 3 and layout["shapes"][-1] == [3, 32, 32]
    assert not np.allclose(run.latents[0], run.latents[-1])
    # Every side from 1 to 32 (as DAS) is too many values to record: the RMS per level and channel.
    run = clipxai.ascend("a red heart", model_obj=tiny_clip, param="pyramid", param_options={"resolutions": "all"},
                         steps=2, snapshot_every=1, cutouts=2, out=str(tmp_path), quiet=True)[0]
    assert run.manifest["param"]["latent_layout"]["kind"] == "rms"
    assert run.latents.shape == (2, 32, 3)
    assert np.all(run.latents[-1] >= 0)


@pytest.mark.parametrize("option, words", [
    ("squash=cube", "squash='cube' is not one of tanh, sigmoid, clip"),
    ("resolutions=1,64", "between 1 and the image side 32"),
    ("resolutions=big", "neither auto, all, nor whole numbers"),
    ("sigma=-1", "sigma must not be negative"),
    ("mean=1.5", "mean must lie strictly between 0 and 1"),
    ("noise=0.1", "does not take the option(s) noise"),
])
def test_bad_pyramid_options_are_one_sentence(tiny_clip_file, tmp_path, capsys, option, words):
    code = main(["ascend", "x", "--model", str(tiny_clip_file), "--param", "pyramid", "-P", option,
                 "--steps", "1", "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1


@pytest.mark.parametrize("resolutions", [64, ["big"], [None]])
def test_resolutions_from_python_that_are_not_a_list_of_sides_are_one_sentence(resolutions):
    with pytest.raises(ClipxaiError, match="resolutions=.* is neither auto, all, nor a list of whole numbers"):
        _make(resolutions=resolutions)


def test_the_das_preset_is_recorded_with_its_recipe(tiny_clip, tmp_path):
    run = clipxai.ascend("a red heart", model_obj=tiny_clip, preset="das", steps=2, out=str(tmp_path), quiet=True)[0]
    config = json.loads((run.path / "run.json").read_text())["config"]
    assert config["preset"] == "das" and config["param"]["name"] == "pyramid"
    assert config["augment"]["cutouts"] == 32 and config["augment"]["cut_min"] == config["augment"]["cut_max"] == 0.67
    assert config["param"]["options"]["squash"] == "tanh"


def test_das_gets_the_planted_colours_right_and_is_far_less_adversarial_than_plain_pixels():
    # The planted colours are the hard ones: red and pink exist only as the heart and the mouth,
    # and the judge reads a flat pink field as purple. One seed, the das preset as it is.
    # 40 steps (was 80): measured on the toy (AMD EPYC, CPU) das judge and pixels 1.0 at both lengths, plain
    # judge 0.0, adversarial gap das 0.083 against plain 0.531 at 40 steps (0.084 against 0.628 at 80).
    from clipxai.models import load_clip
    from clipxai.toy import groundtruth

    model, judge = load_clip("toy", "cpu"), load_clip("toy-b", "cpu")
    conditions = {"plain": groundtruth.COLOUR_CONDITIONS["no augmentation"], **groundtruth.PYRAMID_CONDITION}
    plain, das = groundtruth.colour_check(model, judge, steps=40, seeds=1, colours=("red", "pink"), lr=0.1,
                                          conditions=conditions)
    measured = (plain, das)
    assert das.judge_agreement >= 0.9 and das.pixel_agreement >= 0.9, measured
    assert plain.judge_agreement <= 0.5, measured
    assert das.adversarial_gap < 0.5 * plain.adversarial_gap, measured
