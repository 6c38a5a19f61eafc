"""The ascent loop: it ascends, it is reproducible, it records what it saw, it resumes."""

import json
import math
import signal

import numpy as np
import pytest
import torch
from helpers_runs import StopAt

import clipxai
from clipxai.ascent.recorder import Callback
from clipxai.errors import ClipxaiError, NonFiniteLossError, RunError

FAST = dict(quiet=True, cutouts=2, steps=12, snapshot_every=4)


def run(tiny_clip, tmp_path, prompt="a red heart", **options):
    """The run made (the list of runs when several seeds ran)."""
    runs = clipxai.ascend(prompt, model_obj=tiny_clip, out=tmp_path / "runs", **{**FAST, **options})
    return runs[0] if len(runs) == 1 else runs


def sims(r, text):
    return [m[f"sim/{text}"] for m in r.metrics()]


@pytest.mark.parametrize("param", ["pixels", "fourier"])
def test_a_few_steps_raise_the_similarity_to_the_prompt(tiny_clip, tmp_path, param):
    r = run(tiny_clip, tmp_path, param=param, steps=40, lr=0.05)
    s = sims(r, "a red heart")
    assert len(s) == 40
    assert np.mean(s[-5:]) > s[0] + 0.05


def test_same_seed_gives_identical_runs_and_other_seed_differs(tiny_clip, tmp_path):
    a = run(tiny_clip, tmp_path, name="a", seed=3)
    b = run(tiny_clip, tmp_path, name="b", seed=3)
    c = run(tiny_clip, tmp_path, name="c", seed=4)
    for name in ("images", "embeddings", "latents", "gradients"):
        np.testing.assert_array_equal(a.array(name), b.array(name))
    assert not np.array_equal(a.images, c.images)
    assert [m["loss"] for m in a.metrics()] == [m["loss"] for m in b.metrics()]


def test_init_tint_starts_each_seed_from_its_own_hue(tiny_clip, tmp_path):
    plain = run(tiny_clip, tmp_path, name="plain", seeds=3, init_mean=0.5, sigma=0.05, steps=1, snapshot_every=1)
    tinted = run(tiny_clip, tmp_path, name="tinted", seeds=3, init_mean=0.5, sigma=0.05, init_tint=0.2,
                 steps=1, snapshot_every=1)
    def hues(runs):
        return np.stack([r.images[0].astype(np.float32).mean(axis=(1, 2)) for r in runs])  # (seeds, RGB)
    # the noise is the same draw; the tint moves each seed's whole image by one offset per channel
    offsets = hues(tinted) - hues(plain)
    assert np.abs(hues(plain) - 0.5).max() < 0.01
    assert 0.05 < np.abs(offsets).mean() < 0.4
    assert np.abs(offsets[0] - offsets[1]).max() > 0.02  # seeds start from different hues
    first = tinted[0].images[0].astype(np.float32) - plain[0].images[0].astype(np.float32)
    assert np.allclose(first, first.mean(axis=(1, 2), keepdims=True), atol=1e-3)  # uniform per channel
    assert tinted[0].manifest["config"]["param"]["options"]["tint"] == 0.2


class Capture(Callback):
    """Keeps what the engine saw at snapshot steps, to compare with what was written."""

    def __init__(self):
        self.images, self.grads, self.latents, self.steps = [], [], [], []

    def on_backward(self, engine, ctx):
        if ctx.snapshot:
            self.steps.append(ctx.index)
            self.images.append(ctx.image.detach().clone())
            self.grads.append(-ctx.image.grad.clone())
            self.latents.append(engine.param.latent().clone())


def test_saved_arrays_have_documented_shapes_and_the_values_the_engine_saw(tiny_clip, tmp_path):
    cap = Capture()
    r = run(tiny_clip, tmp_path, callbacks=[cap], steps=10, snapshot_every=3)
    n = 4  # steps 0, 3, 6, 9
    assert r.n == n and r.status == "complete"
    assert list(r.steps) == cap.steps == [0, 3, 6, 9]
    assert r.images.shape == (n, 3, 32, 32) and r.images.dtype == np.float16
    assert r.embeddings.shape == (n, 64) and r.embeddings.dtype == np.float32
    assert r.gradients.shape == (n, 3, 32, 32)
    assert r.latents.shape == (n, 3, 32, 32)
    assert set(r.activations) == {"visual.transformer.resblocks.0", "visual.transformer.resblocks.1"}
    assert all(a.shape == (n, 64) for a in r.activations.values())
    images = torch.cat(cap.images)
    np.testing.assert_array_equal(r.images, images.numpy().astype(np.float16))
    np.testing.assert_array_equal(r.gradients, torch.cat(cap.grads).numpy().astype(np.float16))
    np.testing.assert_array_equal(r.latents, torch.cat(cap.latents).numpy())
    # The embedding is CLIP's view of the un-augmented image (raw, not unit length).
    with torch.no_grad():
        expected = tiny_clip.encode_image(images)
    np.testing.assert_allclose(r.embeddings, expected.numpy(), rtol=1e-5, atol=1e-5)
    manifest = json.loads((r.path / "run.json").read_text())
    assert manifest["arrays"]["images"]["shape"] == [n, 3, 32, 32]
    assert manifest["status"] == "complete" and manifest["steps_done"] == 10
    assert (r.path / "final.png").is_file() and (r.path / "checkpoint.pt").is_file()


