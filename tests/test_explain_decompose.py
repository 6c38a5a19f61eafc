"""The image embedding splits exactly into its components' parts, in every backend's layout.

One tiny multi-head OpenAI-format ViT is converted into open_clip's and Hugging Face's layouts;
with the bundled toy models that makes five towers whose parts must add up to the embedding each
returns (Gandelsman et al.'s first test of any attribution), and whose components must carry the
same canonical names.
"""

import pytest
import torch

from clipxai.analysis.explain.decompose import decompose
from clipxai.models import load_clip, wrap_module
from clipxai.models.components import (
    ComponentError,
    component,
    list_components,
    module_name,
    vision_tower,
)

LAYERS, HEADS = 3, 2


def tiny_vit(seed: int = 0):
    """An OpenAI-format CLIP with a 3-layer, 2-head, 32-px ViT image tower (random weights)."""
    clip = pytest.importorskip("clip")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return clip.model.CLIP(embed_dim=32, image_resolution=32, vision_layers=LAYERS,
                               vision_width=64 * HEADS, vision_patch_size=8, context_length=16,
                               vocab_size=49408, transformer_width=64, transformer_heads=1,
                               transformer_layers=1).float()


@pytest.fixture(scope="module")
def towers():
    """Five ViT CLIPs: the tiny one in three libraries, and the two bundled toys."""
    from clipxai.models.convert import openai_as
    module = tiny_vit()
    out = {"openai": wrap_module(module, name="tiny-vit")}
    for library in ("openclip", "hf"):
        pytest.importorskip({"openclip": "open_clip", "hf": "transformers"}[library])
        out[library] = wrap_module(openai_as(module.state_dict(), library), name=f"tiny-vit-{library}")
    out["toy"] = load_clip("toy", "cpu")
    out["toy-b"] = load_clip("toy-b", "cpu")
    return out


BACKENDS = ["openai", "openclip", "hf", "toy", "toy-b"]


