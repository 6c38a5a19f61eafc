"""``clipxai ascend --ablate``: an ascent with components of the image tower switched off.

The expectation is made by hand here: a forward hook on the toy CLIP's attention module that
recomputes one head from the module's own weights and swaps its write for zero or for its mean
over the same noise images, with nothing of clipxai's ablation code.
"""

import json
import math

import numpy as np
import pytest
import torch

import clipxai
from clipxai.ascent.ablation import NOISE_IMAGES, NOISE_SEED
from clipxai.ascent.config import resolve_config
from clipxai.ascent.run import build
from clipxai.cli.commands import main
from clipxai.errors import ClipxaiError
from clipxai.models import wrap_module
from clipxai.models.load import load_clip

LAYER, HEAD = 1, 0
ATTN = f"visual.transformer.resblocks.{LAYER}.attn"
QUICK = {"steps": 4, "snapshot_every": 1, "cutouts": 2, "quiet": True}


def _toy(name="toy"):
    return load_clip(name, "cpu")


def _head_by_hand(attn: torch.nn.MultiheadAttention, x: torch.Tensor, h: int) -> torch.Tensor:
    """Head ``h``'s output before the projection, (batch, tokens, head_dim), from x (tokens, batch, width)."""
    width, d = attn.embed_dim, attn.embed_dim // attn.num_heads
    rows = slice(h * d, (h + 1) * d)
    w, b = attn.in_proj_weight, attn.in_proj_bias
    q, k, v = (x @ w[i * width:(i + 1) * width][rows].T + b[i * width:(i + 1) * width][rows] for i in range(3))
    q, k, v = (t.transpose(0, 1) for t in (q, k, v))
    return torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), dim=-1) @ v


def _replace_head(model, value):
    """A hook writing ``value`` (tokens, head_dim) in place of head HEAD of layer LAYER; the handle."""
    attn = model.module.get_submodule(ATTN)
    d = attn.embed_dim // attn.num_heads
    w_out = attn.out_proj.weight[:, HEAD * d:(HEAD + 1) * d]

    def hook(_m, args, _kwargs, out):
        z = _head_by_hand(attn, args[0], HEAD)
        return (out[0] + ((value - z) @ w_out.T).transpose(0, 1), *out[1:])
    return attn.register_forward_hook(hook, with_kwargs=True)


def _noise_mean(model) -> torch.Tensor:
    """Head HEAD's mean output over the documented noise reference, taken by hand."""
    attn = model.module.get_submodule(ATTN)
    seen = []
    handle = attn.register_forward_hook(lambda _m, args, _k, _o: seen.append(_head_by_hand(attn, args[0], HEAD)),
                                        with_kwargs=True)
    images = torch.rand(NOISE_IMAGES, 3, 64, 64, generator=torch.Generator().manual_seed(NOISE_SEED))
    with torch.no_grad():
        model.embed_images(images)
    handle.remove()
    return torch.cat(seen).mean(dim=0)


def _images(out, **options) -> np.ndarray:
    [run] = clipxai.ascend("a red heart", out=str(out), **{"model_obj": _toy(), **QUICK, **options})
    return np.asarray(run.images, dtype=np.float32)


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_an_ablated_head_changes_the_run_as_a_hand_made_replacement_does(tmp_path, mode):
    plain = _images(tmp_path / "plain")
    ablated = _images(tmp_path / "ablated", ablate=[f"head:{LAYER}:{HEAD}"], ablate_mode=mode)
    model = _toy()
    attn = model.module.get_submodule(ATTN)
    d = attn.embed_dim // attn.num_heads
    value = _noise_mean(model) if mode == "mean" else torch.zeros(1, d)
    handle = _replace_head(model, value)
    try:
        [by_hand] = clipxai.ascend("a red heart", out=str(tmp_path / "hand"), model_obj=model, **QUICK)
    finally:
        handle.remove()
    by_hand = np.asarray(by_hand.images, dtype=np.float32)
    changed = np.abs(ablated - plain).max()
    assert changed > 1e-3
    assert np.abs(ablated - by_hand).max() < changed / 100