def test_full_activations_and_hook_filter(tiny_clip, tmp_path):
    r = run(tiny_clip, tmp_path, activations="full", hooks="visual.transformer.resblocks.1")
    assert list(r.activations) == ["visual.transformer.resblocks.1"]
    assert r.activations["visual.transformer.resblocks.1"].shape == (3, 17, 64)  # 16 patches + CLS


def test_frames_match_images(tiny_clip, tmp_path):
    from PIL import Image
    r = run(tiny_clip, tmp_path, frames=True)
    for row, step in enumerate(r.steps):
        png = np.asarray(Image.open(r.path / "frames" / f"step_{step}.png")).transpose(2, 0, 1) / 255
        assert np.abs(png - np.clip(r.images[row].astype(np.float32), 0, 1)).max() <= 1 / 255 + 1e-3


def test_seeds_are_batched_into_one_folder_each_and_match_single_runs(tiny_clip, tmp_path):
    runs = run(tiny_clip, tmp_path, name="grp", seeds=2, seed=7)
    assert [r.path.name for r in runs] == ["grp-seed7", "grp-seed8"]
    single = run(tiny_clip, tmp_path, name="single8", seed=8)
    # Same seed, same randomness: batching only changes floating-point summation order.
    np.testing.assert_allclose(runs[1].images.astype(np.float32), single.images.astype(np.float32), atol=2e-3)
    assert not np.array_equal(runs[0].images, runs[1].images)


@pytest.mark.parametrize("options", [dict(), dict(preset="zer0int", model=None, steps=12, snapshot_every=4),
                                     dict(lr_schedule="plateau", plateau_patience=2)])
def test_resume_ends_bit_identical_to_an_uninterrupted_run(tiny_clip, tmp_path, options):
    options = {k: v for k, v in options.items() if v is not None}
    full = run(tiny_clip, tmp_path, name="full", **options)
    part = run(tiny_clip, tmp_path, name="part", callbacks=[StopAt(5)], **options)
    assert part.status == "interrupted" and part.manifest["steps_done"] == 6
    assert part.n == 2  # steps 0 and 4
    [resumed] = clipxai.ascend(resume=part.path, model_obj=tiny_clip, quiet=True)
    assert resumed.status == "complete" and resumed.n == full.n
    for name in ("images", "embeddings", "latents", "gradients"):
        np.testing.assert_array_equal(resumed.array(name), full.array(name))
    assert [m["loss"] for m in resumed.metrics()] == [m["loss"] for m in full.metrics()]
    assert [m["step"] for m in resumed.metrics()] == list(range(12))


def test_the_memory_terms_state_is_resumed(tiny_clip, tmp_path, monkeypatch):
    """A run whose similarity dips, so the memory of the best image is what the resumed steps use."""
    options = dict(preset="zer0int", steps=12, snapshot_every=4, cutouts=1, lr=0.3)
    full = run(tiny_clip, tmp_path, name="full", **options)
    memory = [m["term/memory"] for m in full.metrics()]
    assert memory[0] == 0 and min(memory[1:5]) > 0   # steps 1-4 are worse than step 0: its image is remembered
    part = run(tiny_clip, tmp_path, name="part", callbacks=[StopAt(2)], **options)
    [resumed] = clipxai.ascend(resume=part.path, model_obj=tiny_clip, quiet=True)
    np.testing.assert_array_equal(resumed.images, full.images)
    assert [m["term/memory"] for m in resumed.metrics()] == memory
    # The same resume with the memory forgotten is another run: the check above can see it.
    from clipxai.ascent.engine import Engine
    load = Engine.load_state_dict
    monkeypatch.setattr(Engine, "load_state_dict", lambda self, state: load(self, {**state, "objective_state": {}}))
    forgetful = run(tiny_clip, tmp_path, name="forgetful", callbacks=[StopAt(2)], **options)
    [forgot] = clipxai.ascend(resume=forgetful.path, model_obj=tiny_clip, quiet=True)
    assert [m["term/memory"] for m in forgot.metrics()][3] == 0 < memory[3]


