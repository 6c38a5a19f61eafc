"""Neuron, channel, direction and head terms: live hook points of every backend, and runs without a prompt."""

import json
import re
import warnings

import numpy as np
import pytest
import torch

import clipxai
from clipxai.cli.commands import main
from clipxai.errors import ClipxaiError, TermError
from clipxai.models import random_clip, wrap_module
from clipxai.runs.load import load_run
from clipxai.terms.base import Objective, Step
from clipxai.terms.features import channel, direction, head, neuron
from clipxai.terms.image import tv
from clipxai.terms.load import load_term
from clipxai.terms.prompt import cosine

OPENAI_BLOCK = "visual.transformer.resblocks.1"
HF_BLOCK = "vision_model.encoder.layers.1"


def _two_heads(seed=0):
    """A tiny OpenAI-format CLIP whose image tower has two attention heads (width 128)."""
    import clip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return clip.model.CLIP(embed_dim=64, image_resolution=32, vision_layers=2, vision_width=128,
                               vision_patch_size=8, context_length=16, vocab_size=49408, transformer_width=64,
                               transformer_heads=1, transformer_layers=2).float()


def _in_library(module, library):
    """The same weights as an open_clip or transformers module."""
    from clipxai.models.convert import openai_as
    return wrap_module(openai_as(module.state_dict(), library), name=f"tiny-{library}")


def _step(model, views, batch):
    feats = model.encode_image(views).view(batch, views.shape[0] // batch, -1)
    return Step(index=0, image=views[:batch], views=views, features=feats, embeds=feats / feats.norm(dim=-1, keepdim=True),
                prompts=[], model=model, param=None, state={})


def test_specs_become_named_terms_and_compose_in_python():
    assert load_term(f"neuron:{OPENAI_BLOCK}:5").name == f"neuron({OPENAI_BLOCK}:5)"
    assert load_term(f"neuron:{OPENAI_BLOCK}:5:3").name == f"neuron({OPENAI_BLOCK}:5:3)"
    assert load_term(f"channel:{OPENAI_BLOCK}:7").name == f"channel({OPENAI_BLOCK}:7)"
    assert load_term(f"head:{OPENAI_BLOCK}:0").name == f"head({OPENAI_BLOCK}:0)"
    obj = neuron(OPENAI_BLOCK, 42) - 0.5 * channel(OPENAI_BLOCK, 1) + cosine("x") - 1e-3 * tv()
    assert obj.name == f"neuron({OPENAI_BLOCK}:42) - 0.5*channel({OPENAI_BLOCK}:1) + cosine(x) - 0.001*tv"
    assert obj.hook_points() == ([OPENAI_BLOCK], [])
    assert (head(OPENAI_BLOCK, 1) + neuron("a", 1)).hook_points() == (["a"], [OPENAI_BLOCK])
    for bad, words in [("neuron", "needs the form neuron:LAYER:UNIT[:TOKEN]"),
                       (f"channel:{OPENAI_BLOCK}", "needs the form channel:LAYER:UNIT"),
                       (f"head:{OPENAI_BLOCK}:x", "needs whole numbers"),
                       (f"neuron:{OPENAI_BLOCK}:-1", "negative unit"),
                       ("direction:a", "needs the form direction:LAYER:FILE.npy")]:
        with pytest.raises(TermError, match=re.escape(words)):
            load_term(bad)


def test_hooked_gives_live_batch_first_outputs_and_heads_that_make_the_attention():
    model = wrap_module(_two_heads(), name="two-heads")
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0), requires_grad=True)
    with model.hooked([OPENAI_BLOCK], [OPENAI_BLOCK]) as live:
        model.encode_image(x)
    out, heads = live.outputs[OPENAI_BLOCK], live.heads[OPENAI_BLOCK]
    assert out.shape == (3, 17, 128) and heads.shape == (3, 2, 17, 64) and out.requires_grad
    # The heads, concatenated and projected, are the block's attention output.
    attn = dict(model.module.named_modules())[OPENAI_BLOCK + ".attn"]
    seen = {}
    handle = attn.register_forward_hook(lambda _m, _i, o: seen.setdefault("out", o[0].detach()))
    with torch.no_grad():
        model.encode_image(x)
    handle.remove()
    projected = torch.nn.functional.linear(heads.transpose(1, 2).reshape(3, 17, 128), attn.out_proj.weight,
                                           attn.out_proj.bias)
    assert (projected - seen["out"].permute(1, 0, 2)).abs().max() < 1e-5
    heads[:, 1].norm(dim=-1).mean().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(ClipxaiError, match="did you mean visual.transformer.resblocks.1"):
        with model.hooked(["visual.transformer.resblock.1"]):
            pass
    with pytest.raises(ClipxaiError, match="holds no attention module"):
        with model.hooked(heads=["visual.conv1"]):
            pass