def test_run_json_records_the_ablation_and_a_resume_keeps_it(tmp_path):
    spec = dict(ablate=[f"head:{LAYER}:{HEAD}", "mlp:0"])
    [whole] = clipxai.ascend("a red heart", out=str(tmp_path / "whole"), model_obj=_toy(), **{**QUICK, "steps": 6},
                             **spec)
    manifest = json.loads((whole.path / "run.json").read_text())
    assert manifest["config"]["ablation"] == {"components": ["head:1:0", "mlp:0"], "mode": "mean", "reference": None}
    assert [c["component"] for c in manifest["ablation"]["components"]] == ["blocks.1.attn.head0", "blocks.0.mlp"]
    assert manifest["ablation"]["reference"] == {"kind": "noise", "images": NOISE_IMAGES, "seed": NOISE_SEED,
                                                 "distribution": "uniform [0, 1]", "size": [64, 64]}
    [part] = clipxai.ascend("a red heart", out=str(tmp_path / "part"), model_obj=_toy(), **spec, **QUICK)
    [resumed] = clipxai.ascend(resume=part.path, steps=6, model_obj=_toy(), quiet=True)
    again = json.loads((resumed.path / "run.json").read_text())
    assert again["config"]["ablation"] == manifest["config"]["ablation"] and again["ablation"] == manifest["ablation"]
    np.testing.assert_array_equal(np.asarray(resumed.images), np.asarray(whole.images))


def test_canonical_backend_and_short_names_give_the_same_run(tmp_path):
    runs = [_images(tmp_path / str(i), ablate=names) for i, names in enumerate((
        ["head:1:0", "mlp:2"],
        ["blocks.1.attn.head0", "blocks.2.mlp"],
        [f"{ATTN}.head0", "visual.transformer.resblocks.2.mlp"]))]
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])


def test_a_reference_folder_gives_the_means_and_is_recorded(tmp_path):
    from PIL import Image

    folder = tmp_path / "ref"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    [run] = clipxai.ascend("a red heart", out=str(tmp_path / "runs"), model_obj=_toy(), ablate=["mlp:1"],
                           ablate_reference=str(folder), **QUICK)
    reference = json.loads((run.path / "run.json").read_text())["ablation"]["reference"]
    assert reference["kind"] == "folder" and reference["images"] == 3 and len(reference["sha256"]) == 64
    noise = _images(tmp_path / "noise", ablate=["mlp:1"])
    assert np.abs(np.asarray(run.images, dtype=np.float32) - noise).max() > 1e-4
    (folder / "0.png").unlink()  # the means would change: the resume refuses
    with pytest.raises(ClipxaiError, match="changed since the run started"):
        clipxai.ascend(resume=run.path, steps=6, model_obj=_toy(), quiet=True)