def test_sigint_stops_cleanly_and_keeps_snapshots(tiny_clip, tmp_path):
    before = signal.getsignal(signal.SIGINT)   # Python's default, or ignored in a background job
    r = run(tiny_clip, tmp_path, callbacks=[StopAt(6, use_signal=True)])
    assert r.status == "interrupted" and r.manifest["stop_reason"] == "SIGINT"
    assert r.n == 2 and r.images.shape[0] == 2 and np.isfinite(r.images.astype(np.float32)).all()
    assert signal.getsignal(signal.SIGINT) is before   # the run's handler is gone again


def test_resume_can_extend_a_complete_run(tiny_clip, tmp_path):
    r = run(tiny_clip, tmp_path, steps=8, snapshot_every=4)
    with pytest.raises(RunError, match="already complete"):
        clipxai.ascend(resume=r.path, model_obj=tiny_clip, quiet=True)
    [longer] = clipxai.ascend(resume=r.path, model_obj=tiny_clip, quiet=True, steps=16)
    assert longer.n == 4 and list(longer.steps) == [0, 4, 8, 12]


def test_nan_loss_stops_keeps_snapshots_and_names_the_step(tiny_clip, tmp_path):
    loss_file = tmp_path / "bad.py"
    loss_file.write_text("import torch\ndef explode(step):\n"
                         "    return torch.tensor(float('nan')) if step.index >= 5 else torch.tensor(0.0)\n")
    with pytest.raises(NonFiniteLossError, match="step 5") as info:
        run(tiny_clip, tmp_path, name="nan", losses=[f"{loss_file}:explode"])
    r = clipxai.load_run(info.value.run_paths[0])
    assert r.status == "failed" and "step 5" in r.manifest["error"]
    assert r.n == 2 and list(r.steps) == [0, 4]


def test_user_loss_from_file_is_called_and_logged(tiny_clip, tmp_path):
    loss_file = tmp_path / "my_losses.py"
    loss_file.write_text(
        "CALLS = []\n"
        "def redness(step):\n"
        "    '''Mean of the red channel minus the others.'''\n"
        "    CALLS.append(step.index)\n"
        "    img = step.image\n"
        "    return (img[:, 0] - img[:, 1:].mean(1)).mean()\n")
    r = run(tiny_clip, tmp_path, losses=[f"{loss_file}:redness=2.5"])
    metrics = r.metrics()
    values = [m["term/redness"] for m in metrics]
    img0 = torch.from_numpy(r.images[0].astype(np.float32))
    assert math.isclose(values[0], float((img0[0] - img0[1:].mean(0)).mean()), abs_tol=2e-3)
    assert values[-1] > values[0]  # weighted 2.5 and maximized: the image gets redder
    assert "2.5*redness" in r.manifest["objective"]


def test_zer0int_preset_loss_is_the_original_formula(tiny_clip, tmp_path):
    """-log(exp(cos/5)) + 1e-5 * sum|TV| + 0.01 * MSE(best), on a known input."""
    from clipxai.ascent.config import resolve_config
    from clipxai.ascent.engine import Engine
    from clipxai.ascent.run import build

    cfg = resolve_config("a red heart", dict(preset="zer0int", model="unused", size=(32, 32),
                                             steps=3, out=str(tmp_path)))
    assert (cfg.optim.lr, cfg.optim.optimizer, cfg.optim.weight_decay, cfg.augment.cutouts, cfg.normalize) == \
        (1.5, "adamw", 0.01, 0, False)
    engine = Engine(build(cfg, tiny_clip))
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 32, 32, generator=gen)
    best = torch.rand(1, 3, 32, 32, generator=gen)
    with torch.no_grad():
        engine.param.params[0].copy_(image)
        engine.state.update(memory_image=best.clone(), memory_similarity=torch.tensor([1.0]))
        step = engine.forward(0)
        total, values = engine.objective(step)
        text = tiny_clip.encode_text(["a red heart"])
        cos = torch.cosine_similarity(tiny_clip.encode_image(image, normalize=False), text).mean()
        tv_sum = (image[..., :, :-1] - image[..., :, 1:]).abs().sum() + (image[..., :-1, :] - image[..., 1:, :]).abs().sum()
        expected_loss = -torch.log(torch.exp(cos / 5)) + 1e-5 * tv_sum + 0.01 * torch.nn.functional.mse_loss(image, best)
    assert torch.allclose(-total, expected_loss.reshape(1), rtol=1e-5, atol=1e-6)
    assert set(values) == {"logexp_cosine(T=5)", "tv", "memory"}


