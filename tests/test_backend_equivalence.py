"""One tiny OpenAI-format CLIP in three libraries: the same features, activations and ascent.

The tiny random CLIP is converted into open_clip's local-dir layout and into a transformers
``save_pretrained`` folder, then loaded back through ``load_clip``. If a loader got a weight,
a normalisation, a tokenizer or a layout wrong, the features would differ by far more than
rounding.
"""

import numpy as np
import pytest
import torch

import clipxai
from clipxai.models import DEFAULT_HOOKS, load_clip, random_clip, wrap_module

pytest.importorskip("open_clip")
pytest.importorskip("transformers")

TEXTS = ["a red heart", "x", "❤️", "a long phrase about a red heart drawn in chalk on a wall, don't you think?",
         "two wedding rings on a table"]


def _first(x):
    return x[0] if isinstance(x, list) else x


@pytest.fixture(scope="module")
def reference():
    return wrap_module(random_clip("tiny", seed=0), name="tiny", device="cpu")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from clipxai.models.convert import write_hf_dir, write_openclip_dir
    root = tmp_path_factory.mktemp("converted")
    sd = random_clip("tiny", seed=0).state_dict()
    return {"openclip": write_openclip_dir(sd, root / "openclip"), "hf": write_hf_dir(sd, root / "hf")}


@pytest.fixture(scope="module", params=["openclip", "hf"])
def converted(request, folders):
    return load_clip(f"{request.param}:{folders[request.param]}", "cpu")


def test_in_memory_modules_of_each_library_are_wrapped(reference):
    from clipxai.models.convert import openai_as
    sd = random_clip("tiny", seed=0).state_dict()
    oc, hf = openai_as(sd, "openclip"), openai_as(sd, "hf")
    ref = reference.encode_text(TEXTS)
    for module, backend in ((oc, "openclip"), (hf, "hf")):
        m = wrap_module(module, name=backend)
        assert m.backend == backend and not any(p.requires_grad for p in m.parameters())
        assert (m.encode_text(TEXTS) - ref).abs().max().item() < 1e-5
    from clipxai.errors import ModelLoadError
    with pytest.raises(ModelLoadError, match="openclip or hf"):
        openai_as(sd, "jax")


def test_the_converted_model_is_read_by_its_own_library(converted):
    kind = {"openclip": "open_clip", "hf": "transformers"}[converted.backend]
    assert type(converted.module).__module__.split(".")[0] == kind
    assert kind.replace("_", "") in "".join(converted.describe()["versions"]).replace("_", "")
    assert (converted.input_resolution, converted.context_length, converted.embed_dim) == (32, 16, 64)


def test_image_features_match(reference, converted):
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        diff = (reference.encode_image(x) - converted.encode_image(x)).abs().max().item()
    assert diff < 1e-5


@pytest.mark.parametrize("full_context", [False, True])
def test_text_features_match(reference, converted, full_context):
    ref = reference.encode_text(TEXTS, full_context=full_context)
    got = converted.encode_text(TEXTS, full_context=full_context)
    assert (ref - got).abs().max().item() < 1e-5


def test_trimmed_text_equals_the_whole_context(converted):
    assert converted.trims_text
    trimmed = converted.encode_text(TEXTS, batch_size=2)
    full = converted.encode_text(TEXTS, full_context=True)
    assert (trimmed - full).abs().max().item() < 1e-5


def test_gradients_to_the_pixels_match(reference, converted):
    grads = []
    for m in (reference, converted):
        x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
        m.encode_image(x).square().sum().backward()
        grads.append(x.grad)
    assert (grads[0] - grads[1]).abs().max().item() < 1e-4 * grads[0].abs().max().item()


@pytest.mark.parametrize("full", [False, True])
def test_default_hooks_record_the_same_batch_first_activations(reference, converted, full):
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    names_ref, names = reference.hook_points(), converted.hook_points()
    assert len(names) == len(names_ref) == 2
    assert converted.hook_points(DEFAULT_HOOKS) == converted.hook_points("default") == names
    with reference.capture(names_ref, batch=3, full=full) as a, converted.capture(names, batch=3, full=full) as b:
        with torch.no_grad():
            reference.encode_image(x)
            converted.encode_image(x)
    for ra, rb in zip(names_ref, names):
        assert a[ra].shape == b[rb].shape == ((3, 17, 64) if full else (3, 64))
        assert (a[ra] - b[rb]).abs().max().item() < 1e-5


def test_same_vocabulary_and_logit_scale(reference, converted):
    assert converted.logit_scale == pytest.approx(reference.logit_scale)
    assert converted.vocabulary() == reference.vocabulary()


def test_ten_ascent_steps_match(reference, converted, tmp_path):
    runs = [_first(clipxai.ascend("a red heart", model_obj=m, steps=10, cutouts=2, quiet=True,
                                  out=str(tmp_path), name=m.backend, snapshot_every=1))
            for m in (reference, converted)]
    ref, got = runs
    assert ref.n == got.n == 10
    assert np.abs(ref.embeddings - got.embeddings).max() < 1e-4
    assert np.abs(ref.images.astype(np.float32) - got.images.astype(np.float32)).max() < 2e-3
    sims = [[r["sim/a red heart"] for r in run.metrics()] for run in runs]
    assert len(sims[0]) == 10 and np.allclose(sims[0], sims[1], atol=1e-5)
    manifest = got.manifest["model"]
    assert manifest["backend"] == converted.backend and manifest["sha256"] == converted.sha256
    assert manifest["versions"]
