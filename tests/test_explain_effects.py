"""The ablation test ranks components by their total effect, which can sit far from their direct contribution.

The chain model is a tiny OpenAI-format ViT built by hand: its patch embedding reads how much
redder than blue each patch is; one head of layer 0 (a different one per seed) averages that over
the image and writes a direction ``u`` that the final projection cannot see (its direct
contribution is nil), and the MLP of layer 1 reads ``u`` and writes the prompt's direction beside
a constant other one. The MLP
makes the similarity directly, but the head causes it: mean-ablating the head (its mean over red
and blue images is about zero) silences the MLP, mean-ablating the MLP halves its write. The total
effect ranking must find the head; the direct ranking cannot.
"""

import contextlib

import numpy as np
import pytest
import torch

from clipxai.analysis.explain.decompose import decompose
from clipxai.analysis.explain.effects import attribution_effects, greedy_exact, halves, rank_by_total_effect
from clipxai.analysis.explain.states import explain
from clipxai.errors import ClipxaiError
from clipxai.models import wrap_module
from clipxai.models.ablate import ablated, ablated_rows, component_means, probed
from clipxai.models.components import list_components
from clipxai.models.prefix import Prefix

clip = pytest.importorskip("clip")

WIDTH, DIM, HEADS, LAYERS, RES, PATCH = 64, 32, 4, 2, 32, 8