def images(model, n: int = 20, seed: int = 0, size: int | None = None) -> torch.Tensor:
    r = size or model.input_resolution
    return torch.rand(n, 3, r, r, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_parts_add_up_to_the_embedding_the_model_returns(towers, backend):
    model = towers[backend]
    x = images(model)
    d = decompose(model, x, batch_size=8)
    tower = vision_tower(model)
    assert d.parts.shape == (20, 1 + tower.layers * (tower.heads + 1), model.embed_dim)
    assert d.names[:2] == ["embed", "blocks.0.attn.head0"] and d.names[-1] == f"blocks.{tower.layers - 1}.mlp"
    assert d.sum_error <= 1e-4
    with torch.no_grad():
        assert torch.equal(d.embedding, model.embed_images(x))
    assert d.parts.dtype == torch.float32 and not d.parts.requires_grad


@pytest.mark.parametrize("backend", ["openai", "openclip", "hf"])
def test_the_three_layouts_give_the_same_parts(towers, backend):
    x = images(towers["openai"], n=6)
    ref, got = decompose(towers["openai"], x), decompose(towers[backend], x)
    assert got.names == ref.names
    assert (got.parts - ref.parts).abs().max() < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_heads_are_read_from_the_pass_where_it_can_and_equal_their_recomputation(towers, backend):
    """The heads' outputs are taken from what each attention hands its output projection (nothing
    recomputed) in every layout but open_clip's fused batch-first attention, and agree with the
    heads recomputed from the attention's input."""
    from clipxai.analysis.explain.decompose import _class_heads, _recording
    from clipxai.models.components import attention_params

    model = towers[backend]
    tower = vision_tower(model)
    x = images(model, n=5)
    with _recording(model, tower) as store, torch.no_grad():
        model.embed_images(x)
    read = [("z", i) in store for i in range(tower.layers)]
    assert all(read) if backend != "openclip" else not any(read)
    for i in range(tower.layers):
        params = attention_params(model.module.get_submodule(tower.attn_name(i)))
        recomputed = {k: v for k, v in store.items() if k != ("z", i)}
        with torch.no_grad():
            assert torch.allclose(_class_heads(params, store, i, 5), _class_heads(params, recomputed, i, 5),
                                  atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("backend", ["openai", "hf", "toy"])
def test_per_patch_parts_add_up_to_each_head(towers, backend):
    model = towers[backend]
    d = decompose(model, images(model, n=5), per_patch=True)
    tower = vision_tower(model)
    conv = "vision_model.embeddings.patch_embedding" if backend == "hf" else "visual.conv1"
    tokens = (model.input_resolution // model.module.get_submodule(conv).kernel_size[0]) ** 2 + 1
    assert d.patches.shape == (5, tower.layers * tower.heads, tokens, model.embed_dim)
    heads = d.parts[:, [d.names.index(n) for n in d.head_names]]
    assert (d.patches.sum(dim=2) - heads).abs().max() <= 1e-5 * heads.abs().max()


def test_images_of_another_size_are_resized_as_the_model_resizes_them(towers):
    model = towers["openai"]
    x = images(model, n=4, size=45)
    d = decompose(model, x)
    with torch.no_grad():
        assert torch.equal(d.embedding, model.embed_images(x))
    assert d.sum_error <= 1e-4


def test_no_images_give_an_empty_decomposition(towers):
    d = decompose(towers["openai"], torch.zeros(0, 3, 32, 32))
    assert d.parts.shape[0] == 0 and d.sum_error == 0.0


def test_a_resnet_image_tower_is_refused_in_one_sentence(tiny_resnet_module):
    module = tiny_resnet_module
    model = wrap_module(module, name="tiny-rn")
    with pytest.raises(ComponentError) as err:
        decompose(model, torch.rand(2, 3, 32, 32))
    message = str(err.value)
    assert message == "clipxai decomposes ViT image towers only; tiny-rn has a ResNet image tower."
    with pytest.raises(ComponentError, match="ResNet"):
        component(model, "blocks.0.mlp")


# -- canonical names ------------------------------------------------------------------------

MODULES = {
    "openai": ("visual.ln_pre", "visual.transformer.resblocks.{i}", "attn", "mlp"),
    "openclip": ("visual.ln_pre", "visual.transformer.resblocks.{i}", "attn", "mlp"),
    "hf": ("vision_model.pre_layrnorm", "vision_model.encoder.layers.{i}", "self_attn", "mlp"),
    "toy": ("visual.ln_pre", "visual.transformer.resblocks.{i}", "attn", "mlp"),
}


@pytest.mark.parametrize("backend", list(MODULES))
def test_canonical_names_map_to_the_backend_modules_and_back(towers, backend):
    model = towers[backend]
    ln_pre, block, attn, mlp = MODULES[backend]
    modules = dict(model.module.named_modules())
    tower = vision_tower(model)
    blk, h = block.format(i=1), tower.heads - 1
    expected = {"embed": ln_pre, "blocks.1": blk, "blocks.1.attn": f"{blk}.{attn}",
                f"blocks.1.attn.head{h}": f"{blk}.{attn}", "blocks.1.mlp": f"{blk}.{mlp}"}
    for name, module in expected.items():
        assert module_name(model, name) == module and module in modules
        if ".head" not in name:
            assert component(model, module).name == name   # the backend's own spelling is read too
    head = component(model, f"{blk}.{attn}.head{h}")
    assert (head.name, head.kind, head.layer, head.head) == (f"blocks.1.attn.head{h}", "head", 1, h)
    assert list_components(model) == decompose(model, images(model, n=1)).names
    everything = list_components(model, kinds=("embed", "block", "attn", "head", "mlp"))
    assert len(everything) == 1 + tower.layers * (tower.heads + 3)
    assert all(component(model, n).name == n for n in everything)


@pytest.mark.parametrize("backend", ["openai", "hf"])
def test_names_the_model_lacks_are_one_clear_sentence(towers, backend):
    model = towers[backend]
    cases = {
        "blocks.14.mlp": f"{model.name} has 3 layers (0-2); blocks.14.mlp names layer 14.",
        "blocks.1.attn.head5": "has 2 heads (0-1) per layer; blocks.1.attn.head5 names head 5.",
        "blocks.1.mlp.head0": "names no component",
        "mlp": "names no component",
        "blocks.x": "names no component",
        f"{MODULES[backend][1].format(i=0)}.{MODULES[backend][3]}.fc1": "names no component",
    }
    for name, text in cases.items():
        with pytest.raises(ComponentError) as err:
            component(model, name)
        assert text in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ComponentError, match="did you mean blocks.1.mlp"):
        component(model, "blocks.1.mpl")
    with pytest.raises(ComponentError, match="not a kind"):
        list_components(model, kinds=("neuron",))
