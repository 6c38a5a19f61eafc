"""The toy VAE: ``clipxai toy train-vae`` (plumbing on a tiny config) and the shipped ``--vae toy`` weights."""

import json

import numpy as np
import pytest
import torch

import clipxai
from clipxai.cli.commands import main

diffusers = pytest.importorskip("diffusers")

TINY = dict(steps=2, batch_size=2, block_out_channels=(8, 16), norm_num_groups=4, heldout=4, calibration=4)


def test_train_vae_writes_a_diffusers_folder_that_ascends(tmp_path, tiny_clip):
    from clipxai.toy.train_vae import VAETrainConfig, train

    lines = []
    summary = train(VAETrainConfig(**TINY), tmp_path / "vae", log=lines.append)
    written = json.loads((tmp_path / "vae" / "training.json").read_text())
    assert written["train_config"]["steps"] == 2 and written["heldout_mse"] == summary["heldout_mse"] > 0
    assert lines[-1].startswith("held-out (4 images)")
    config = json.loads((tmp_path / "vae" / "config.json").read_text())
    # the measured factors are written into the diffusers config, where --param sdvae reads them
    assert config["scaling_factor"] == summary["scaling_factor"] != 0.18215
    assert config["shift_factor"] == summary["shift_factor"]
    [run] = clipxai.ascend("a red heart", model_obj=tiny_clip, param="sdvae", vae=str(tmp_path / "vae"),
                           out=str(tmp_path / "runs"), steps=1, cutouts=2, quiet=True, activations="none")
    assert run.status == "complete" and run.manifest["param"]["scaling_factor"] == pytest.approx(config["scaling_factor"])
    # the same recipe and seed give the same weights
    again = train(VAETrainConfig(**TINY), tmp_path / "again", log=lines.append)
    assert again["heldout_mse"] == summary["heldout_mse"]


def test_train_vae_takes_exactly_one_destination(tmp_path, capsys):
    assert main(["toy", "train-vae", "--steps", "1"]) == 2
    assert main(["toy", "train-vae", "--steps", "1", "--bundle", "--out", str(tmp_path / "x")]) == 2
    assert "exactly one of --out DIR or --bundle" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_shipped_toy_vae_reconstructs_the_world_far_better_than_a_random_one():
    from clipxai.generators.sdvae.load import load_vae
    from clipxai.toy.train_vae import BUNDLE_FILE, VAETrainConfig, build, heldout_images, load_bundle, reconstruction_error

    vae, info = load_vae("toy")
    _, record = load_bundle()
    assert BUNDLE_FILE.stat().st_size < 3e6 and len(info["sha256"]) == 64 and info["downsampling"] == 4
    config = VAETrainConfig(**{**record["train_config"], "heldout": 16,
                               "block_out_channels": tuple(record["train_config"]["block_out_channels"])})
    images = heldout_images(config)
    mse, psnr = reconstruction_error(vae, images)
    random_mse, _ = reconstruction_error(build(config).eval(), images)
    assert psnr > 20 and mse < random_mse / 10, (mse, random_mse)
    # the scaled latent that sdvae optimizes has about unit spread on world images
    with torch.no_grad():
        z = (vae.encode(images * 2 - 1).latent_dist.mean - info["shift_factor"]) * info["scaling_factor"]
    assert 0.7 < float(z.std()) < 1.4 and abs(float(z.mean())) < 0.3
    assert np.isfinite(record["heldout_psnr"]) and record["heldout_n"] == 128
