"""Ablation does what the decomposition predicts, and the per-state explanation finds a planted mechanism.

The planted model is a tiny OpenAI-format ViT built by hand: its patch embedding reads how much
redder than blue each patch is, one head (a different one per seed) averages that over the image
and writes a strong direction that the final norm and projection turn into the prompt's
embedding, and every other head and MLP writes weak noise. Red snapshots should then be
explained by that head, and mean-ablating it alone should take the similarity away. Without the
planted head no component may be claimed significant more often than chance allows.
"""

import numpy as np
import pytest
import torch

from clipxai.analysis.explain.ablate import ablated, component_means
from clipxai.analysis.explain.decompose import decompose, decomposition_names
from clipxai.analysis.explain.states import (
    ablation_test,
    component_words,
    contributions,
    explain,
    explain_states,
    text_basis,
)
from clipxai.errors import ClipxaiError
from clipxai.models import wrap_module
from clipxai.models.ablate import ablated_rows, summing_writes
from clipxai.models.components import list_components

clip = pytest.importorskip("clip")

WIDTH, DIM, HEADS, LAYERS, RES, PATCH = 64, 64, 8, 3, 32, 8
SEEDS = range(20)


def _shell(vision: torch.nn.Module, seed: int) -> torch.nn.Module:
    """An OpenAI-format CLIP around ``vision`` (a minimal text tower; the tests never read text)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = clip.model.CLIP(embed_dim=vision.output_dim, image_resolution=RES, vision_layers=1,
                                 vision_width=64, vision_patch_size=PATCH, context_length=8, vocab_size=64,
                                 transformer_width=64, transformer_heads=1, transformer_layers=1)
    module.visual = vision
    return module.float()


def multihead(library: str = "openai", seed: int = 0):
    """A random 3-layer, 2-head tiny ViT CLIP in one of the three layouts."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = _shell(clip.model.VisionTransformer(32, 8, 128, 3, 2, 32), seed)
    if library != "openai":
        pytest.importorskip({"openclip": "open_clip", "hf": "transformers"}[library])
        from clipxai.models.convert import openai_as
        module = openai_as(module.state_dict(), library)
    return wrap_module(module, name=f"multihead-{library}", sha256=f"multihead-{library}-{seed}")


def planted(seed: int, plant: bool = True, strength: float = 10.0):
    """(model, the planted head's name, the prompt's unit embedding [D]) for one seed."""
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vision = clip.model.VisionTransformer(RES, PATCH, WIDTH, LAYERS, HEADS, DIM)
    layer, head = int(rng.integers(LAYERS)), int(rng.integers(HEADS))
    d = WIDTH // HEADS
    with torch.no_grad():
        # channel 0 of each patch token: (red - blue) of the patch, strongly; everything else faint
        vision.conv1.weight.mul_(0.02)
        vision.conv1.weight[0] = 0
        vision.conv1.weight[0, 0], vision.conv1.weight[0, 2] = 50 / PATCH ** 2, -50 / PATCH ** 2
        vision.class_embedding.zero_()
        vision.positional_embedding.mul_(0.1)
        for block in vision.transformer.resblocks:   # every head and MLP writes weak noise
            block.attn.out_proj.weight.mul_(0.05)
            block.mlp.c_proj.weight.mul_(0.05)
        q, _ = torch.linalg.qr(torch.randn(WIDTH, DIM, generator=torch.Generator().manual_seed(seed)))
        vision.proj.copy_(q)
        # the planted direction: zero-mean (the final norm keeps it), off channel 0 and the class token's row
        cls = vision.ln_pre(vision.class_embedding + vision.positional_embedding[0]).double().numpy()
        avoid, _ = np.linalg.qr(np.stack([np.ones(WIDTH), np.eye(WIDTH)[0], cls], axis=1))
        u = rng.standard_normal(WIDTH)
        u = torch.tensor(u - avoid @ (avoid.T @ u), dtype=torch.float32)
        u /= u.norm()
        if plant:   # uniform attention from the class token, reading channel 0, writing strength * u
            attn = vision.transformer.resblocks[layer].attn
            rows = slice(head * d, (head + 1) * d)
            for part in range(3):
                attn.in_proj_weight[part * WIDTH:(part + 1) * WIDTH][rows] = 0
                attn.in_proj_bias[part * WIDTH:(part + 1) * WIDTH][rows] = 0
            attn.in_proj_weight[2 * WIDTH + head * d, 0] = 1.0
            attn.out_proj.weight[:, rows] = 0
            attn.out_proj.weight[:, head * d] = strength * u
        prompt = u @ vision.proj
    model = wrap_module(_shell(vision, seed), name=f"planted-{seed}", sha256=f"planted-{seed}")
    return model, f"blocks.{layer}.attn.head{head}", (prompt / prompt.norm()).numpy()


