"""Weight files: .safetensors and .pt of the same weights run bit for bit alike; layouts are read from keys."""

import json
import shutil

import numpy as np
import pytest
import torch

import clipxai
from clipxai.errors import ModelLoadError
from clipxai.models import load_clip, wrap_module
from clipxai.models.weights import layout

safetensors_torch = pytest.importorskip("safetensors.torch")


def _first(x):
    return x[0] if isinstance(x, list) else x


@pytest.fixture()
def tiny_safetensors(tmp_path, tiny_module):
    path = tmp_path / "tiny-clip.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in tiny_module.state_dict().items()}, str(path))
    return path


def test_safetensors_and_pt_give_bit_identical_runs(tmp_path, tiny_clip_file, tiny_safetensors):
    a, b = load_clip(str(tiny_clip_file), "cpu"), load_clip(str(tiny_safetensors), "cpu")
    assert (a.backend, b.backend) == ("openai", "openai") and a.sha256 != b.sha256  # each file's own hash
    runs = [_first(clipxai.ascend("a red heart", model_obj=m, steps=10, cutouts=2, quiet=True,
                                  out=str(tmp_path / "runs"), name=name, snapshot_every=2))
            for m, name in ((a, "pt"), (b, "safetensors"))]
    for array in ("images", "embeddings", "latents", "gradients"):
        assert np.array_equal(runs[0].array(array), runs[1].array(array)), array
    strip = [[{k: v for k, v in r.items() if k != "time"} for r in run.metrics()] for run in runs]
    assert strip[0] == strip[1]
    assert runs[1].manifest["model"]["sha256"] == b.sha256


def test_hf_layout_safetensors_without_config_is_read_as_hf(tmp_path, tiny_module):
    pytest.importorskip("transformers")
    from clipxai.models.convert import openai_to_hf
    _, weights = openai_to_hf(tiny_module.state_dict())
    path = tmp_path / "hf-layout.safetensors"
    safetensors_torch.save_file(weights, str(path))
    assert layout(weights) == "hf"
    m = load_clip(str(path), "cpu")
    ref = wrap_module(tiny_module, device="cpu")
    x = torch.rand(2, 3, 32, 32)
    assert m.backend == "hf" and m.hook_points() == ["vision_model.encoder.layers.0", "vision_model.encoder.layers.1"]
    with torch.no_grad():
        assert (m.encode_image(x) - ref.encode_image(x)).abs().max() < 1e-5
    assert (m.encode_text(["a red heart"]) - ref.encode_text(["a red heart"])).abs().max() < 1e-5


def test_model_folders_need_no_prefix(tmp_path, tiny_module):
    pytest.importorskip("open_clip")
    from clipxai.models.convert import write_openclip_dir
    folder = write_openclip_dir(tiny_module.state_dict(), tmp_path / "oc")
    assert load_clip(str(folder), "cpu").backend == "openclip"
    shutil.copy(folder / "open_clip_model.safetensors", tmp_path / "loose.safetensors")
    assert load_clip(str(tmp_path / "loose.safetensors"), "cpu").backend == "openai"  # ViT keys are OpenAI's


@pytest.mark.parametrize("content, message", [
    ("keys", "neither OpenAI-format nor Hugging Face CLIP weights"),
    ("truncated", "could not be read as safetensors"),
    ("empty", "is empty"),
])
def test_bad_safetensors_files_are_one_sentence(tmp_path, tiny_safetensors, content, message):
    path = tmp_path / "bad.safetensors"
    if content == "keys":
        safetensors_torch.save_file({"weight": torch.zeros(3)}, str(path))
    elif content == "truncated":
        path.write_bytes(tiny_safetensors.read_bytes()[:4000])
    else:
        path.write_bytes(b"")
    with pytest.raises(ModelLoadError, match=message) as info:
        load_clip(str(path), "cpu")
    assert "\n" not in str(info.value)


def test_siglip_weights_alone_ask_for_their_folder(tmp_path):
    path = tmp_path / "siglip.safetensors"
    safetensors_torch.save_file({"vision_model.head.probe": torch.zeros(1, 1, 4),
                                 "text_model.head.weight": torch.zeros(4, 4)}, str(path))
    with pytest.raises(ModelLoadError, match="SigLIP weights.*hf:DIR"):
        load_clip(str(path), "cpu")
    assert json.loads(json.dumps(layout({"vision_model.head.probe": 0, "text_model.x": 0}))) == "hf-siglip"