def test_memory_term_tracks_the_best_image(tiny_clip, tmp_path):
    r = run(tiny_clip, tmp_path, memory=0.5, cutouts=0, steps=6, snapshot_every=1)
    mem = [m["term/memory"] for m in r.metrics()]
    assert mem[0] == 0.0  # the first image is its own memory
    sims_ = sims(r, "a red heart")
    for i in range(1, 6):  # on a step that improves on the best, the image is the memory
        if sims_[i] > max(sims_[:i]):
            assert mem[i] == 0.0


def test_negative_prompt_weight_pushes_away(tiny_clip, tmp_path):
    excluded = run(tiny_clip, tmp_path, name="ex", prompt="a red heart:1|a blue square:-1", steps=20)
    neutral = run(tiny_clip, tmp_path, name="neutral", prompt="a red heart:1|a blue square:0", steps=20)
    assert sims(excluded, "a blue square")[-1] < sims(neutral, "a blue square")[-1] - 0.05
    assert sims(excluded, "a blue square")[0] == pytest.approx(sims(neutral, "a blue square")[0])


def test_image_prompt_is_ascended_toward(tiny_clip, tmp_path):
    from PIL import Image
    target = np.zeros((32, 32, 3), np.uint8)
    target[8:24, 8:24] = (230, 20, 20)
    Image.fromarray(target).save(tmp_path / "target.png")
    r = run(tiny_clip, tmp_path, prompt="a photo:0.0001", image_prompts=[f"{tmp_path / 'target.png'}:1"], steps=20)
    s = [m[f"sim/{tmp_path / 'target.png'}"] for m in r.metrics()]
    assert s[-1] > s[0] + 0.05


@pytest.mark.parametrize("options, message", [
    (dict(steps=0), "--steps must be a positive"),
    (dict(steps=-3), "--steps must be a positive"),
    (dict(lr=0.0), "--lr must be a positive"),
    (dict(lr=-1.0), "--lr must be a positive"),
    (dict(preset="nope"), "Unknown preset"),
    (dict(optimizer="rmsprop"), "Unknown optimizer"),
    (dict(hooks="no.such.module"), "matches no module"),
    (dict(param="nope"), "Unknown parameterization"),
    (dict(init_tint=-0.1), "--init-tint must not be negative"),
    (dict(init_tint=0.2, param="fourier"), "--init-tint applies to --param pixels only"),
])
def test_bad_options_are_one_sentence_before_any_folder(tiny_clip, tmp_path, options, message):
    with pytest.raises(ClipxaiError, match=message):
        run(tiny_clip, tmp_path, **options)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_an_existing_run_is_never_overwritten(tiny_clip, tmp_path):
    first = run(tiny_clip, tmp_path, name="keep")
    before = first.images.copy()
    with pytest.raises(RunError, match="already exists"):
        run(tiny_clip, tmp_path, name="keep", seed=99)
    np.testing.assert_array_equal(clipxai.load_run(first.path).images, before)


def test_cutouts_in_chunks_give_the_one_batch_ascent_up_to_rounding(tiny_clip, tmp_path):
    common = dict(steps=10, snapshot_every=1, cutouts=8, seeds=2, memory=0.1, tv=0.1)
    chunked = run(tiny_clip, tmp_path, name="chunked", cutout_batch=3, **common)  # passes of 3, 3, 3, 3, 3, 1
    whole = run(tiny_clip, tmp_path, name="whole", **common)
    for a, b in zip(chunked, whole):
        np.testing.assert_allclose(a.latents, b.latents, atol=2e-5, rtol=0)
        np.testing.assert_allclose(a.gradients.astype(np.float32), b.gradients.astype(np.float32), atol=5e-6, rtol=0)
        assert not np.array_equal(a.latents[-1], a.latents[0])  # it did ascend
    assert chunked[0].option("cutout_batch") == 3