def coloured(n: int, generator: torch.Generator, red: bool) -> torch.Tensor:
    """Random images whose every patch is clearly redder (or bluer) than it is blue (red)."""
    x = torch.rand(n, 3, RES, RES, generator=generator)
    high, low = 0.6 + 0.4 * x[:, 0], 0.4 * x[:, 2]
    x[:, 0], x[:, 2] = (high, low) if red else (low, high)
    return x


def vocabulary(prompt: np.ndarray, seed: int):
    """Twenty words with random unit embeddings, and 'red' whose embedding is the prompt's."""
    other = np.random.default_rng(seed + 1000).standard_normal((19, len(prompt)))
    words = ["red"] + [f"word{i}" for i in range(19)]
    text = np.concatenate([prompt[None], other / np.linalg.norm(other, axis=1, keepdims=True)])
    return words, text


# -- ablation -------------------------------------------------------------------------------

LIBRARIES = ["openai", "openclip", "hf"]


@pytest.fixture(scope="module")
def models():
    return {lib: multihead(lib) for lib in LIBRARIES}


def _x(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("library", LIBRARIES)
def test_zero_ablation_changes_the_embedding_as_the_decomposition_predicts(models, library):
    model = models[library]
    x = _x(6, 1)
    d0 = decompose(model, x)
    last = LAYERS - 1
    # The last components write straight into the final residual: removing them takes exactly their
    # parts away, the final norm rescaling what is left by the ratio of the two scales.
    for removed in (["blocks.2.mlp"], ["blocks.2"], ["blocks.2.attn.head1", "blocks.2.mlp"]):
        with ablated(model, removed, mode="zero"):
            d1 = decompose(model, x)
        names = [n for n in d0.names if any(n == r or n.startswith(r + ".") for r in removed)]
        part = sum(d0.part(n) for n in names)
        predicted = (d0.scale / d1.scale)[:, None] * (d0.embedding - d0.bias - part) + d0.bias
        assert (predicted - d1.embedding).abs().max() <= 1e-5 * d0.embedding.abs().max(), removed
    assert all(m.out_proj.bias.abs().max() == 0 for m in model.module.modules() if hasattr(m, "out_proj"))
    assert last == 2


@pytest.mark.parametrize("library", LIBRARIES)
def test_mean_ablation_writes_the_mean_and_leaves_the_other_parts(models, library):
    model = models[library]
    x, reference = _x(5, 2), _x(16, 3)
    names = list_components(model, kinds=("embed", "block", "attn", "head", "mlp"))
    means = component_means(model, reference, names)
    assert means["blocks.1.attn.head0"].shape == (17, 64) and means["blocks.1.mlp"].shape == (17, 128)
    d0 = decompose(model, x)
    with ablated(model, ["blocks.2.mlp"], means):
        d1 = decompose(model, x)   # sees the MLP's replaced write
    assert d1.sum_error <= 1e-4
    mlp = d1.names.index("blocks.2.mlp")
    written = d1.parts[:, mlp] * d1.scale[:, None]   # the same mean for every image, before the norm's scale
    assert (written - written[0]).abs().max() <= 1e-5 * written.abs().max()
    keep = [i for i, n in enumerate(d0.names) if n not in ("embed", "blocks.2.mlp")]
    before, after = d0.parts[:, keep] * d0.scale[:, None, None], d1.parts[:, keep] * d1.scale[:, None, None]
    assert (before - after).abs().max() <= 1e-5 * before.abs().max()
    # replacing every head of a layer by its mean is replacing the whole attention by its mean
    with ablated(model, ["blocks.1.attn.head0", "blocks.1.attn.head1"], means):
        heads = model.embed_images(x)
    with ablated(model, ["blocks.1.attn"], means):
        whole = model.embed_images(x)
    assert (heads - whole).abs().max() <= 1e-5 * whole.abs().max()


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_batch_with_one_ablation_per_image_equals_each_image_ablated_alone(models, library):
    model = models[library]
    x, reference = _x(4, 5), _x(16, 6)
    names = ["blocks.0.attn.head1", "blocks.1.mlp", "blocks.2.attn.head0", "embed"]
    means = component_means(model, reference, names)
    mask = np.array([[True, False, False, False], [False, True, True, False], [False, False, False, False],
                     [True, True, False, True]])
    with ablated_rows(model, names, means, mask):
        batched = model.embed_images(x)
    for b, row in enumerate(mask):
        with ablated(model, [n for n, on in zip(names, row) if on], means):
            alone = model.embed_images(x[b:b + 1])
        assert (batched[b] - alone[0]).abs().max() <= 1e-5 * alone.abs().max(), (library, b)
    assert (batched[2] - model.embed_images(x[2:3])[0]).abs().max() <= 1e-5 * batched.abs().max()
    with pytest.raises(ClipxaiError, match="mask"), ablated_rows(model, names, means, mask[:, :2]):
        pass
    with pytest.raises(ClipxaiError, match="batch of 2"), ablated_rows(model, names, means, mask):
        model.embed_images(x[:2])


@pytest.mark.parametrize("library", LIBRARIES)
def test_mean_writes_taken_inside_the_decomposition_equal_a_pass_of_their_own(models, library):
    model = models[library]
    images, rows = _x(11, 7), np.array([0, 3, 4, 10])
    names = [n for n in decomposition_names(model) if n != "embed"]
    with summing_writes(model, names) as sums:
        def select(start, stop):
            sums.select = torch.as_tensor(rows[(rows >= start) & (rows < stop)] - start)
        dec = decompose(model, images, batch_size=4, before_batch=select)   # batches 0-3, 4-7, 8-10
    inside, alone = sums.means(), component_means(model, images[rows], names)
    assert sorted(inside) == sorted(alone) and all(sums.counts[n] == len(rows) for n in names)
    for n in names:
        assert inside[n].shape == alone[n].shape
        assert (inside[n] - alone[n]).abs().max() <= 1e-5 * alone[n].abs().max().clamp_min(1e-6), (library, n)
    assert dec.sum_error <= 1e-4                           # the decomposition itself is unchanged by the sums
    assert (dec.embedding - model.embed_images(images)).abs().max() <= 1e-5 * dec.embedding.abs().max()


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_model_is_untouched_outside_the_context_and_gradients_flow_inside(models, library):
    model = models[library]
    x = _x(3, 4)
    names = ["blocks.0.attn.head1", "blocks.1.mlp", "blocks.2.attn"]
    means = component_means(model, _x(8, 5), names)
    with torch.no_grad():
        before = model.embed_images(x)
    state = {k: v.clone() for k, v in model.module.state_dict().items()}
    grads = []
    for context in (ablated(model, names, means), ablated(model, names, mode="zero"), None):
        image = x.clone().requires_grad_(True)
        if context is None:
            model.embed_images(image).sum().backward()
        else:
            with context:
                out = model.embed_images(image)
                assert not torch.equal(out.detach(), before)
                out.sum().backward()
        assert image.grad is not None and torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0
        grads.append(image.grad)
    assert not torch.allclose(grads[0], grads[2])
    with torch.no_grad():
        assert torch.equal(model.embed_images(x), before)
    assert all(torch.equal(v, state[k]) for k, v in model.module.state_dict().items())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.module.modules())


