"""Parameterization options reach their factory as declared: -P key=value, long-flag aliases, refusals."""

import json

import numpy as np
import pytest
import torch

from clipxai.ascent.config import resolve_config
from clipxai.cli.commands import main
from clipxai.errors import ClipxaiError
from clipxai.params import check_param_options, declared_options, list_params, make_param


def ascend(tmp_path, *args):
    return main(["ascend", *args, "--model", "random:tiny", "--out", str(tmp_path / "runs"), "--quiet"])


def nothing_created(tmp_path):
    return not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_every_parameterization_declares_its_options_as_keywords():
    for name in list_params():
        try:
            declared = declared_options(name)
        except ClipxaiError:  # an optional extra that is not installed
            continue
        assert declared, name
        assert all(p.default is not p.empty for p in declared.values()), name


@pytest.mark.parametrize("param, option", [("pixels", "vqgan"), ("pixels", "decay"), ("fourier", "tint"),
                                           ("fourier", "cvae_text"), ("vqgan", "sigma"), ("cvae", "clamp")])
def test_an_option_a_factory_does_not_declare_is_refused_for_every_parameterization(param, option):
    with pytest.raises(ClipxaiError, match=f"does not take the option.*{option}"):
        check_param_options(param, {option: "1"})


@pytest.mark.parametrize("args, words", [
    (["x", "--param", "pixels", "--vqgan-init", "noise", "--cvae-text", "hello"], "applies to --param vqgan only"),
    (["x", "--param", "pixels", "-P", "init=noise"], "does not take the option(s) init"),
    (["x", "--param", "fourier", "--init-tint", "0.2"], "--init-tint applies to --param pixels only"),
    (["x", "-P", "sigma"], "-P takes KEY=VALUE"),
    (["x", "-P", "sigma=lots"], "sigma='lots' is not a valid float"),
    (["x", "-P", "clamp=maybe"], "clamp='maybe' is not a valid bool"),
    (["x", "--sigma", "-1"], "--sigma must not be negative"),
    (["x", "-P", "sigma=nan"], "sigma='nan' must be a finite number"),
    (["x", "-P", "mean=-inf"], "mean='-inf' must be a finite number"),
    (["x", "--param", "fourier", "-P", "decay=inf"], "decay='inf' must be a finite number"),
    (["x", "--sigma", "nan"], "sigma=nan must be a finite number"),
])
def test_bad_parameterization_options_are_one_sentence_exit_2_and_create_nothing(tmp_path, capsys, args, words):
    assert ascend(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert nothing_created(tmp_path)


def test_param_option_strings_become_the_declared_types_and_are_recorded(tmp_path):
    assert ascend(tmp_path, "x", "--steps", "2", "-P", "sigma=0.3", "-P", "clamp=false", "-P", "mean=0.25",
                  "--name", "p") == 0
    manifest = json.loads((tmp_path / "runs" / "p" / "run.json").read_text())
    assert manifest["config"]["param"] == {"name": "pixels", "options": {"mean": 0.25, "sigma": 0.3, "clamp": False}}
    assert manifest["param"]["sigma"] == 0.3 and manifest["param"]["clamp"] is False


def test_long_flags_are_aliases_of_the_param_options():
    flags = resolve_config("x", {"sigma": 0.3, "init_mean": 0.2, "init_tint": 0.1, "clamp": False})
    generic = resolve_config("x", {"param_options": {"sigma": "0.3", "mean": "0.2", "tint": "0.1", "clamp": "no"}})
    assert flags.param == generic.param
    assert flags.param.options == {"mean": 0.2, "sigma": 0.3, "clamp": False, "tint": 0.1}


def test_presets_give_defaults_per_parameterization():
    assert resolve_config("x", {}).param.options == {"mean": 0.5, "sigma": 0.1, "clamp": True}
    assert resolve_config("x", {"param": "fourier"}).param.options == {"sigma": 0.1}
    assert resolve_config("x", {"preset": "zer0int"}).param.options == {"mean": 0.0, "sigma": 0.01, "clamp": False}


def test_unknown_ascend_keyword_suggests_the_right_one():
    with pytest.raises(ClipxaiError, match="step \\(did you mean steps\\?\\)"):
        resolve_config("x", {"step": 3})


def test_pixels_start_from_an_init_image_png_or_raw_npy(tmp_path):
    from PIL import Image
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[:, :8] = (255, 0, 0)
    Image.fromarray(rgb).save(tmp_path / "start.png")
    gens = [torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)]
    p = make_param("pixels", batch=2, shape=(16, 16), device=torch.device("cpu"), generators=gens,
                   init_image=str(tmp_path / "start.png"))
    image = p.image_fn().detach()
    assert torch.equal(image[0], image[1])  # every seed starts from the image
    assert image[0, 0, :, :8].min() == 1.0 and image[0, 1:, :, :8].max() == 0.0
    raw = np.random.default_rng(0).normal(0, 0.01, (1, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "start.npy", raw)
    q = make_param("pixels", batch=1, shape=(16, 16), device=torch.device("cpu"), generators=gens[:1],
                   init_image=str(tmp_path / "start.npy"))
    assert torch.equal(q.image_fn().detach(), torch.from_numpy(raw))  # used exactly as it is


@pytest.mark.parametrize("array, words", [
    (np.zeros((3, 16, 16), np.int64), "must be a float array"),
    (np.zeros((16, 16), np.float32), "must be [3,H,W] or [1,3,H,W]"),
    (np.zeros((3, 8, 8), np.float32), "pass --size 8 8"),
    (np.full((3, 32, 32), np.nan, np.float32), "NaN"),
])
def test_bad_npy_init_images_are_one_sentence(tmp_path, capsys, array, words):
    np.save(tmp_path / "bad.npy", array)
    assert ascend(tmp_path, "x", "--init-image", str(tmp_path / "bad.npy")) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert nothing_created(tmp_path)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_number_that_is_not_finite_from_python_is_refused_naming_the_option(value):
    with pytest.raises(ClipxaiError, match="pixels option sigma=.* must be a finite number"):
        check_param_options("pixels", {"sigma": value})


def test_sizes_are_width_height_and_shapes_height_width():
    """--size W H reaches a factory as ctx.shape (height, width); ctx.size still answers, with a warning."""
    import warnings

    from clipxai.params.base import ParamContext

    ctx = ParamContext(1, (24, 40), torch.device("cpu"), [torch.Generator().manual_seed(0)])
    assert (ctx.height, ctx.width) == (24, 40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert ctx.size == (24, 40)
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    p = make_param("pixels", batch=1, shape=(24, 40), device=torch.device("cpu"),
                   generators=[torch.Generator().manual_seed(0)])
    assert tuple(p.image_fn().shape) == (1, 3, 24, 40)