@pytest.mark.parametrize("library", ["openclip", "hf"])
def test_outputs_and_heads_are_the_same_in_every_backend(library):
    pytest.importorskip({"openclip": "open_clip", "hf": "transformers"}[library])
    reference = wrap_module(_two_heads(), name="two-heads")
    other = _in_library(_two_heads(), library)
    block = HF_BLOCK if library == "hf" else OPENAI_BLOCK
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), reference.hooked([OPENAI_BLOCK], [OPENAI_BLOCK]) as ref:
        reference.encode_image(x)
    with torch.no_grad(), other.hooked([block], [block]) as live:
        other.encode_image(x)
    assert (live.outputs[block] - ref.outputs[OPENAI_BLOCK]).abs().max() < 1e-4
    assert (live.heads[block] - ref.heads[OPENAI_BLOCK]).abs().max() < 1e-4


def _neuron_rise(model, layer, unit=5, seeds=4, steps=100, tmp=None):
    runs = clipxai.ascend(None, model_obj=model, terms=[f"neuron:{layer}:{unit}"], steps=steps, seeds=seeds,
                          snapshot_every=steps - 1, hooks=layer, activations="full", record_gradients=False,
                          out=str(tmp), quiet=True)
    acts = np.stack([r.activations[layer][:, 0, unit].astype(np.float32) for r in runs])  # seeds x snapshots
    return acts[:, -1].mean() - acts[:, 0].mean(), acts[:, 0].std(), runs


@pytest.mark.parametrize("library", ["openai", "openclip"])
def test_a_neuron_rises_far_beyond_its_spread_at_the_start(library, tmp_path):
    pytest.importorskip("open_clip")
    module = random_clip("tiny", seed=0)
    model = wrap_module(module, name="tiny") if library == "openai" else _in_library(module, "openclip")
    rise, spread, runs = _neuron_rise(model, OPENAI_BLOCK, tmp=tmp_path)
    assert rise >= 3 * spread and rise > 1.0, (rise, spread)
    # The term's own values (the views' mean) rise with the recorded unit.
    metrics = runs[0].metrics()
    key = f"term/neuron({OPENAI_BLOCK}:5)"
    assert metrics[-1][key] > metrics[0][key] + 1.0


@pytest.mark.parametrize("make", [
    lambda: channel(OPENAI_BLOCK, 3),
    lambda: direction(OPENAI_BLOCK, np.random.default_rng(0).normal(size=64)),
    lambda: head(OPENAI_BLOCK, 0),
    lambda: neuron(OPENAI_BLOCK, 7, token=4),
])
def test_a_few_steps_raise_each_term(tiny_clip, make):
    obj = make()
    x = torch.full((2, 3, 32, 32), 0.5).add_(0.1 * torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    x.requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.05)
    values = []
    for _ in range(15):
        total, _ = obj(_step(tiny_clip, x, 2))
        values.append(total.detach())
        opt.zero_grad()
        (-total.sum()).backward()
        opt.step()
    assert values[0].shape == (2,) and bool((values[-1] > values[0]).all()), values


