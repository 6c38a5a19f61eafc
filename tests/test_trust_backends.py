"""The trust checks run on any backend: tiny random OpenAI-format, open_clip and Hugging Face CLIPs."""

import json

import numpy as np
import pytest
import torch

from clipxai.analysis.trust.evaluate import evaluate_each, evaluate_images
from clipxai.analysis.trust.pathway import embed_with_activations, natural_profile, pathway, pathway_max
from clipxai.models import load_clip, random_clip, wrap_module


@pytest.fixture(scope="module")
def backends():
    from clipxai.models.convert import openai_as

    sd = random_clip("tiny", seed=0).state_dict()
    return {
        "openai": wrap_module(random_clip("tiny", seed=0), name="tiny"),
        "openclip": wrap_module(openai_as(sd, "openclip"), name="tiny-openclip"),
        "hf": wrap_module(openai_as(sd, "hf"), name="tiny-hf"),
        "hf-random": load_clip("random:hf:tiny", "cpu"),
    }


def images(n, seed, size=48):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g)


@pytest.mark.parametrize("backend", ["openai", "openclip", "hf-random"])
def test_an_entry_on_each_backend(backends, backend):
    model = backends[backend]
    judge = backends["openai" if backend != "openai" else "hf"]
    e = evaluate_images(
        model,
        images(3, 0),
        "a red heart",
        judges=[judge],
        reference=images(6, 1),
        labels=["a red heart", "a dog"],
        vocab=["red", "heart", "dog", "tree", "blue"],
        words=["love"],
    )
    assert json.loads(json.dumps(e)) == e
    assert set(e["judges"]) == {judge.name} and e["transfer_rate"] in (0.0, 1.0)
    assert len(e["pathway"]) == len(model.hook_points()) == 2 and e["pathway_max"] > 0
    assert len(e["robustness"]) == 6 and isinstance(e["is_written"], bool)
    assert e["sparse_reading"]["fidelity"] > 0 and e["verdict"].endswith(".")


def test_backends_agree_on_the_same_weights(backends):
    """The same weights in three libraries give the same numbers (their one recorded layout)."""
    x, ref = images(2, 2), images(5, 3)
    runs = {k: pathway(backends[k], x, ref) for k in ("openai", "openclip", "hf")}
    dists = [list(v.values()) for v in runs.values()]
    np.testing.assert_allclose(dists[0], dists[1], rtol=1e-3)
    np.testing.assert_allclose(dists[0], dists[2], rtol=1e-3)


def test_natural_images_sit_near_one_and_the_profile_needs_three(backends):
    model = backends["openai"]
    _, acts = embed_with_activations(model, images(12, 4))
    profile = natural_profile(acts)
    d = {
        k: float(np.median(v))
        for k, v in ((k, (acts[k] - profile.mean[k]).norm(dim=1).numpy() / profile.scale[k]) for k in acts)
    }
    assert all(0.5 < v < 1.5 for v in d.values())  # in-sample, slightly under the leave-one-out scale
    with pytest.raises(ValueError, match="at least 3"):
        natural_profile({k: v[:2] for k, v in acts.items()})
    assert pathway_max({}) is None


def test_without_reference_or_labels_the_checks_that_need_them_are_left_out(backends):
    model = backends["openai"]
    entries = evaluate_each(model, images(2, 5), "a dog", judges=[], words=[])
    for e in entries:
        assert e["pathway"] == {} and e["pathway_max"] is None and e["transfer_rate"] is None
        assert e["agreement"] is None and e["written"] is None and e["sparse_reading"] is None
        assert e["model"]["reading"] is None and len(e["robustness"]) == 6
        assert "judge" not in e["verdict"] and "pathway" not in e["verdict"]


def test_an_entry_is_the_same_in_every_library(backends):
    x, ref = images(3, 6), images(5, 7)
    entries = [
        evaluate_images(backends[k], x, "a red heart", judges=[], reference=ref, words=["love"])
        for k in ("openai", "openclip", "hf")
    ]
    for e in entries[1:]:
        assert e["model"]["cosine"] == pytest.approx(entries[0]["model"]["cosine"], abs=1e-4)
        for name, r in entries[0]["robustness"].items():
            assert e["robustness"][name] == pytest.approx(r, abs=1e-2)
        assert e["written"] == pytest.approx(entries[0]["written"], abs=0.05)