def _shell(vision: torch.nn.Module, seed: int) -> torch.nn.Module:
    """An OpenAI-format CLIP around ``vision`` (a minimal text tower; the tests never read text)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = clip.model.CLIP(embed_dim=DIM, image_resolution=RES, vision_layers=1, vision_width=64,
                                 vision_patch_size=PATCH, context_length=8, vocab_size=64, transformer_width=64,
                                 transformer_heads=1, transformer_layers=1)
    module.visual = vision
    return module.float()


def chain(seed: int):
    """(model, the causing head's name, the prompt's unit embedding [D]) for one seed."""
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vision = clip.model.VisionTransformer(RES, PATCH, WIDTH, LAYERS, HEADS, DIM)
    head, d = int(rng.integers(HEADS)), WIDTH // HEADS
    with torch.no_grad():
        vision.conv1.weight.mul_(0.02)
        vision.conv1.weight[0] = 0
        vision.conv1.weight[0, 0], vision.conv1.weight[0, 2] = 50 / PATCH ** 2, -50 / PATCH ** 2
        vision.class_embedding.zero_()
        vision.positional_embedding.mul_(0.1)
        for block in vision.transformer.resblocks:   # every head and MLP writes weak noise
            block.attn.out_proj.weight.mul_(0.05)
            block.mlp.c_proj.weight.mul_(0.05)
        cls = vision.ln_pre(vision.class_embedding + vision.positional_embedding[0]).double().numpy()
        basis, _ = np.linalg.qr(np.stack([np.ones(WIDTH), np.eye(WIDTH)[0], cls]
                                         + list(rng.standard_normal((WIDTH - 3, WIDTH))), axis=1))
        u, v = basis[:, 3], basis[:, 4]              # zero-mean, off channel 0 and the class token's row
        proj = basis[:, 4:4 + DIM]                   # the projection sees v but not u
        vision.proj.copy_(torch.tensor(proj, dtype=torch.float32))
        attn = vision.transformer.resblocks[0].attn  # the head: uniform attention, reads channel 0, writes u
        rows = slice(head * d, (head + 1) * d)
        for part in range(3):
            attn.in_proj_weight[part * WIDTH:(part + 1) * WIDTH][rows] = 0
            attn.in_proj_bias[part * WIDTH:(part + 1) * WIDTH][rows] = 0
        attn.in_proj_weight[2 * WIDTH + head * d, 0] = 1.0
        attn.out_proj.weight[:, rows] = 0
        attn.out_proj.weight[:, head * d] = torch.tensor(10.0 * u, dtype=torch.float32)
        # the MLP: one unit reads u and writes v; its bias writes a constant w (as large as v at its
        # strongest), so the cosine with v falls when v does
        mlp = vision.transformer.resblocks[1].mlp
        mlp.c_fc.weight[0] = torch.tensor(0.5 * u, dtype=torch.float32)
        mlp.c_fc.bias[0] = 0
        mlp.c_proj.weight[:, 0] = torch.tensor(3.0 * v, dtype=torch.float32)
        mlp.c_proj.bias.copy_(torch.tensor(12.0 * basis[:, 5], dtype=torch.float32))
        prompt = torch.tensor(v @ proj, dtype=torch.float32)
    model = wrap_module(_shell(vision, seed), name=f"chain-{seed}", sha256=f"chain-{seed}")
    return model, f"blocks.0.attn.head{head}", (prompt / prompt.norm()).numpy()


def coloured(n: int, generator: torch.Generator, red: bool) -> torch.Tensor:
    """Random images whose every patch is clearly redder (or bluer) than it is blue (red)."""
    x = torch.rand(n, 3, RES, RES, generator=generator)
    high, low = 0.6 + 0.4 * x[:, 0], 0.4 * x[:, 2]
    x[:, 0], x[:, 2] = (high, low) if red else (low, high)
    return x


def _images(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.cat([coloured(10, g, True), coloured(10, g, False)])


def _drop(model, images, prompt, names, means) -> float:
    target = torch.as_tensor(prompt, dtype=torch.float32)

    def sim():
        e = model.embed_images(images).float()
        return (e / e.norm(dim=-1, keepdim=True)) @ target
    with torch.no_grad():
        base = sim()
        with ablated(model, names, means):
            return float((base - sim()).mean())


@pytest.mark.parametrize("seed", range(4))
def test_the_ablation_test_removes_the_early_head_that_causes_the_similarity(seed):
    model, head, prompt = chain(seed)
    images = _images(seed)
    labels = np.array([0] * 10 + [1] * 10)
    d = decompose(model, images)
    red = explain(model, images, d.parts.numpy(), d.names, prompt, labels, k=1, draws=100, bootstrap=200,
                  seed=seed, states=[0])[0]
    contribution = {t["component"]: t["contribution"] for t in red["top"]}
    assert red["top"][0]["component"] == "blocks.1.mlp"            # the MLP writes the similarity
    assert abs(contribution.get(head, 0.0)) < 0.01 * red["similarity"]  # the head writes none of it
    a = red["ablation"]
    assert a["ranked_by"] == "total_effect" and a["effect_method"] == "exact" and a["held_out"]
    assert a["components"] == [head] and a["estimated_on"] == 5 and a["images"] == 5
    assert a["drop"] >= 0.7 * a["similarity"] and a["p_value"] < 0.01
    # the head's ablation takes more than the MLP's: the greedy choice is the larger real drop
    means = component_means(model, images, [n for n in d.names if n != "embed"])
    assert _drop(model, images[:10], prompt, [head], means) > _drop(model, images[:10], prompt, ["blocks.1.mlp"],
                                                                    means)


def test_greedy_selection_adds_the_component_that_drops_the_similarity_most_with_those_chosen():
    model, head, prompt = chain(0)
    images = _images(0)[:10]
    pool = [n for n in decompose(model, images[:1]).names if n != "embed"]
    means = component_means(model, _images(0), pool)
    chosen, drops = greedy_exact(model, images, prompt, pool, means, 2)
    second = max((c for c in pool if c != chosen[0]), key=lambda c: _drop(model, images, prompt, [chosen[0], c], means))
    assert chosen == [head, second]
    assert drops[0] == pytest.approx(_drop(model, images, prompt, [head], means), abs=1e-5)
    assert drops[1] == pytest.approx(_drop(model, images, prompt, chosen, means), abs=1e-5)


def random_vit(seed: int, library: str = "openai"):
    """A random 3-layer, 2-head tiny ViT CLIP (default initialisation) in ``library``'s layout and a random
    unit prompt."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vision = clip.model.VisionTransformer(RES, PATCH, 128, 3, 2, DIM)  # heads = width // 64, as converters read it
    prompt = np.random.default_rng(seed).standard_normal(DIM)
    model = wrap_module(_shell(vision, seed), name=f"random-{seed}", sha256=f"random-{seed}")
    if library != "openai":
        pytest.importorskip({"openclip": "open_clip", "hf": "transformers"}[library])
        from clipxai.models.convert import openai_as
        model = wrap_module(openai_as(model.module.state_dict(), library), name=f"random-{library}",
                            sha256=f"random-{library}")
    return model, prompt / np.linalg.norm(prompt)