@pytest.mark.parametrize("prompt, term", [("", f"neuron:{OPENAI_BLOCK}:5"), ("a red heart", f"head:{OPENAI_BLOCK}:0")])
def test_the_engine_captures_what_the_term_would_encode_and_chunked_views_agree(tiny_clip, tmp_path, prompt, term):
    batches = []
    hook = tiny_clip.module.visual.register_forward_pre_hook(lambda _m, args: batches.append(args[0].shape[0]))

    def gradient(**options):
        from clipxai.ascent.config import resolve_config
        from clipxai.ascent.engine import Engine
        from clipxai.ascent.run import build
        cfg = resolve_config(prompt, dict(model="tiny", terms=[term], cutouts=4, seeds=2, **options))
        engine = Engine(build(cfg, tiny_clip))
        batches.clear()
        step = engine.step(0)
        return step, engine.param.params[0].grad.clone()

    try:
        captured, g_captured = gradient()
        chunked, g_chunked = gradient(cutout_batch=2)
    finally:
        hook.remove()
    for step in (captured, chunked):
        assert step.activations is not None and OPENAI_BLOCK in {**step.activations.outputs, **step.activations.heads}
    assert batches and max(batches) == 2   # the term reads the chunks' activations: no pass sees all 8 views
    assert torch.allclose(g_captured, g_chunked, atol=1e-6)
    for name, value in captured.values.items():
        assert torch.allclose(value, chunked.values[name], atol=1e-6), name


def test_a_run_of_terms_alone_has_no_prompt_and_is_named_after_its_term(tiny_clip, tmp_path, capsys):
    code = main(["ascend", "--term", f"channel:{OPENAI_BLOCK}:3=2", "--model", "random:tiny", "--steps", "12",
                 "--snapshot-every", "3", "--out", str(tmp_path), "--quiet"])
    path = capsys.readouterr().out.strip().splitlines()[-1]
    assert code == 0 and path.endswith("-channel-visual-transformer-resblocks-1-3")
    run = load_run(path)
    metrics = run.metrics()
    assert not any(k.startswith("sim/") for m in metrics for k in m)
    assert metrics[-1]["objective"] == pytest.approx(2 * metrics[-1][f"term/channel({OPENAI_BLOCK}:3)"], rel=1e-5)
    manifest = json.loads((run.path / "run.json").read_text())
    assert manifest["status"] == "complete" and manifest["prompts"] == [] and manifest["prompt"] == ""
    from clipxai.analysis.analyze import AnalyzeOptions, analyze
    result = analyze(run, AnalyzeOptions(labels=False, projections=(), gif=False, n_boot=50, n_surrogates=19))
    assert result.to_dict()["run"]["prompt"] == ""


