"""Where models are read from: the Hugging Face cache for hf:ID and open_clip tags, and what `clipxai models` lists.

A converted tiny CLIP is laid out in a private cache exactly as the hub client leaves it
(``models--org--name/snapshots/<rev>/...`` with ``refs/main``), so the offline lookups run
for real without any download.
"""

import shutil
import time

import pytest
import torch

from clipxai.cli.commands import main
from clipxai.errors import ModelLoadError
from clipxai.models import load_clip, random_clip, wrap_module

pytest.importorskip("safetensors")


def place_in_hub_cache(cache, repo_id, files):
    """Lay ``files`` (name -> source path) out as a cached snapshot of ``repo_id``."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    for name, src in files.items():
        shutil.copy(src, snap / name)
    return snap


def models_output(capsys) -> str:
    capsys.readouterr()
    assert main(["models"]) == 0
    return capsys.readouterr().out


@pytest.fixture()
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("CLIPXAI_CLIP_CACHE", str(tmp_path / "clip-cache"))
    return cache


@pytest.fixture(scope="module")
def tiny_sd():
    return random_clip("tiny", seed=0).state_dict()


def test_hf_id_is_read_from_the_cache_only(hub_cache, tmp_path, tiny_sd, capsys):
    pytest.importorskip("transformers")
    from clipxai.models.convert import write_hf_dir
    folder = write_hf_dir(tiny_sd, tmp_path / "hf")
    place_in_hub_cache(hub_cache, "someone/tiny-clip", {p.name: p for p in folder.iterdir()})
    m = load_clip("hf:someone/tiny-clip", "cpu")
    ref = wrap_module(random_clip("tiny", seed=0), device="cpu")
    assert m.name == "hf:someone/tiny-clip" and str(hub_cache) in m.source
    assert (m.encode_text(["a red heart"]) - ref.encode_text(["a red heart"])).abs().max() < 1e-5
    assert "hf:someone/tiny-clip" in models_output(capsys).split("Not on this machine:")[0]


def test_openclip_tag_is_read_from_the_cache_only(hub_cache, tmp_path, tiny_sd, monkeypatch, capsys):
    open_clip = pytest.importorskip("open_clip")
    from open_clip import factory, pretrained

    from clipxai.models.convert import openai_to_openclip, write_openclip_dir
    cfg, _ = openai_to_openclip(tiny_sd)
    monkeypatch.setitem(factory._MODEL_CONFIGS, "clipxai-tiny", cfg)
    monkeypatch.setitem(pretrained._PRETRAINED, "clipxai-tiny",
                        {"test": {"hf_hub": "someone/tiny-openclip/", "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}})
    with pytest.raises(ModelLoadError, match="not on this machine; place open_clip_model.safetensors of the hub "
                                             "repository someone/tiny-openclip") as info:
        load_clip("openclip:clipxai-tiny/test", "cpu")
    assert str(hub_cache) in str(info.value) and "\n" not in str(info.value)

    folder = write_openclip_dir(tiny_sd, tmp_path / "oc")
    place_in_hub_cache(hub_cache, "someone/tiny-openclip",
                       {"open_clip_model.safetensors": folder / "open_clip_model.safetensors"})
    m = load_clip("openclip:clipxai-tiny/test", "cpu")
    assert m.backend == "openclip" and m.mean == (0.5, 0.5, 0.5) and m.std == (0.25, 0.25, 0.25)
    ref = wrap_module(random_clip("tiny", seed=0), device="cpu")
    assert (m.encode_text(["a red heart"]) - ref.encode_text(["a red heart"])).abs().max() < 1e-5
    assert open_clip.get_pretrained_cfg("clipxai-tiny", "test")
    assert "openclip:clipxai-tiny/test" in models_output(capsys)


def test_models_lists_found_and_missing_openai_files(hub_cache, tmp_path, tiny_clip_file, capsys):
    (tmp_path / "clip-cache").mkdir()
    shutil.copy(tiny_clip_file, tmp_path / "clip-cache" / "ViT-B-32.pt")
    t = time.perf_counter()
    output = models_output(capsys)
    assert time.perf_counter() - t < 20
    usable, missing = output.split("Not on this machine:")
    assert "ViT-B/32" in usable and str(tmp_path / "clip-cache" / "ViT-B-32.pt") in usable
    assert "toy " in usable and "random:hf:ARCH" in usable
    assert "ViT-L/14 " in missing and "place ViT-L-14.pt in " + str(tmp_path / "clip-cache") in missing
    assert "Caches:" in output and str(hub_cache) in output


@pytest.mark.parametrize("spec", ["random:hf:tiny", "random:openclip:ViT-B-32"])
def test_random_forms_of_each_backend(spec):
    pytest.importorskip("transformers" if ":hf:" in spec else "open_clip")
    m = load_clip(spec, "cpu")
    r = m.input_resolution
    with torch.no_grad():
        f = m.encode_image(torch.rand(1, 3, r, r))
    assert f.shape == (1, m.embed_dim) and m.describe()["sha256"].startswith("random-")
    assert m.hook_points()


def test_openclip_hub_repository_is_read_from_the_cache(hub_cache, tmp_path, tiny_sd, capsys):
    pytest.importorskip("open_clip")
    from clipxai.models.convert import write_openclip_dir
    with pytest.raises(ModelLoadError, match="'someone/oc-repo' is not in the local cache"):
        load_clip("openclip:hf-hub:someone/oc-repo", "cpu")
    folder = write_openclip_dir(tiny_sd, tmp_path / "oc")
    place_in_hub_cache(hub_cache, "someone/oc-repo", {p.name: p for p in folder.iterdir()})
    m = load_clip("openclip:hf-hub:someone/oc-repo", "cpu")
    assert m.backend == "openclip" and str(hub_cache) in m.source
    assert "openclip:hf-hub:someone/oc-repo" in models_output(capsys).split("Not on this machine:")[0]
