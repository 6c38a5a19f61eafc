"""Using a trained CVAE: sampling grids from sentences, and ascending with --param cvae."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import clipxai
from clipxai.cli.commands import main
from clipxai.errors import ClipxaiError
from clipxai.generators.cvae.checkpoint import load_cvae
from clipxai.generators.cvae.fixture import make_fixture
from clipxai.generators.cvae.sample import sample_images
from clipxai.generators.cvae.train import TrainConfig, train
from clipxai.models import random_clip, wrap_module
from clipxai.params import make_param

FAST = dict(quiet=True, cutouts=2, steps=6, snapshot_every=2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cvae-use")
    data = make_fixture(root / "fx", n=40, seed=0)
    cfg = TrainConfig(clip="random:tiny", size=16, width=4, zdim=6, cond_embed=8, batch_size=8, epochs=1)
    return train(data, root / "cvae", cfg, cache_dir=root / "cache").checkpoint


def gens(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


def test_sample_command_writes_a_grid_reproducibly(trained, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["cvae", "sample", str(trained), "a big red heart in the center", "-n", "4", "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    with Image.open(out) as im:
        first = np.asarray(im)
    assert first.shape == (2 + 2 * 18, 2 + 2 * 18, 3)  # 2x2 tiles of 16 px, 2 px apart
    assert main(["cvae", "sample", str(trained.parent), "a big red heart in the center", "-n", "4", "-o", str(out)]) == 0
    with Image.open(out) as im:
        assert np.array_equal(np.asarray(im), first)
    two = tmp_path / "two.png"
    assert main(["cvae", "sample", str(trained), "a red heart", "a blue square", "-n", "3", "-o", str(two)]) == 0
    with Image.open(two) as im:
        assert im.size == (2 + 3 * 18, 2 + 2 * 18)  # one row per sentence


def test_different_sentences_give_different_conditions_and_samples(trained):
    cvae = load_cvae(trained)
    c = cvae.conditions(["a big red heart in the center", "a small blue square on the left"])
    assert c.shape == (2, 64) and not torch.allclose(c[0], c[1])
    a = sample_images(cvae, ["a big red heart in the center"], n=2, seed=3)
    b = sample_images(cvae, ["a small blue square on the left"], n=2, seed=3)
    assert a.shape == (2, 3, 16, 16) and a.min() >= 0 and a.max() <= 1 and not torch.equal(a, b)


def test_a_conditioning_clip_with_other_weights_is_refused(trained):
    other = wrap_module(random_clip("tiny", seed=7), name="random:tiny")
    with pytest.raises(ClipxaiError, match="was conditioned on the CLIP 'random:tiny' with weights random-tiny"):
        load_cvae(trained).conditions(["a red heart"], clip=other)


@pytest.mark.parametrize("args, message", [
    (["/no/such/cvae.pt", "x"], "The CVAE checkpoint /no/such/cvae.pt does not exist"),
    (["{ckpt}", "  "], "The sentence to sample is empty"),
    (["{ckpt}", "x", "-n", "0"], "-n must be at least 1"),
])
def test_sample_bad_input_is_one_sentence(trained, tmp_path, capsys, args, message):
    args = [a.replace("{ckpt}", str(trained)) for a in args]
    assert main(["cvae", "sample", *args, "-o", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "g.png").exists()


def test_a_file_that_is_not_a_checkpoint_is_refused(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    assert main(["cvae", "sample", str(bad), "x"]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_the_parameterization_optimises_z_from_the_seed_generators(trained):
    p = make_param("cvae", batch=2, shape=(32, 32), device=torch.device("cpu"), generators=gens(0, 1),
                   cvae=str(trained), cvae_text="a big red heart in the center")
    q = make_param("cvae", batch=1, shape=(32, 32), device=torch.device("cpu"), generators=gens(1),
                   cvae=str(trained))
    assert len(p.params) == 1 and p.params[0].shape == (2, 6)
    assert torch.equal(p.latent()[1], torch.randn(6, generator=gens(1)[0]))  # seed 1's own draw
    assert torch.equal(q.latent()[0], p.latent()[1])
    image = p.image_fn()
    assert image.shape == (2, 3, 16, 16) and 0 <= image.min() and image.max() <= 1  # the CVAE's resolution
    assert p.info["kind"] == "cvae" and p.info["sha256"] == load_cvae(trained).sha256
    assert p.info["condition_text"] == "a big red heart in the center"
    assert q.info["condition_init"] == "training mean"
    # a few steps on a simple objective move z and change the image the way asked
    opt = torch.optim.Adam(p.params, lr=0.1)
    start = p.image_fn()[:, 0].mean().item()
    for _ in range(15):
        opt.zero_grad()
        (-p.image_fn()[:, 0].mean()).backward()
        opt.step()
    assert p.image_fn()[:, 0].mean().item() > start


def test_optimising_the_condition_starts_from_the_sentence(trained):
    cvae = load_cvae(trained)
    p = make_param("cvae", batch=2, shape=(16, 16), device=torch.device("cpu"), generators=gens(0, 1),
                   cvae=str(trained), cvae_text="a red heart", cvae_optimize_condition=True)
    z, c = p.params
    assert c.shape == (2, 64) and c.requires_grad
    torch.testing.assert_close(c.detach(), cvae.conditions(["a red heart"]).expand(2, -1))
    opt = torch.optim.Adam(p.params, lr=0.1)
    before = c.detach().clone()
    opt.zero_grad()
    (-p.image_fn().mean()).backward()
    opt.step()
    assert not torch.equal(c.detach(), before) and p.latent().shape == (2, 6)


def test_init_image_starts_from_the_posterior(trained, tmp_path):
    img = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "init.png")
    p = make_param("cvae", batch=1, shape=(16, 16), device=torch.device("cpu"), generators=gens(0),
                   cvae=str(trained), init_image=str(tmp_path / "init.png"), cvae_z_scale=0.0)
    cvae = load_cvae(trained)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    mu, _ = cvae.model.encode(x, cvae.payload["condition_mean"][None])
    torch.testing.assert_close(p.latent(), mu, atol=1e-5, rtol=1e-5)


def test_cvae_options_are_checked(trained):
    with pytest.raises(ClipxaiError, match="needs a trained CVAE: pass --cvae"):
        make_param("cvae", batch=1, shape=(16, 16), device=torch.device("cpu"), generators=gens(0))
    with pytest.raises(ClipxaiError, match="does not take the option"):
        make_param("cvae", batch=1, shape=(16, 16), device=torch.device("cpu"), generators=gens(0),
                   cvae=str(trained), vqgan="toy")


def test_ascend_with_the_cvae_records_z_and_raises_the_similarity(trained, tiny_clip, tmp_path):
    [run] = clipxai.ascend("a red heart", model_obj=tiny_clip, out=tmp_path / "runs", param="cvae",
                         param_options={"cvae": str(trained), "cvae_text": "a big red heart in the center"},
                         **{**FAST, "steps": 30, "snapshot_every": 10, "lr": 0.1, "cutouts": 0, "aug_noise": 0.0})
    assert run.status == "complete"
    assert run.latents.shape == (3, 6) and run.images.shape == (3, 3, 16, 16)
    manifest = json.loads((run.path / "run.json").read_text())
    assert manifest["param"]["checkpoint"] == str(trained) and manifest["param"]["kind"] == "cvae"
    sims = [m["sim/a red heart"] for m in run.metrics()]
    assert sims[-1] > sims[0] and not np.allclose(run.latents[0], run.latents[-1])


def test_ascend_command_takes_cvae(trained, tmp_path, capsys):
    code = main(["ascend", "a red heart", "--param", "cvae", "--cvae", str(trained), "--model", "random:tiny",
                 "--steps", "4", "--snapshot-every", "2", "--cutouts", "2", "--out", str(tmp_path / "runs"),
                 "--name", "cv", "--quiet"])
    assert code == 0
    manifest = json.loads((tmp_path / "runs" / "cv" / "run.json").read_text())
    assert manifest["param"]["zdim"] == 6 and manifest["status"] == "complete"
    assert main(["ascend", "x", "--param", "cvae", "--model", "random:tiny", "--steps", "2",
                 "--out", str(tmp_path / "runs"), "--quiet"]) == 2
    assert "needs a trained CVAE" in capsys.readouterr().err


def test_export_makes_a_small_sampling_copy(trained, tmp_path, capsys):
    out = tmp_path / "small.pt.xz"
    assert main(["cvae", "export", str(trained), str(out)]) == 0
    assert out.stat().st_size < trained.stat().st_size / 3
    small, full = load_cvae(out), load_cvae(trained)
    assert "optimizer" not in small.payload and small.payload["state_dict"]["decoder.0.weight"].dtype == torch.float16
    a = sample_images(small, ["a red heart"], n=2, seed=1)
    b = sample_images(full, ["a red heart"], n=2, seed=1)
    torch.testing.assert_close(a, b, atol=2e-2, rtol=0)


def test_cli_cvae_condition_starts_from_the_prompt_or_cvae_text(tmp_path, capsys):
    import json

    from clipxai.cli.commands import main

    base = ["--param", "cvae", "--cvae", "toy", "--model", "random:tiny", "--steps", "2", "--cutouts", "1",
            "--out", str(tmp_path), "--quiet"]
    assert main(["ascend", "a red heart:1|a blue square:-0.5", *base, "--name", "p"]) == 0
    assert json.loads((tmp_path / "p" / "run.json").read_text())["param"]["condition_text"] == "a red heart"
    assert main(["ascend", "❤️", *base, "--name", "t", "--cvae-text", "a gold ring", "--cvae-optimize-condition"]) == 0
    param = json.loads((tmp_path / "t" / "run.json").read_text())["param"]
    assert param["condition_text"] == "a gold ring"
    assert main(["ascend", "x", "--model", "random:tiny", "--steps", "1", "--out", str(tmp_path), "--quiet",
                 "--name", "pix"]) == 0  # pixels take no prompt option
