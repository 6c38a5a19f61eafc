"""VQGAN latents: loading taming-transformers releases, the vqgan parameterization, the bundled toy."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from clipxai.errors import ClipxaiError, ModelLoadError

needs_taming = pytest.mark.skipif(importlib.util.find_spec("taming") is None,
                                  reason='needs the vqgan extra (pip install -e ".[vqgan]")')
pytestmark = needs_taming

# A small first stage with the structure of the official ones (res blocks, attention, f4).
TINY_DD = dict(double_z=False, z_channels=32, resolution=32, in_channels=3, out_ch=3, ch=32,
               ch_mult=[1, 1, 2], num_res_blocks=1, attn_resolutions=[8], dropout=0.0)
PROMPT = "a red square"


class ModelCheckpoint:
    """Stands for the Lightning callback class that official checkpoints pickle by reference."""


class ReleaseLayout(nn.Module):
    """What taming's VQModel / GumbelVQ holds, loss included, built from taming's own classes."""

    def __init__(self, kind: str, n_embed: int, embed_dim: int, dd: dict):
        super().__init__()
        from taming.modules.diffusionmodules.model import Decoder, Encoder
        from taming.modules.vqvae.quantize import GumbelQuantize, VectorQuantizer2

        self.encoder = Encoder(**dd)
        self.decoder = Decoder(**dd)
        if kind == "gumbel":
            self.quantize = GumbelQuantize(dd["z_channels"], embed_dim, n_embed=n_embed)
        else:
            self.quantize = VectorQuantizer2(n_embed, embed_dim, beta=0.25)
        self.quant_conv = nn.Conv2d(dd["z_channels"], embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, dd["z_channels"], 1)
        self.loss = nn.Module()  # the LPIPS + discriminator weights the loader must drop
        self.loss.discriminator = nn.Sequential(nn.Conv2d(3, 8, 4, 2, 1), nn.Conv2d(8, 1, 4))


def write_release(folder: Path, kind: str = "vq", n_embed: int = 64, embed_dim: int = 32, seed: int = 0,
                  dd: dict | None = None, yaml_n_embed: int | None = None, lightning: bool = True,
                  stem: str = "model"):
    """Save a random first stage as (yaml, Lightning-style ckpt) the way the releases are laid out."""
    import yaml

    dd = dict(dd or TINY_DD)
    torch.manual_seed(seed)
    ref = ReleaseLayout(kind, n_embed, embed_dim, dd)
    with torch.no_grad():  # trained codebooks are spread out; taming initialises them at +-1/n
        (ref.quantize.embed if kind == "gumbel" else ref.quantize.embedding).weight.normal_()
    params = {"embed_dim": embed_dim, "n_embed": yaml_n_embed or n_embed, "monitor": "val/rec_loss",
              "ddconfig": dict(TINY_DD),
              "lossconfig": {"target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
                             "params": {"disc_conditional": False, "disc_in_channels": 3, "disc_start": 0,
                                        "disc_weight": 0.75, "codebook_weight": 1.0}}}
    target = "taming.models.vqgan.VQModel"
    if kind == "gumbel":
        target = "taming.models.vqgan.GumbelVQ"
        params["kl_weight"] = 1e-8
        params["temperature_scheduler_config"] = {
            "target": "taming.lr_scheduler.LambdaWarmUpCosineScheduler",
            "params": {"warm_up_steps": 0, "max_decay_steps": 1000001, "lr_start": 0.9, "lr_max": 0.9,
                       "lr_min": 1e-6}}
    folder.mkdir(parents=True, exist_ok=True)
    yaml_path, ckpt_path = folder / f"{stem}.yaml", folder / f"{stem}.ckpt"
    yaml_path.write_text(yaml.safe_dump({"model": {"base_learning_rate": 4.5e-6, "target": target,
                                                   "params": params}}))
    ckpt = {"state_dict": ref.state_dict()}
    if lightning:
        ckpt.update({"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "1.0.8",
                     "callbacks": {ModelCheckpoint: {"best_model_score": torch.tensor(0.1), "best_model_path": "x"}},
                     "optimizer_states": [{"state": {}, "param_groups": []}], "lr_schedulers": []})
    torch.save(ckpt, ckpt_path)
    return yaml_path, ckpt_path, ref


@pytest.fixture(autouse=True)
def _fresh_cache():
    from clipxai.generators.vqgan import clear_cache
    clear_cache()
    yield
    clear_cache()


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return write_release(tmp_path_factory.mktemp("release"))


def _param(release, batch=1, size=(32, 32), seed=0, **options):
    from clipxai.params import make_param

    gens = [torch.Generator().manual_seed(seed + i) for i in range(batch)]
    return make_param("vqgan", batch=batch, shape=size, device=torch.device("cpu"), generators=gens,
                      vqgan_config=str(release[0]), vqgan_checkpoint=str(release[1]), **options)


def _one_sentence(err: Exception, *must_contain: str) -> None:
    msg = str(err)
    assert "\n" not in msg and msg.endswith((".", ")", "`")), msg
    for part in must_contain:
        assert part in msg, (part, msg)


# ---------------------------------------------------------------------------------------
# Loading releases

@pytest.mark.parametrize("kind,lightning,how", [("vq", True, "weights_only+placeholders"),
                                                ("gumbel", True, "weights_only+placeholders"),
                                                ("vq", False, "weights_only")])
def test_release_loads_strictly_without_loss_or_lightning_pickles(tmp_path, kind, lightning, how):
    from clipxai.generators.vqgan import load_vqgan

    yaml_path, ckpt_path, ref = write_release(tmp_path, kind=kind, lightning=lightning)
    loaded = load_vqgan(config=yaml_path, checkpoint=ckpt_path)
    expected = {k: v for k, v in ref.state_dict().items() if not k.startswith("loss.")}
    got = loaded.module.state_dict()
    assert set(got) == set(expected) and len(expected) < len(ref.state_dict())
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    z = torch.randn(2, 32, 4, 4)
    with torch.no_grad():
        assert torch.allclose(loaded.module.decode(z), ref.decoder(ref.post_quant_conv(z)))
    info = loaded.info
    assert info["checkpoint_sha256"] == hashlib.sha256(ckpt_path.read_bytes()).hexdigest()
    assert (info["embed_dim"], info["n_embed"], info["factor"], info["checkpoint_read"]) == (32, 64, 4, how)
    assert info["config"] == str(yaml_path.resolve()) and info["checkpoint"] == str(ckpt_path.resolve())
    assert not any(p.requires_grad for p in loaded.module.parameters())


def test_gumbel_encoding_is_deterministic_and_made_of_codes(tmp_path):
    from clipxai.generators.vqgan import load_vqgan

    model = load_vqgan(config=write_release(tmp_path, kind="gumbel")[0], checkpoint=tmp_path / "model.ckpt").module
    x = torch.rand(2, 3, 32, 32)
    z1, z2 = model.encode(x), model.encode(x)
    assert torch.equal(z1, z2) and z1.shape == (2, 32, 8, 8)
    assert torch.equal(model.embed_codes(model.nearest_codes(z1)), z1)


def test_only_an_unreadable_pickle_is_unpickled_in_full_with_a_warning(tmp_path):
    import argparse

    from clipxai.generators.vqgan import load_vqgan

    yaml_path, ckpt_path, ref = write_release(tmp_path)
    # An old (non-zip) file whose bookkeeping weights-only loading refuses and cannot list.
    torch.save({"state_dict": ref.state_dict(), "hparams": argparse.Namespace(lr=1.0)}, ckpt_path,
               _use_new_zipfile_serialization=False)
    with pytest.warns(UserWarning, match="checkpoints you trust"):
        loaded = load_vqgan(config=yaml_path, checkpoint=ckpt_path)
    assert loaded.info["checkpoint_read"] == "full unpickling"
    assert torch.equal(loaded.module.codebook, ref.quantize.embedding.weight)


@pytest.mark.parametrize("case", ["n_embed", "architecture"])
def test_checkpoint_that_does_not_fit_its_yaml_names_both_files(tmp_path, case):
    from clipxai.generators.vqgan import load_vqgan

    if case == "n_embed":
        yaml_path, ckpt_path, _ = write_release(tmp_path, yaml_n_embed=128)
    else:
        yaml_path, _, _ = write_release(tmp_path / "a")
        _, ckpt_path, _ = write_release(tmp_path / "b", dd={**TINY_DD, "ch_mult": [1, 2, 2]})
    with pytest.raises(ModelLoadError) as info:
        load_vqgan(config=yaml_path, checkpoint=ckpt_path)
    _one_sentence(info.value, str(yaml_path), str(ckpt_path), "does not fit")


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize("damage,which,phrase", [
    (lambda y, c: y.unlink(), "yaml", "does not exist"),
    (lambda y, c: c.unlink(), "ckpt", "does not exist"),
    (lambda y, c: y.write_text("model: [unclosed"), "yaml", "not valid YAML"),
    (lambda y, c: y.write_text("steps: 3\n"), "yaml", "not a taming-transformers model config"),
    (lambda y, c: y.write_text(y.read_text().replace("taming.models.vqgan.VQModel",
                                                     "taming.models.cond_transformer.Net2NetTransformer")),
     "yaml", "supported are"),
    (lambda y, c: _truncate(c), "ckpt", "could not be read"),
    (lambda y, c: c.write_text("not a checkpoint"), "ckpt", "could not be read"),
    (lambda y, c: c.write_bytes(b""), "ckpt", "is empty"),
    (lambda y, c: torch.save({"epoch": 3}, c), "ckpt", "holds no state_dict"),
])
def test_bad_files_give_one_sentence(tmp_path, damage, which, phrase):
    from clipxai.generators.vqgan import load_vqgan

    yaml_path, ckpt_path, _ = write_release(tmp_path)
    damage(yaml_path, ckpt_path)
    with pytest.raises(ModelLoadError) as info:
        load_vqgan(config=yaml_path, checkpoint=ckpt_path)
    _one_sentence(info.value, str(yaml_path if which == "yaml" else ckpt_path), phrase)


def test_one_file_finds_its_sibling_and_none_is_a_clear_error(tmp_path):
    from clipxai.generators.vqgan import load_vqgan

    yaml_path, ckpt_path, _ = write_release(tmp_path, stem="vqgan_imagenet_f16_16384")
    assert load_vqgan(checkpoint=ckpt_path).info["config"] == str(yaml_path.resolve())
    assert load_vqgan(config=yaml_path).info["checkpoint"] == str(ckpt_path.resolve())
    with pytest.raises(ModelLoadError, match="--vqgan toy"):
        load_vqgan()
    with pytest.raises(ModelLoadError, match="not a bundled VQGAN"):
        load_vqgan("imagenet")


def test_missing_extra_says_how_to_install(monkeypatch, release):
    from clipxai.params import make_param

    for name in [m for m in sys.modules if m == "taming" or m.startswith("taming.")] + ["taming"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ClipxaiError) as info:
        make_param("vqgan", batch=1, shape=(32, 32), device=torch.device("cpu"),
                   generators=[torch.Generator()], vqgan_config=str(release[0]), vqgan_checkpoint=str(release[1]))
    _one_sentence(info.value, 'pip install -e ".[vqgan]"')


# ---------------------------------------------------------------------------------------
# The parameterization

def test_snap_is_nearest_code_with_straight_through_gradient(release):
    from clipxai.generators.vqgan import load_vqgan

    model = load_vqgan(config=release[0], checkpoint=release[1]).module
    z = (torch.randn(2, 32, 8, 8) * 0.7).requires_grad_(True)
    snapped = model.snap(z)
    flat = z.detach().movedim(1, -1).reshape(-1, 32)
    nearest = model.codebook[torch.cdist(flat, model.codebook).argmin(1)]
    assert torch.allclose(snapped.detach().movedim(1, -1).reshape(-1, 32), nearest, atol=1e-6)
    model.decode(snapped).square().mean().backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_image_fn_gradient_flows_through_clamp_to_z(release):
    p = _param(release, batch=2)
    image = p.image_fn()
    assert image.shape == (2, 3, 32, 32) and image.min() >= 0 and image.max() <= 1
    image.sum().backward()
    assert p.params[0].grad.abs().sum(dim=(1, 2, 3)).min() > 0  # every seed's z gets a gradient


def test_inits_codes_noise_image(release, tmp_path):
    from clipxai.ascent.recorder import save_png

    codes = _param(release, batch=2).latent()
    book = _param(release).info  # same model: factor 4, 32 x 8 x 8 latents
    assert codes.shape == (2, 32, 8, 8) and book["latent_shape"] == [32, 8, 8]
    model_codebook = _codebook(release)
    assert _distance_to_codebook(codes, model_codebook).max() < 1e-5       # every position is a code
    assert not torch.equal(codes[0], codes[1])                              # seeds differ
    assert torch.equal(codes, _param(release, batch=2).latent())            # same seeds, same start
    noise = _param(release, batch=2, init="noise").latent()
    assert _distance_to_codebook(noise, model_codebook).min() > 1e-3
    assert abs(noise.std().item() - model_codebook.std().item()) < 0.2
    save_png(torch.rand(3, 40, 48), tmp_path / "init.png")
    image = _param(release, batch=2, init_image=str(tmp_path / "init.png"))
    z = image.latent()
    assert image.info["init"] == "image" and torch.equal(z[0], z[1])
    assert _distance_to_codebook(z, model_codebook).max() < 1e-5


def _codebook(release) -> torch.Tensor:
    from clipxai.generators.vqgan import load_vqgan
    return load_vqgan(config=release[0], checkpoint=release[1]).module.codebook


def _distance_to_codebook(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    flat = z.movedim(1, -1).reshape(-1, z.shape[1])
    return torch.cdist(flat, codebook, compute_mode="donot_use_mm_for_euclid_dist").min(1).values


def test_noise_factor_is_seeded_noise_that_depends_only_on_z(release, tmp_path):
    from clipxai.ascent.recorder import save_png

    save_png(torch.rand(3, 32, 32), tmp_path / "init.png")
    common = dict(batch=2, init_image=str(tmp_path / "init.png"), quantize=False, z_clamp=False)
    plain = _param(release, **common).image_fn().detach()
    noisy = _param(release, noise_factor=0.5, **common)
    a, b = noisy.image_fn().detach(), noisy.image_fn().detach()
    assert torch.equal(plain[0], plain[1])                     # identical z, no noise: identical images
    assert torch.equal(a, b)                                   # same z: same noise (snapshots, resume)
    assert not torch.equal(a[0], a[1])                         # each seed draws its own noise
    assert (a - plain).abs().mean() > 1e-3
    with torch.no_grad():
        noisy.params[0].add_(1e-3)
    assert not torch.equal(noisy.image_fn().detach(), a)       # a new z (an optimizer step): new noise


def test_size_must_be_a_multiple_of_the_factor(release):
    with pytest.raises(ClipxaiError) as info:
        _param(release, size=(30, 32))
    _one_sentence(info.value, "factor 4", "--size 32 28")


def test_unknown_options_and_bad_init_are_refused(release):
    with pytest.raises(ClipxaiError, match="does not take the option"):
        _param(release, cvae="x.pt")
    with pytest.raises(ClipxaiError, match="not one of"):
        _param(release, init="zeros")


# ---------------------------------------------------------------------------------------
# Through the engine and the CLI

def test_ascent_raises_similarity_and_records_z(release, tiny_clip, tmp_path):
    import clipxai

    [run] = clipxai.ascend(PROMPT, param="vqgan", model_obj=tiny_clip, size=(32, 32), out=str(tmp_path), quiet=True,
                         param_options={"vqgan_config": str(release[0]), "vqgan_checkpoint": str(release[1])},
                         steps=40, lr=0.2, cutouts=0, aug_noise=0.0, seed=0, snapshot_every=10)
    sims = [m[f"sim/{PROMPT}"] for m in run.metrics()]
    assert np.mean(sims[-5:]) > np.mean(sims[:5]) + 0.02
    assert run.latents.shape == (4, 32, 8, 8) and run.images.shape == (4, 3, 32, 32)
    assert 0 <= run.images.min() and run.images.max() <= 1
    param = json.loads((run.path / "run.json").read_text())["param"]
    assert param["kind"] == "vqgan" and param["factor"] == 4 and param["n_embed"] == 64
    assert param["checkpoint_sha256"] == hashlib.sha256(release[1].read_bytes()).hexdigest()


def test_cli_ascend_with_vqgan_files(release, tiny_clip_file, tmp_path, capsys):
    from clipxai.cli.commands import main

    args = ["ascend", PROMPT, "--param", "vqgan", "--vqgan-config", str(release[0]),
            "--vqgan-checkpoint", str(release[1]), "--model", str(tiny_clip_file), "--steps", "2",
            "--out", str(tmp_path), "--quiet", "--noise-factor", "0.1", "--cutouts", "2"]
    assert main(args + ["--size", "32", "32"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and Path(out[-1]).is_dir() and (Path(out[-1]) / "final.png").is_file()
    assert main(args + ["--size", "30", "32", "--name", "bad"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and "factor 4" in captured.err
    assert main(args + ["--size", "32", "32", "--name", "knobs", "--vqgan-init", "noise", "--no-vqgan-quantize"]) == 0
    param = json.loads((tmp_path / "knobs" / "run.json").read_text())["param"]
    assert param["init"] == "noise" and param["quantize"] is False


# ---------------------------------------------------------------------------------------
# The bundled toy VQGAN

def test_bundled_toy_reconstructs_held_out_images_with_its_recorded_error():
    from clipxai.generators.vqgan import BUNDLED, load_vqgan
    from clipxai.toy.train_vqgan import VQTrainConfig, heldout_images, reconstruction_error

    loaded = load_vqgan("toy")
    assert loaded.info["vqgan"] == "toy" and loaded.info["checkpoint_read"] == "weights_only"
    record = torch.load(BUNDLED["toy"][1], map_location="cpu", weights_only=True)["clipxai"]
    config = VQTrainConfig(**record["train_config"])
    images = heldout_images(config)
    mse, psnr = reconstruction_error(loaded.module, images)
    # The same held-out stream; the tolerance leaves the world's renderer room to change its
    # draw order without retraining, while a broken load or decoder is far off.
    assert math.isclose(mse, record["heldout_mse"], rel_tol=0.25)
    baseline = ((images - images.mean(dim=(0, 2, 3), keepdim=True)) ** 2).mean().item()  # one flat colour: ~12 dB
    assert psnr > 20 and mse < baseline / 5


def test_toy_loading_prints_nothing_and_needs_no_lightning():
    code = (
        "import sys, torch\n"
        "from clipxai.params import make_param\n"
        "p = make_param('vqgan', batch=1, shape=(64, 64), device=torch.device('cpu'),\n"
        "               generators=[torch.Generator()], vqgan='toy', noise_factor=0.1)\n"
        "p.image_fn().sum().backward()\n"
        "roots = ('pytorch_lightning', 'lightning', 'taming.models', 'taming.main')\n"
        "bad = [m for m in sys.modules if any(m == r or m.startswith(r + '.') for r in roots)]\n"
        "sys.stderr.write('imported: %s' % bad)\n"
    )
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "imported: []" in proc.stderr


# ---------------------------------------------------------------------------------------
# The notebook knobs

def test_notebook_knobs_give_the_documented_objective(tiny_clip):
    from clipxai.ascent.config import resolve_config
    from clipxai.ascent.run import build_objective
    from clipxai.generators.vqgan.knobs import KNOBS, notebook_options
    from clipxai.prompts import encode_prompts, parse_prompts
    from clipxai.terms.base import Step

    runs = notebook_options(["a mountain: at sunset", "a lake"], exclude="watermark, blurry", extras="",
                            learning_rate=0.5, batch_size=2, wd=0.1, noise_factor=0.22, total_iter=110,
                            show_step=10, im_shape=[225, 400, 3], num_crops=32)
    assert len(runs) == 2
    options = dict(runs[0])
    prompt = options.pop("prompt")
    cfg = resolve_config(prompt, options)
    assert (cfg.optim.lr, cfg.optim.optimizer, cfg.optim.weight_decay, cfg.seeds, cfg.augment.cutouts,
            cfg.optim.steps, cfg.record.snapshot_every) == (0.5, "adamw", 0.1, 2, 32, 110, 10)
    assert cfg.size == (400, 224) and math.isclose(cfg.augment.noise, 0.22 / math.sqrt(3))
    assert cfg.param.name == "vqgan" and cfg.param.options["quantize"] is False

    prompts = encode_prompts(tiny_clip, parse_prompts(cfg.prompt))
    objective = build_objective(cfg, prompts)
    assert [(w, n) for w, n, _ in objective.parts] == [(1.0, "cosine(a mountain: at sunset)"),
                                                       (-0.5, "cosine(watermark, blurry)")]
    # The notebook's loss: -alpha * cos(include) + beta * cos(exclude), averaged over crops.
    embeds = torch.nn.functional.normalize(torch.randn(1, 32, tiny_clip.embed_dim), dim=-1)
    step = Step(index=0, image=torch.zeros(1, 3, 32, 32), views=torch.zeros(32, 3, 32, 32), features=embeds,
                embeds=embeds, prompts=prompts, model=tiny_clip, param=None)
    total, _ = objective(step)
    include, exclude = (p.embedding for p in prompts)
    notebook_loss = (-1.0 * (embeds[0] @ include) + 0.5 * (embeds[0] @ exclude)).mean()
    assert torch.allclose(-total[0], notebook_loss, atol=1e-6)

    doc = (Path(__file__).resolve().parent.parent / "docs" / "vqgan.md").read_text()
    for knob, option in KNOBS.items():
        flag = "--" + option.replace("_", "-") if option != "prompt" else "PROMPT"
        assert any(f"`{knob}`" in line and flag in line for line in doc.splitlines()), (knob, flag)