@pytest.mark.parametrize("args, words", [
    (["--ablate", "head:40:0"], "toy has 4 layers (0-3)"),
    (["--ablate", "mlp:9"], "names layer 9"),
    (["--ablate", "head:1:99"], "names head 99"),
    (["--ablate", "head:one:0"], "is not a component"),
    (["--ablate", "visual.transformer.nothing"], "names no component of toy"),
    (["--ablate", "mlp:1@toy-z"], "names the model 'toy-z'"),
    (["--ablate", "mlp:1", "--ablate-mode", "zero", "--ablate-reference", "."], "leave the reference out"),
    (["--ablate-mode", "zero"], "none is given"),
    (["--ablate", "mlp:1", "--ablate-reference", "missing"], "is not a folder of images"),
    (["--ablate", "mlp:1", "--ablate-reference", "empty"], "holds no images"),
])
def test_bad_ablations_are_one_sentence_and_write_nothing(tmp_path, monkeypatch, capsys, args, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    code = main(["ascend", "a red heart", "--model", "toy", "--steps", "3", "--snapshot-every", "1",
                 "--out", "runs", "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_a_resnet_model_is_refused_in_one_sentence(tmp_path, monkeypatch, capsys, tiny_resnet_module):
    module = tiny_resnet_module
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ClipxaiError, match="ResNet image tower"):
        clipxai.ascend("a red heart", model_obj=wrap_module(module, name="tiny-rn"), ablate=["mlp:0"], **QUICK)
    torch.save(module.state_dict(), "rn.pt")
    code = main(["ascend", "a red heart", "--model", "rn.pt", "--steps", "3", "--snapshot-every", "1",
                 "--quiet", "--ablate", "head:0:0"])
    err = capsys.readouterr().err
    assert code == 2 and "ResNet image tower" in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


# -- ensembles ------------------------------------------------------------------------------

def _ensemble_parts(*ablate):
    cfg = resolve_config("a red heart", {"model": ["toy", "toy-b"], "ablate": list(ablate), "steps": 2})
    return build(cfg, [_toy(), _toy("toy-b")])


def _embeddings(parts, images):
    with torch.no_grad():
        return [m.model.embed_images(images) for m in parts.members]


@pytest.mark.parametrize("ablate, reached", [(["head:1:0@toy-b"], [False, True]), (["head:1:0"], [True, True]),
                                             (["mlp:0@toy"], [True, False])])
def test_an_ensemble_ablation_reaches_the_named_model_or_every_model(ablate, reached):
    parts = _ensemble_parts(*ablate)
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    plain = _embeddings(parts, images)
    with parts.ablation.applied():
        ablated = _embeddings(parts, images)
    assert [not torch.equal(a, p) for a, p in zip(ablated, plain)] == reached
    assert [e["model"] for e in parts.ablation.describe()["components"]] == [n for n, r in zip(("toy", "toy-b"), reached)
                                                                             if r]
    after = _embeddings(parts, images)   # outside the block the models are as they were
    assert all(torch.equal(a, p) for a, p in zip(after, plain))


def _ensemble_step(*terms, **options):
    from clipxai.ascent.engine import Engine

    cfg = resolve_config("a red heart", {"model": ["toy", "toy-b"], "terms": list(terms), "cutouts": 3, "seeds": 2,
                                         **options})
    parts = build(cfg, [_toy(), _toy("toy-b")])
    step = Engine(parts).forward(0)
    return step, parts.objective(step)[1]


def _neuron_by_hand(seen, block: str, unit: int) -> torch.Tensor:
    with torch.no_grad(), seen.model.hooked([block]) as live:
        seen.model.encode_image(seen.views)
    return live.outputs[block][:, 0, unit].view(2, -1).mean(dim=1)


BLOCK = "visual.transformer.resblocks.1"


@pytest.mark.parametrize("spec, reached", [("neuron:blocks.1:3", ["toy", "toy-b"]), ("neuron:blocks.1:3@toy-b", ["toy-b"]),
                                           (f"neuron:{BLOCK}:3@toy", ["toy"])])
def test_an_ensemble_feature_term_reads_the_named_model_or_every_model(spec, reached):
    step, values = _ensemble_step(spec)
    label = spec.split(":")[1]
    got = {k.split("@")[1]: v for k, v in values.items() if k.startswith("neuron")}
    assert sorted(got) == reached
    for i, name in enumerate(("toy", "toy-b")):
        if name in got:   # each term reads its own model's views, not the first model's
            assert f"neuron({label}:3)@{name}" in values
            torch.testing.assert_close(got[name], _neuron_by_hand(step.member(i), BLOCK, 3))


def test_canonical_and_backend_layer_names_read_the_same_values_and_chunks_agree():
    _, canonical = _ensemble_step("head:blocks.1.attn.head0", "channel:blocks.1.mlp:2@toy-b")
    _, backend = _ensemble_step(f"head:{BLOCK}:0", f"channel:{BLOCK}.mlp:2@toy-b")
    assert [k.split("(")[0] + k.split(")")[1] for k in canonical] == [
        "cosine@toy", "cosine@toy-b", "head@toy", "head@toy-b", "channel@toy-b"]
    assert len(canonical) == len(backend)
    for a, b in zip(canonical.values(), backend.values()):
        assert torch.equal(a, b)
    from clipxai.ascent.engine import Engine

    grads = []
    for chunk in (0, 2):   # the second model's term gradient flows back through its chunked passes too
        cfg = resolve_config("", {"model": ["toy", "toy-b"], "terms": ["channel:blocks.1.mlp:2@toy-b"], "cutouts": 4,
                                  "cutout_batch": chunk})
        engine = Engine(build(cfg, [_toy(), _toy("toy-b")]))
        engine.step(0)
        grads.append(engine.param.params[0].grad.clone())
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("term, words", [("neuron:blocks.9:0", "toy has 4 layers (0-3)"),
                                         ("neuron:blocks.1.attn.head0:0", "is one attention head"),
                                         ("neuron:blocks.1:0@toy-z", "names the model 'toy-z'")])
def test_bad_feature_term_names_are_one_sentence(tmp_path, monkeypatch, capsys, term, words):
    monkeypatch.chdir(tmp_path)
    code = main(["ascend", "a red heart", "--model", "toy", "--model", "toy-b", "--steps", "3", "--snapshot-every",
                 "1", "--out", "runs", "--quiet", "--term", term])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_recorded_activations_name_their_components_for_every_backend(tmp_path):
    [run] = clipxai.ascend("a red heart", out=str(tmp_path), model_obj=_toy(), **QUICK)
    named = json.loads((run.path / "run.json").read_text())["hook_components"]
    assert named == {f"visual.transformer.resblocks.{i}": f"blocks.{i}" for i in range(4)}


def test_a_hugging_face_tower_is_ablated_by_either_name(tmp_path):
    def images(name, ablate):
        [run] = clipxai.ascend("a red heart", model="random:hf:tiny", out=str(tmp_path / name), ablate=ablate, **QUICK)
        return np.asarray(run.images, dtype=np.float32)
    plain = images("plain", [])
    canonical = images("canonical", ["head:1:0", "mlp:0"])
    backend = images("backend", ["vision_model.encoder.layers.1.self_attn.head0", "vision_model.encoder.layers.0.mlp"])
    assert np.abs(canonical - plain).max() > 1e-3
    np.testing.assert_array_equal(canonical, backend)