@pytest.mark.parametrize("spec, words", [
    ("neuron:visual.transformer.resblock.1:5", "'visual.transformer.resblock.1' is not a hook point of"),
    (f"neuron:{OPENAI_BLOCK}:64", f"Unit 64 is out of range: {OPENAI_BLOCK} has 64 units (0 to 63)."),
    (f"head:{OPENAI_BLOCK}:1", f"Head 1 is out of range: {OPENAI_BLOCK} has 1 head (0)."),
    (f"neuron:{OPENAI_BLOCK}:1:99", "Token 99 is out of range"),
    ("head:visual.conv1:0", "holds no attention module"),
    ("direction:LAYER:missing.npy", "does not exist"),
    ("direction:LAYER:matrix.npy", "a direction is one vector"),
    ("direction:LAYER:short.npy", "has 3 values but visual.transformer.resblocks.1 has 64 units"),
    ("direction:LAYER:zeros.npy", "finite, non-zero vector"),
    ("direction:LAYER:text.npy", "a direction is an array of numbers"),
    ("direction:LAYER:junk.npy", "is not a readable .npy array"),
])
def test_bad_feature_terms_are_one_sentence(tiny_clip_file, tmp_path, monkeypatch, capsys, spec, words):
    monkeypatch.chdir(tmp_path)
    np.save("matrix.npy", np.ones((4, 64)))
    np.save("short.npy", np.ones(3))
    np.save("zeros.npy", np.zeros(64))
    np.save("text.npy", np.array(["a", "b"]))
    (tmp_path / "junk.npy").write_bytes(b"not an array")
    spec = spec.replace("LAYER", OPENAI_BLOCK)
    code = main(["ascend", "--term", spec, "--model", str(tiny_clip_file), "--steps", "1", "--out", "runs", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_a_prompt_is_still_needed_without_terms(capsys):
    assert main(["ascend", "--model", "random:tiny", "--steps", "1", "--quiet"]) == 2
    assert "The prompt is missing" in capsys.readouterr().err
    with pytest.raises(ClipxaiError, match="no positive weight"):
        clipxai.ascend("x:-1", model="random:tiny", steps=1, quiet=True)


def test_a_direction_term_follows_a_vector_given_in_python(tiny_clip):
    v = torch.zeros(64)
    v[3] = 1.0
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    step = _step(tiny_clip, x, 2)
    with torch.no_grad():
        value = direction(OPENAI_BLOCK, v)(step)[0]
        with tiny_clip.hooked([OPENAI_BLOCK]) as live:
            tiny_clip.encode_image(x)
        pooled = live.outputs[OPENAI_BLOCK].mean(dim=1)
    assert torch.allclose(value, pooled[:, 3] / pooled.norm(dim=-1), atol=1e-6)
    assert isinstance(direction(OPENAI_BLOCK, v), Objective)


def test_feature_terms_in_an_ensemble_read_every_model_or_the_one_named(tiny_clip, tmp_path):
    # (they once read the first model only, with a warning; tests/test_ablate_ascent.py checks the values)
    common = {"model_obj": [tiny_clip, tiny_clip], "steps": 3, "snapshot_every": 1, "cutouts": 2, "quiet": True}
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*first model of the ensemble")
        [every] = clipxai.ascend("a red heart", terms=[f"neuron:{OPENAI_BLOCK}:3"], out=str(tmp_path / "a"), **common)
        [one] = clipxai.ascend("a red heart", terms=[f"neuron:{OPENAI_BLOCK}:3@tiny#2"], out=str(tmp_path / "b"),
                               **common)
        [alone] = clipxai.ascend("a red heart", model_obj=tiny_clip, terms=[f"neuron:{OPENAI_BLOCK}:3"], steps=3,
                                 snapshot_every=1, cutouts=2, quiet=True, out=str(tmp_path / "c"))
    term = f"neuron({OPENAI_BLOCK}:3)"
    assert [t for t in every.manifest["terms"] if t.startswith("neuron")] == [f"{term}@tiny#1", f"{term}@tiny#2"]
    assert [t for t in one.manifest["terms"] if t.startswith("neuron")] == [f"{term}@tiny#2"]
    assert term in alone.manifest["terms"]


def _neuron_values(model, out, **options):
    [run] = clipxai.ascend("", model_obj=model, terms=[f"neuron:{OPENAI_BLOCK}:3"], steps=3, snapshot_every=1,
                           cutouts=4, quiet=True, out=str(out), **options)
    return [m[f"term/neuron({OPENAI_BLOCK}:3)"] for m in run.metrics()]


def test_feature_terms_read_the_same_activations_with_checkpointed_blocks(tiny_clip, tmp_path):
    plain = _neuron_values(tiny_clip, tmp_path / "plain")
    assert _neuron_values(tiny_clip, tmp_path / "ckpt", checkpoint_activations=True) == pytest.approx(plain, abs=1e-6)


@pytest.mark.slow  # compiling the encoder takes about a minute on a CPU
def test_feature_terms_read_the_same_activations_from_a_compiled_encoder(tiny_clip, tmp_path):
    plain = _neuron_values(tiny_clip, tmp_path / "plain")
    assert _neuron_values(tiny_clip, tmp_path / "compiled", compile=True) == pytest.approx(plain, abs=1e-5)