def test_compute_options_change_how_not_what(tiny_clip, tmp_path):
    """bf16 autocast stays close to fp32; recomputed activations give the same ascent exactly."""
    plain = run(tiny_clip, tmp_path, name="fp32", steps=8, snapshot_every=2)
    ckpt = run(tiny_clip, tmp_path, name="ckpt", steps=8, snapshot_every=2, checkpoint_activations=True)
    bf16 = run(tiny_clip, tmp_path, name="bf16", steps=8, snapshot_every=2, precision="bf16", force_precision=True)
    np.testing.assert_array_equal(ckpt.latents, plain.latents)
    assert ckpt.manifest["compute"]["checkpoint_activations"] is True
    assert bf16.manifest["compute"]["precision"] == "bf16" and plain.manifest["compute"]["precision"] == "fp32"
    assert plain.manifest["compute"]["compile"] is False
    drift = np.abs(bf16.embeddings.astype(np.float64) - plain.embeddings).max() / np.abs(plain.embeddings).max()
    assert 0 < drift < 0.05  # it did compute in bf16, and stayed close
    assert not any(p.dtype != torch.float32 for p in tiny_clip.parameters())  # the model itself is unchanged


def test_fp16_is_refused_on_a_cpu_without_fp16_instructions(tiny_clip, tmp_path, monkeypatch):
    from clipxai.util import cpu
    monkeypatch.setattr(cpu, "cpu_features", lambda: {"avx2": True, "avx512_fp16": False, "amx_fp16": False})
    with pytest.raises(ClipxaiError, match="fp16 is refused on this CPU"):
        run(tiny_clip, tmp_path, precision="fp16")


def test_an_ensemble_sums_each_models_terms_and_records_each_models_embeddings(tiny_clip, tmp_path):
    from clipxai.models import load_clip
    toy = load_clip("toy", "cpu")
    runs = clipxai.ascend("a red heart", model_obj=[toy, tiny_clip], model=["toy", "tiny:0.5"], out=tmp_path,
                          name="ens", seeds=2, quiet=True, steps=8, snapshot_every=2, cutouts=2)
    r = runs[0]
    assert r.manifest["objective"] == "cosine(a red heart)@toy + 0.5*cosine(a red heart)@tiny"
    assert [m["label"] for m in r.manifest["models"]] == ["toy", "tiny"]
    assert r.embeddings.shape == (4, toy.embed_dim) and r.array("embeddings/tiny").shape == (4, tiny_clip.embed_dim)
    last = r.metrics()[-1]
    assert last["sim/a red heart"] == last["sim/a red heart@toy"]
    assert last["objective"] == pytest.approx(last["term/cosine(a red heart)@toy"]
                                              + 0.5 * last["term/cosine(a red heart)@tiny"], abs=1e-6)
    with torch.no_grad():  # each model's recorded embedding is its own view of the recorded image
        image = torch.from_numpy(r.images[-1:].astype(np.float32))
    np.testing.assert_allclose(r.array("embeddings/tiny")[-1], tiny_clip.embed_images(image)[0].numpy(), atol=2e-3)
    seen = r.seen_by("tiny")
    assert seen.model_name == "tiny" and np.array_equal(seen.embeddings, r.array("embeddings/tiny"))
    # the first model's views are a single run's: adding a model leaves its augmentation as it was
    [alone] = clipxai.ascend("a red heart", model_obj=toy, out=tmp_path, name="alone", seed=0, quiet=True,
                             steps=1, snapshot_every=1, cutouts=2)
    assert np.array_equal(alone.images[0], r.images[0])
    [resumed] = clipxai.ascend(resume=r.path, model_obj=[toy, tiny_clip], quiet=True, steps=12)
    assert resumed.status == "complete" and resumed.array("embeddings/tiny").shape[0] == 6


def test_analyze_picks_one_models_embeddings_of_an_ensemble(tiny_clip, tmp_path):
    from clipxai.analysis import AnalyzeOptions, analyze
    from clipxai.models import load_clip
    [r] = clipxai.ascend("a red heart", model_obj=[load_clip("toy", "cpu"), tiny_clip], model=["toy", "tiny"],
                         out=tmp_path, name="ens", quiet=True, steps=12, snapshot_every=2, cutouts=2)
    a = analyze(r, AnalyzeOptions(projections=(), labels=False, embedding_model="tiny"))
    assert a.to_dict()["analysis"]["embedding_model"] == "tiny" and a.to_dict()["run"]["model"] == "tiny"
    with pytest.raises(RunError, match="no embeddings of a model named 'nope'"):
        analyze(r, AnalyzeOptions(projections=(), labels=False, embedding_model="nope"))