def test_ablation_refuses_what_it_cannot_do(models):
    model = models["openai"]
    with pytest.raises(ClipxaiError, match="needs the mean of blocks.1.mlp"):
        with ablated(model, ["blocks.1.mlp"]):
            pass
    with pytest.raises(ClipxaiError, match="not one of mean, zero"):
        with ablated(model, ["blocks.1.mlp"], mode="half"):
            pass
    with pytest.raises(ClipxaiError, match="has 3 layers"):
        with ablated(model, ["blocks.3.mlp"], mode="zero"):
            pass
    # backend names work too
    means = component_means(model, _x(2, 6), ["visual.transformer.resblocks.1.mlp"])
    with ablated(model, ["blocks.1.mlp"], means):
        model.embed_images(_x(1, 7))
    with ablated(model, ["blocks.1.mlp"], {"blocks.1.mlp": torch.zeros(50, 128)}):   # another model's mean
        with pytest.raises(ClipxaiError, match="a different model or input size"):
            model.embed_images(_x(1, 7))
    assert not any(m._forward_hooks for m in model.module.modules())


# -- states: contributions, words, basis ------------------------------------------------------

def test_contributions_add_up_to_the_cosine():
    rng = np.random.default_rng(0)
    parts, prompts = rng.standard_normal((7, 5, 16)), rng.standard_normal((2, 16))
    c = contributions(parts, prompts)
    emb = parts.sum(1)
    unit = np.linalg.norm(emb, axis=1, keepdims=True), np.linalg.norm(prompts, axis=1, keepdims=True)
    cos = (emb / unit[0]) @ (prompts / unit[1]).T
    assert c.shape == (7, 5, 2) and np.allclose(c.sum(1), cos)


