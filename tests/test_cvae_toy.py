"""The bundled toy CVAE: conditioned through the toy CLIP, its samples follow the sentence."""

import json

import pytest
import torch

from clipxai.cli.commands import main
from clipxai.generators.cvae.checkpoint import BUNDLED, load_cvae
from clipxai.generators.cvae.sample import sample_images
from clipxai.models import load_clip


@pytest.fixture(scope="module")
def toy():
    return load_cvae("toy")


def redness(x):
    """Mean of R minus the mean of G and B over the whole image."""
    return float((x[:, 0] - (x[:, 1] + x[:, 2]) / 2).mean())


def blueness(x):
    return float((x[:, 2] - (x[:, 0] + x[:, 1]) / 2).mean())


def test_it_ships_small_and_names_the_bundled_toy_clip(toy):
    assert BUNDLED["toy"].stat().st_size < 3e6
    clip = toy.payload["conditioning"]["clip"]
    assert clip["name"] == "toy" and toy.conditioner.mode == "clip"
    assert clip["sha256"] == load_clip("toy", "cpu").sha256  # rebuild the CVAE when the toy CLIP changes


def test_samples_for_a_red_heart_are_redder_than_for_a_blue_square(toy):
    red = sample_images(toy, ["a red heart"], n=16, seed=0)
    blue = sample_images(toy, ["a blue square"], n=16, seed=0)  # the same z: only the sentence differs
    assert redness(red) > redness(blue) + 0.05
    assert blueness(blue) > blueness(red) + 0.05


def test_an_independent_toy_clip_recognises_the_samples(toy):
    judge = load_clip("toy-b", "cpu")
    texts = ["a red heart", "a blue square"]
    samples = sample_images(toy, texts, n=8, seed=1)
    with torch.no_grad():
        img = torch.nn.functional.normalize(judge.encode_image(samples), dim=-1)
        txt = torch.nn.functional.normalize(judge.encode_text(texts), dim=-1)
    sims = (img @ txt.T).view(2, 8, 2).mean(1)   # [sentence sampled, sentence judged]
    assert sims[0, 0] > sims[0, 1] and sims[1, 1] > sims[1, 0]


def test_ascend_with_the_bundled_cvae(tmp_path):
    code = main(["ascend", "a red heart", "--model", "toy", "--param", "cvae", "--cvae", "toy", "--steps", "4",
                 "--snapshot-every", "2", "--cutouts", "2", "--out", str(tmp_path), "--name", "toy", "--quiet"])
    assert code == 0
    manifest = json.loads((tmp_path / "toy" / "run.json").read_text())
    assert manifest["param"]["checkpoint"].endswith("toy.pt.xz") and manifest["arrays"]["latents"]["shape"][1:] == [16]