@pytest.mark.parametrize("seed", range(2))
def test_attribution_patching_is_the_ablations_first_order_effect(seed):
    """With mean writes close to the image's own (a reference of slightly noisy copies of it), the
    first-order estimate must match each single ablation's real drop."""
    model, prompt = random_vit(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, RES, RES, generator=g)
    reference = (x + 0.01 * torch.randn(4, 3, RES, RES, generator=g)).clamp(0, 1)
    pool = [n for n in decompose(model, x).names if n != "embed"]
    means = component_means(model, reference, pool)
    estimate = attribution_effects(model, x, prompt, pool, means).mean(axis=0)
    real = np.array([_drop(model, x, prompt, [c], means) for c in pool])
    assert np.abs(real).max() > 1e-4
    assert np.abs(estimate - real).max() <= 0.1 * np.abs(real).max()
    ranked = rank_by_total_effect(model, x, prompt, pool, means, 3, method="attribution")
    assert ranked["method"] == "attribution" and ranked["components"] == [pool[i] for i in np.argsort(-estimate)[:3]]


def test_probes_change_no_value_and_the_helpers_refuse_what_they_cannot_do():
    model, head, prompt = chain(2)
    x = _images(2)[:3]
    with torch.no_grad():
        plain = model.embed_images(x)
    with torch.enable_grad(), probed(model, [head, "blocks.1.mlp"]) as store:
        probed_out = model.embed_images(x)
    assert torch.equal(plain, probed_out.detach())
    assert [len(store[n]) for n in (head, "blocks.1.mlp")] == [1, 1]
    assert store[head][0][0].shape == (3, (RES // PATCH) ** 2 + 1, WIDTH // HEADS)
    assert not any(m._forward_hooks for m in model.module.modules())
    with pytest.raises(ClipxaiError, match="not whole attentions"):
        with probed(model, ["blocks.0.attn"]):
            pass
    with pytest.raises(ClipxaiError, match="estimated by"):
        rank_by_total_effect(model, x, prompt, [head], {}, 1, method="guess")
    est, test, held_out = halves(np.arange(7), 2, 8)
    assert held_out and list(est) == [0, 6] and list(test) == [1, 3, 5] and not set(est) & set(test)
    assert halves(np.arange(1), 8, 8)[2] is False


@pytest.mark.parametrize("library", ["openai", "openclip", "hf"])
def test_a_pass_started_from_the_cached_residual_equals_the_whole_pass(library):
    """Per-image ablations encoded from the block before their first ablated one give the embeddings
    of the whole forward pass, in every layout, and the model's blocks are its own again afterwards."""
    model, _ = random_vit(3, library)
    x = torch.rand(3, 3, RES, RES, generator=torch.Generator().manual_seed(3))
    pool = list_components(model, kinds=("head", "mlp"))
    means = component_means(model, x, pool)
    blocks = [m for m in model.module.modules() if m.__class__.__name__ not in ("_Pass", "_Feed")]
    prefix = Prefix(model, x)
    with torch.no_grad():
        assert torch.allclose(prefix.embeddings, model.embed_images(x), atol=1e-5)
    rows = [2, 0, 2]
    for layer in range(3):
        later = [n for n in pool if int(n.split(".")[1]) >= layer]
        mask = np.zeros((3, len(later)), bool)
        mask[0, 0] = mask[1, -1] = mask[2, [0, -1]] = True       # each image its own set, all from `layer` on
        with torch.no_grad(), ablated_rows(model, later, means, mask):
            whole = model.embed_images(x[rows])
            with prefix.starting_at(layer, rows):
                started = model.embed_images(x[rows])
        assert torch.allclose(started, whole, atol=1e-5), (library, layer)
        assert (started - model.embed_images(x[rows]).detach()).abs().max() > 1e-4   # the ablation acts
    assert [m for m in model.module.modules() if m.__class__.__name__ not in ("_Pass", "_Feed")] == blocks
    with pytest.raises(ClipxaiError, match="cached residual stream"):
        with torch.no_grad(), prefix.starting_at(1, [0, 1]):
            model.embed_images(x)


@pytest.mark.parametrize("library", ["openai", "openclip", "hf"])
def test_the_residuals_kept_in_the_decompositions_pass_are_the_tested_images_own_prefix(library):
    """The residual streams kept for a few images of the decomposition's pass (each batch picking its
    own) equal those of encoding those images alone, so the ablation test started from them gives the
    same drops; past its byte budget the keeping gives up instead of holding more."""
    from clipxai.analysis.explain.paired import paired_ablation_test
    from clipxai.models.prefix import keeping_residuals

    model, _ = random_vit(3, library)
    x = torch.rand(7, 3, RES, RES, generator=torch.Generator().manual_seed(5))
    rows = np.array([1, 4, 5])                                   # spread over the batches of 3
    with keeping_residuals(model) as kept:
        def select(start, stop):
            kept.select = torch.as_tensor(rows[(rows >= start) & (rows < stop)] - start)
        dec = decompose(model, x, batch_size=3, before_batch=select)
    order = [2, 0]                                               # images 5 and 1, in that order
    got, alone = kept.prefix(model, order, dec.embedding[rows[order]]), Prefix(model, x[rows[order]])
    for a, b in zip(got.outputs, alone.outputs):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5)
    pool = list_components(model, kinds=("head", "mlp"))
    means = component_means(model, x, pool)
    target = torch.nn.functional.normalize(dec.embedding[0], dim=0).numpy()
    args = dict(means=means, k=2, draws=100, seed=1, batch_size=4)
    a = paired_ablation_test(model, x[rows[order]], target, pool[:2], pool, prefix=got, **args)
    b = paired_ablation_test(model, x[rows[order]], target, pool[:2], pool, **args)
    assert a["p_value"] == b["p_value"] and abs(a["drop"] - b["drop"]) < 1e-5 and a["drop"] != 0
    with keeping_residuals(model, budget=1000) as small:
        decompose(model, x, batch_size=3)
    assert not small.complete and small.prefix(model, [0], dec.embedding[:1]) is None


@pytest.mark.parametrize("library", ["openai", "openclip", "hf"])
def test_head_probes_sit_where_the_attention_hands_over_its_heads_and_agree_with_recomputed_ones(library, monkeypatch):
    """Attribution's head probes are added to what each attention hands its output projection, so no
    head is recomputed, and the effects equal those of probes on recomputed heads (the fallback for an
    attention of another form) in every layout."""
    import clipxai.models.ablate as ablate_module

    model, prompt = random_vit(4, library)
    x = torch.rand(3, 3, RES, RES, generator=torch.Generator().manual_seed(4))
    pool = list_components(model, kinds=("head", "mlp"))
    means = component_means(model, x, pool)
    recomputed = []
    real_outputs = ablate_module.head_outputs
    monkeypatch.setattr(ablate_module, "head_outputs", lambda *a: recomputed.append(1) or real_outputs(*a))
    read = attribution_effects(model, x, prompt, pool, means)
    assert not recomputed

    @contextlib.contextmanager
    def unseen(_model, _edit):
        yield
    monkeypatch.setattr(ablate_module, "projection_inputs", unseen)
    again = attribution_effects(model, x, prompt, pool, means)
    assert recomputed and np.abs(read).max() > 1e-4
    assert np.allclose(read, again, rtol=1e-4, atol=1e-6 * np.abs(read).max())