def test_the_text_basis_finds_the_words_a_component_writes():
    rng = np.random.default_rng(0)
    text = rng.standard_normal((30, 24))
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    words = [f"w{i}" for i in range(30)]
    a, b = rng.standard_normal((2, 200, 1))
    outputs = 3 * a * text[7] + b * text[21] + 5 * text[2]   # the constant 5 * w2 is no variance
    basis = text_basis(outputs, (words, text), k=3)
    assert [b["word"] for b in basis[:2]] == ["w7", "w21"]
    assert sum(b["variance"] for b in basis[:2]) > 0.99
    assert component_words(text[4] + 0.1 * text[9], (words, text), k=2)[0] == "w4"


def _naive_text_basis(outputs: np.ndarray, words: list[str], bank: np.ndarray, k: int) -> list[dict]:
    """The text basis by its definition: each chosen direction projected out of every word and output."""
    x = np.asarray(outputs, dtype=np.float64)
    x = x - x.mean(axis=0)
    total = float((x ** 2).sum())
    t = np.asarray(bank, dtype=np.float64).copy()
    basis: list[dict] = []
    chosen: list[int] = []
    for _ in range(min(k, len(words))):
        length = (t ** 2).sum(axis=1)
        explained = np.where(length > 1e-9, ((x @ t.T) ** 2).sum(axis=0) / np.maximum(length, 1e-9), 0.0)
        explained[chosen] = -1.0
        best = int(np.argmax(explained))
        if total <= 0 or explained[best] <= 0:
            break
        u = t[best] / np.linalg.norm(t[best])
        basis.append({"word": str(words[best]), "variance": float(explained[best] / total)})
        chosen.append(best)
        x = x - np.outer(x @ u, u)
        t = t - np.outer(t @ u, u)
    return basis


