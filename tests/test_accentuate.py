"""Feature accentuation (--accentuate IMAGE) and the style prompt (--style "TEXT[:W]")."""

import numpy as np
import pytest
import torch

import clipxai
from clipxai.cli.commands import main

FAST = dict(steps=12, snapshot_every=4, cutouts=2, quiet=True, lr=0.1, activations="none")


@pytest.fixture()
def start_image(tmp_path):
    """A natural-ish start: a toy-world image at 32x32 as a PNG."""
    from PIL import Image

    from clipxai.toy import world

    arr = np.asarray(world.generate(1, 3).images[0], dtype=np.float32).transpose(1, 2, 0)
    path = tmp_path / "start.png"
    Image.fromarray((np.clip(arr, 0, 1) * 255).astype(np.uint8)).resize((32, 32)).save(path)
    return path


def _distances(model, run, start: torch.Tensor, layer: str) -> tuple[float, float]:
    """(pixel RMS, relative activation distance at ``layer``) of the run's final image to the start."""
    from clipxai.terms.features import module_for

    final = torch.from_numpy(np.clip(run.images[-1].astype(np.float32), 0, 1))[None]
    name = module_for(model, layer)
    with torch.no_grad(), model.hooked([name]) as live:
        model.embed_images(torch.cat([final, start]))
    acts = live.outputs[name]
    return float((final - start).pow(2).mean().sqrt()), float((acts[0] - acts[1]).pow(2).sum() / acts[1].pow(2).sum())


def test_accentuated_images_stay_closer_to_their_start_than_a_plain_ascent_from_it(tiny_clip, tmp_path, start_image):
    from clipxai.prompts import load_image

    start = load_image(start_image, (32, 32))
    plain = clipxai.ascend("a red heart", model_obj=tiny_clip, init_image=str(start_image), out=str(tmp_path),
                           name="plain", **FAST)[0]
    accented = clipxai.ascend("a red heart", model_obj=tiny_clip, accentuate=str(start_image), accent_weight=5.0,
                              accent_layers="blocks.1", out=str(tmp_path), name="accent", **FAST)[0]
    # both start from the image itself
    np.testing.assert_allclose(plain.images[0].astype(np.float32), start[0].numpy(), atol=2e-3)
    np.testing.assert_array_equal(accented.images[0], plain.images[0])
    config = accented.manifest["config"]
    assert config["objective"]["accentuate"] == str(start_image) and config["param"]["options"]["init_image"] == str(start_image)
    assert "accent(blocks.1)" in accented.manifest["terms"]
    metrics = accented.metrics()
    assert metrics[0]["term/accent(blocks.1)"] < 1e-6 < metrics[-1]["term/accent(blocks.1)"]
    pixel_plain, act_plain = _distances(tiny_clip, plain, start, "blocks.1")
    pixel_accent, act_accent = _distances(tiny_clip, accented, start, "blocks.1")
    assert pixel_accent < pixel_plain and act_accent < act_plain, (pixel_plain, pixel_accent, act_plain, act_accent)


def test_the_style_prompt_is_its_own_term_apart_from_the_content_prompt(tiny_clip, tmp_path):
    run = clipxai.ascend("a red heart", model_obj=tiny_clip, style="an oil painting:0.5", out=str(tmp_path), **FAST)[0]
    assert run.manifest["config"]["objective"]["style"] == "an oil painting:0.5"
    assert "0.5*style(an oil painting)" in run.manifest["objective"]
    last = run.metrics()[-1]
    assert "term/style(an oil painting)" in last and "sim/a red heart" in last
    assert not any(k.startswith("sim/an oil") for k in last)   # the content prompt's similarity stays alone
    from clipxai.report.report import write_report

    write_report([run.path], output=tmp_path / "report.html")
    html = (tmp_path / "report.html").read_text()
    assert "The style prompt “an oil painting:0.5” was scored apart from the content prompt" in html


@pytest.mark.parametrize("args, words", [
    (["--accentuate", "nowhere.png"], "does not exist"),
    (["--accentuate", "{start}", "--param", "fourier"], "takes --param pixels"),
    (["--accentuate", "{start}", "--init-image", "other.png"], "leave --init-image out"),
    (["--accentuate", "{start}", "--accent-weight", "-1"], "--accent-weight must be a number that is not negative"),
    (["--accentuate", "{start}", "--accent-layers", "blocks.40"], "blocks.40"),
    (["--accent-weight", "2"], "apply to --accentuate IMAGE"),
    (["--style", " "], "--style is empty"),
])
def test_bad_accentuation_and_style_are_one_sentence(tiny_clip_file, tmp_path, capsys, start_image, args, words):
    args = [a.replace("{start}", str(start_image)) for a in args]
    out = tmp_path / "runs"
    code = main(["ascend", "x", "--model", str(tiny_clip_file), *args, "--steps", "3", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1, err
    assert not out.exists()


def test_ascend_help_lists_style_and_accentuation(capsys):
    assert main(["ascend", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(flag in out for flag in ("--style", "--accentuate", "--accent-weight", "--accent-layers"))
