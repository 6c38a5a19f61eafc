"""The sdvae parameterization: the latent of a diffusers AutoencoderKL, built tiny and random in the test."""

import json

import numpy as np
import pytest
import torch
from helpers_runs import StopAt

import clipxai
from clipxai.cli.commands import main
from clipxai.errors import ClipxaiError

diffusers = pytest.importorskip("diffusers")

TINY = dict(block_out_channels=(8, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4,
            down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
            scaling_factor=0.5)
FAST = dict(steps=4, snapshot_every=1, cutouts=2, quiet=True, activations="none", lr=0.05)


@pytest.fixture(scope="module")
def vae_folder(tmp_path_factory):
    """A tiny random AutoencoderKL written as diffusers writes one (save_pretrained), 2x downsampling."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("vae") / "tiny-vae"
    diffusers.AutoencoderKL(**TINY).save_pretrained(folder)
    return folder


def test_an_ascent_in_the_latent_of_a_diffusers_folder(tiny_clip, tmp_path, vae_folder):
    [run] = clipxai.ascend("a red heart", model_obj=tiny_clip, param="sdvae", vae=str(vae_folder), out=str(tmp_path),
                           **FAST)
    assert run.status == "complete"
    param = json.loads((run.path / "run.json").read_text())["param"]
    assert param["kind"] == "sdvae" and param["downsampling"] == 2 and param["scaling_factor"] == 0.5
    assert run.config["param"]["options"]["vae"] == str(vae_folder)
    assert run.latents.shape == (4, 4, 16, 16) and run.images.shape == (4, 3, 32, 32)
    assert not np.array_equal(run.latents[0], run.latents[-1])
    images = run.images.astype(np.float32)
    assert images.min() >= 0 and images.max() <= 1


def test_a_safetensors_file_with_its_config_is_the_same_vae(tiny_clip, tmp_path, vae_folder):
    from safetensors.torch import save_file

    folder = tmp_path / "file"
    folder.mkdir()
    vae = diffusers.AutoencoderKL.from_pretrained(vae_folder)
    save_file(vae.state_dict(), folder / "vae.safetensors")
    (folder / "config.json").write_text((vae_folder / "config.json").read_text())
    runs = [clipxai.ascend("a red heart", model_obj=tiny_clip, param="sdvae", vae=source, out=str(tmp_path / name),
                           **{**FAST, "steps": 1})[0] for name, source in (("a", str(vae_folder)),
                                                                            ("b", str(folder / "vae.safetensors")))]
    np.testing.assert_array_equal(runs[0].images, runs[1].images)
    assert len(runs[1].manifest["param"]["sha256"]) == 64


@pytest.mark.parametrize("checkpoint", [False, True])
def test_a_resumed_sdvae_run_is_bit_identical(tiny_clip, tmp_path, vae_folder, checkpoint):
    options = dict(model_obj=tiny_clip, param="sdvae", vae=str(vae_folder), out=str(tmp_path),
                   param_options={"checkpoint_decoder": checkpoint}, **{**FAST, "steps": 6, "snapshot_every": 2})
    [full] = clipxai.ascend("a red heart", name="full", **options)
    [part] = clipxai.ascend("a red heart", name="part", callbacks=[StopAt(2)], **options)
    assert part.status == "interrupted"
    [resumed] = clipxai.ascend(resume=part.path, model_obj=tiny_clip, quiet=True)
    for name in ("images", "latents", "gradients"):
        np.testing.assert_array_equal(resumed.array(name), full.array(name))


def test_decoder_checkpointing_changes_memory_not_the_gradient(vae_folder):
    from clipxai.params import make_param

    grads = []
    for checkpoint in (False, True):
        p = make_param("sdvae", batch=2, shape=(32, 32), device=torch.device("cpu"), vae=str(vae_folder),
                       generators=[torch.Generator().manual_seed(s) for s in range(2)], checkpoint_decoder=checkpoint)
        p.image_fn().square().sum().backward()
        grads.append(p.params[0].grad)
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("args, words", [
    (["--size", "33", "32"], "must be a multiple of 2; --size 33 32 is not"),
    (["--vae", "random:huge"], "there is no random VAE 'huge'"),
    (["--vae", "nowhere/vae.bin"], "is neither toy, hf:ID, a diffusers folder"),
])
def test_bad_sizes_and_sources_are_one_sentence(tiny_clip_file, tmp_path, capsys, vae_folder, args, words):
    args = args if "--vae" in args else ["--vae", str(vae_folder), *args]
    out = tmp_path / "runs"
    code = main(["ascend", "x", "--model", str(tiny_clip_file), "--param", "sdvae", *args, "--steps", "3",
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1, err
    assert not out.exists()


def test_no_vae_and_a_missing_extra_are_one_sentence(monkeypatch, vae_folder):
    from clipxai.params import make_param
    from clipxai.util import extras

    def make(**options):
        return make_param("sdvae", batch=1, shape=(32, 32), device=torch.device("cpu"),
                          generators=[torch.Generator()], **options)
    with pytest.raises(ClipxaiError, match="needs a VAE: pass --vae"):
        make()
    monkeypatch.setattr(extras, "missing_modules", lambda extra: ["diffusers"])
    with pytest.raises(ClipxaiError, match=r"needs the 'sdvae' extra .*pip install 'clipxai\[sdvae\]'"):
        make(vae=str(vae_folder))


def test_random_configs_build_for_timing():
    from clipxai.generators.sdvae.load import load_vae

    vae, info = load_vae("random:tiny")
    again, _ = load_vae("random:tiny")
    assert info["downsampling"] == 2 and all(torch.equal(a, b) for a, b in zip(vae.parameters(), again.parameters()))


def test_sdvae_ascends_with_every_model_backend(tmp_path, tiny_clip_file, tiny_module, vae_folder):
    """OpenAI-layout file, open_clip folder, Hugging Face folder: the same tiny CLIP in each layout climbs the
    same latent path (the layouts are numerically the same model), so the VAE path is backend-blind."""
    pytest.importorskip("open_clip")
    pytest.importorskip("transformers")
    from clipxai.models.convert import write_hf_dir, write_openclip_dir

    sd = tiny_module.state_dict()
    sources = {"openai": str(tiny_clip_file), "openclip": f"openclip:{write_openclip_dir(sd, tmp_path / 'oc')}",
               "hf": f"hf:{write_hf_dir(sd, tmp_path / 'hf')}"}
    runs = {name: clipxai.ascend("a red heart", model=source, param="sdvae", vae=str(vae_folder),
                                 out=str(tmp_path / "runs"), name=name, **{**FAST, "steps": 2})[0]
            for name, source in sources.items()}
    for name, run in runs.items():
        assert run.status == "complete" and run.manifest["model"]["backend"] == name, name
        assert not np.array_equal(run.latents[0], run.latents[-1]), name
    for name in ("openclip", "hf"):
        np.testing.assert_allclose(runs[name].latents, runs["openai"].latents, atol=1e-4)
