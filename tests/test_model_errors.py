"""A model that is not on this machine fails at once, in one sentence naming what to place where."""

import json
import time

import pytest

from clipxai.errors import ModelLoadError
from clipxai.models import load_clip


def one_sentence(spec, *fragments, seconds=5.0):
    """Load ``spec``, expecting a ModelLoadError within ``seconds`` whose one line holds ``fragments``."""
    t = time.perf_counter()
    with pytest.raises(ModelLoadError) as info:
        load_clip(spec, "cpu")
    elapsed = time.perf_counter() - t
    message = str(info.value)
    assert "\n" not in message and message.endswith("."), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert elapsed < seconds, f"{spec} took {elapsed:.1f} s to fail"
    return message


@pytest.fixture()
def empty_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("CLIPXAI_CLIP_CACHE", str(tmp_path / "clip"))
    return tmp_path


def test_missing_hf_id_names_the_cache_and_the_repository_folder(empty_caches):
    one_sentence("hf:openai/clip-vit-base-patch32", "not in the local cache", str(empty_caches / "hub"),
                 "hf download openai/clip-vit-base-patch32",
                 str(empty_caches / "hub" / "models--openai--clip-vit-base-patch32"))


def test_missing_openclip_tag_names_the_file_and_the_cache(empty_caches):
    pytest.importorskip("open_clip")
    import open_clip  # noqa: F401  (its import time is not the loader's)
    one_sentence("openclip:ViT-B-32/laion2b_s34b_b79k", "ViT-B-32/laion2b_s34b_b79k", "open_clip_model.safetensors",
                 str(empty_caches / "hub"))


@pytest.mark.parametrize("spec, fragments", [
    ("openclip:ViT-B-32/no-such-tag", ["no pretrained tag 'no-such-tag' for ViT-B-32", "laion2b_s34b_b79k"]),
    ("openclip:No-Such-Arch/openai", ["'No-Such-Arch' is not an open_clip architecture"]),
    ("openclip:ViT-B-32", ["neither a folder nor ARCH/TAG"]),
    ("random:openclip:No-Such-Arch", ["names no open_clip architecture"]),
])
def test_bad_openclip_names(spec, fragments):
    pytest.importorskip("open_clip")
    import open_clip  # noqa: F401
    one_sentence(spec, *fragments)


def test_random_hf_needs_a_known_shape():
    one_sentence("random:hf:huge", "names no architecture", "ViT-B/32")


def test_openclip_folders(tmp_path):
    one_sentence(f"openclip:{tmp_path / 'absent'}", "does not exist")
    one_sentence(f"openclip:{tmp_path}", "holds no open_clip_config.json")
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": {}}))
    one_sentence(f"openclip:{tmp_path}", "holds no weights", "open_clip_model.safetensors")


def test_hf_folders(tmp_path):
    one_sentence(f"hf:{tmp_path / 'absent'}", "does not exist")
    one_sentence(f"hf:{tmp_path}", "holds no config.json")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    one_sentence(f"hf:{tmp_path}", "is a 'bert' model", "CLIP and SigLIP")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "siglip2"}))
    one_sentence(f"hf:{tmp_path}", "SigLIP 2", "fixed-resolution")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip"}))
    one_sentence(f"hf:{tmp_path}", "lacks its weights", "model.safetensors")
    one_sentence(str(tmp_path), "lacks its weights")  # a folder needs no prefix


@pytest.mark.parametrize("index", ["{not json", "{}", '{"weight_map": [1, 2]}', '{"weight_map": {"a": 3}}'])
def test_a_corrupt_weight_index_is_one_sentence(tmp_path, index):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "clip"}))
    (tmp_path / "model.safetensors.index.json").write_text(index)
    one_sentence(f"hf:{tmp_path}", "model.safetensors.index.json is not a readable weight index")


def test_a_folder_of_no_known_layout(tmp_path):
    one_sentence(str(tmp_path), "neither open_clip_config.json nor config.json")


def test_an_unreachable_default_model_says_how_to_go_offline_before_torch_loads(tmp_path):
    """The README's first command on a machine without the weights or the network: one sentence naming
    the toy CLIP and `clipxai models`, within 2 s, and torch never imported."""
    import os
    import subprocess
    import sys

    script = (
        "import socket, sys, time\n"
        "def refuse(*a, **k):\n"
        "    raise OSError('no network')\n"
        "socket.create_connection = refuse\n"
        "from clipxai.cli import main\n"
        "t = time.perf_counter()\n"
        "code = main(['ascend', '❤️', '--steps', '2', '--out', sys.argv[1]])\n"
        "print(code, 'torch' in sys.modules, round(time.perf_counter() - t, 3))\n"
    )
    env = {**os.environ, "CLIPXAI_CLIP_CACHE": str(tmp_path / "empty-cache")}
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "runs")], capture_output=True, text=True,
                          env=env, timeout=60)
    code, torch_loaded, seconds = done.stdout.split()
    assert code == "2" and torch_loaded == "False" and float(seconds) < 2.0
    error = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "'ViT-B/32'" in error[0]
    assert "--model toy" in error[0] and "clipxai models" in error[0]
    assert not (tmp_path / "runs").exists()