def test_the_text_basis_chooses_as_its_definition_does():
    from clipxai.analysis.explain.states import _text_basis

    rng = np.random.default_rng(3)
    for trial in range(6):
        v, d, n = 400, 32, [10, 50, 200][trial % 3]
        bank = rng.standard_normal((v, d))
        bank /= np.linalg.norm(bank, axis=1, keepdims=True)
        outputs = rng.standard_normal((n, 3)) @ bank[rng.choice(v, 3)] * [4, 2, 1][trial % 3] \
            + 0.3 * rng.standard_normal((n, d))
        words = [f"w{i}" for i in range(v)]
        fast, slow = _text_basis(outputs, words, bank, 4), _naive_text_basis(outputs, words, bank, 4)
        assert [b["word"] for b in fast] == [b["word"] for b in slow]
        assert np.allclose([b["variance"] for b in fast], [b["variance"] for b in slow], rtol=1e-9, atol=1e-12)


def test_explain_states_keeps_its_contract():
    rng = np.random.default_rng(1)
    parts = rng.standard_normal((12, 4, 8))
    parts[:6, 2] += 3 * np.eye(8)[0]
    labels = np.array([0] * 6 + [1] * 5 + [-1])
    out = explain_states(parts, np.eye(8)[0], labels, ["embed", "a", "b", "c"], top=2, draws=200)
    assert [r["state"] for r in out] == [0, 1] and [r["snapshots"] for r in out] == [6, 5]
    top = out[0]["top"][0]
    assert top["component"] == "b" and top["ci95"][0] <= top["contribution"] <= top["ci95"][1]
    assert out[0]["separating"][0]["component"] == "b" and out[0]["separating"][0]["separates"]
    assert out == explain_states(parts, np.eye(8)[0], labels, ["embed", "a", "b", "c"], top=2, draws=200)
    with pytest.raises(ClipxaiError, match="do not fit together"):
        explain_states(parts, np.eye(8)[0], labels[:5], ["embed", "a", "b", "c"])


# -- the planted mechanism --------------------------------------------------------------------

def _planted_run(seed: int, plant: bool):
    model, head, prompt = planted(seed, plant)
    g = torch.Generator().manual_seed(seed)
    images = (torch.cat([coloured(12, g, True), coloured(12, g, False)]) if plant
              else torch.rand(24, 3, RES, RES, generator=g))
    labels = np.array([0] * 12 + [1] * 12)
    return model, head, prompt, images, labels


def test_a_planted_head_is_found_and_ablating_it_removes_the_similarity():
    found = 0
    for seed in SEEDS:
        model, head, prompt, images, labels = _planted_run(seed, plant=True)
        d = decompose(model, images)
        assert d.sum_error <= 1e-4
        words = vocabulary(prompt, seed)
        red = explain(model, images, d.parts.numpy(), d.names, prompt, labels, vocabulary=words, k=1,
                      draws=100, bootstrap=300, seed=seed, states=[0])[0]
        assert set(red) >= {"state", "top", "ablation"}
        assert set(red["ablation"]) >= {"k", "drop", "random_drop", "p_value"}
        first, test = red["top"][0], red["ablation"]
        found += (first["component"] == head and test["components"] == [head]
                  and test["drop"] >= 0.8 * test["similarity"] and first["words"][0] == "red")
    assert found >= 0.95 * len(SEEDS)


def test_without_a_planted_head_no_component_is_claimed():
    claimed = 0
    for seed in SEEDS:
        model, _, prompt, images, labels = _planted_run(seed, plant=False)
        d = decompose(model, images)
        state = explain_states(d.parts.numpy(), prompt, labels, d.names, top=2, draws=100, seed=seed)[0]
        pool = [n for n in d.names if n != "embed"]
        means = component_means(model, images, pool)
        tested = [t["component"] for t in state["top"] if t["component"] != "embed"]
        test = ablation_test(model, images[:12], prompt, tested, means=means, k=1, pool=pool, draws=100,
                             seed=seed)
        claimed += test["p_value"] < 0.01
    assert claimed <= 0.05 * len(SEEDS)
