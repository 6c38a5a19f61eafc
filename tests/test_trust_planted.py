"""Trust checks on the toy world's planted truth: meanings pass, patterns made against one model do not."""

import json

import numpy as np
import pytest
import torch

from clipxai.analysis.trust.control import adversarial_reading
from clipxai.analysis.trust.evaluate import entry, evaluate_images, measure
from clipxai.models import load_clip
from clipxai.toy import world

PROMPT = "❤️"
MEANINGS = [c.description for c in world.PLANTED.values()]
LABELS = MEANINGS + [
    f"a {c} {s}" for c in ("blue", "green", "cyan", "purple", "white") for s in ("circle", "square", "star")
]
N = 9
CONTRACT = {
    "judges",
    "transfer_rate",
    "agreement",
    "robustness",
    "robustness_min",
    "pathway",
    "pathway_max",
    "written",
    "is_written",
    "sparse_reading",
    "clipscore",
    "verdict",
}


@pytest.fixture(scope="module")
def toy():
    return load_clip("toy", "cpu")


@pytest.fixture(scope="module")
def judge():
    return load_clip("toy-b", "cpu")


@pytest.fixture(scope="module")
def options(judge):
    return dict(
        judges=[judge],
        reference=world.generate(48, 100, concept="none").images,
        natural=world.generate(48, 103, **world.TRAINING_MIX).images,
        labels=LABELS,
        vocab=world.VOCABULARY,
    )


@pytest.fixture(scope="module")
def planted():
    return world.generate(N, 201, planted_fraction=1.0)


@pytest.fixture(scope="module")
def adversarial(toy):
    """Ordinary world images pushed by signed-gradient steps until toy reads a planted meaning."""
    start = torch.from_numpy(world.generate(N, 202, concept="none").images)
    out = torch.empty_like(start)
    for k, target in enumerate(MEANINGS):
        idx = list(range(k, N, len(MEANINGS)))
        out[idx] = adversarial_reading(toy, start[idx], PROMPT, target, LABELS, min_cosine=0.45)
    assert (out - start).abs().max() <= 32 / 255 + 1e-6
    return out


@pytest.fixture(scope="module")
def entries(toy, options, planted, adversarial):
    """One entry per image, planted images first, measured in one batch."""
    m = measure(toy, np.concatenate([planted.images, adversarial.numpy()]), PROMPT, **options)
    return [entry(m, [i]) for i in range(2 * N)]


def test_world_images_of_the_meanings_pass(entries, planted):
    for e, record in zip(entries[:N], planted.records):
        assert e["judges"]["toy-b"]["z"] >= 2 and e["transfer_rate"] == 1.0, e["verdict"]
        assert e["model"]["reading"] == world.PLANTED[record.concept].description
        assert e["agreement"] == 1.0
        assert e["robustness_min"] >= 0.8 and e["pathway_max"] <= 3.0
        assert e["trusted"] and e["verdict"].startswith("Trusted: seen by 1 of 1 judge"), e["verdict"]


def test_patterns_made_against_toy_alone_are_flagged(entries):
    adv = entries[N:]
    for k, e in enumerate(adv):
        assert e["model"]["z"] >= 2 and e["model"]["reading"] == MEANINGS[k % 3]  # toy is fooled
        assert not e["trusted"] and ({"no transfer", "fragile"} & set(e["flags"])), e["verdict"]
        assert e["verdict"].startswith("Suspect:")
    # in fact both: the judge does not see them and blur alone takes the likeness away
    assert np.mean([e["transfer_rate"] == 0 for e in adv]) >= 0.9
    assert np.mean([e["robustness"]["blur"] < 0.5 for e in adv]) >= 0.9
    assert np.mean([e["agreement"] for e in adv]) <= 0.3


def test_an_entry_is_the_contract_in_plain_json(toy, options, planted):
    e = evaluate_images(toy, planted.images[:3], PROMPT, **options)
    assert CONTRACT <= set(e) and e["images"] == 3
    assert set(e["judges"]["toy-b"]) == {"cosine", "z", "reading"}
    assert set(e["robustness"]) == {"shift", "crop", "blur", "jpeg", "noise-weak", "noise-strong"}
    assert list(e["pathway"]) == toy.hook_points() and e["pathway_max"] == max(e["pathway"].values())
    assert e["robustness_min"] == min(e["robustness"].values())
    assert isinstance(e["is_written"], bool) and not e["is_written"]
    assert (
        set(e["sparse_reading"]) == {"words", "weights", "fidelity"}
        and len(e["sparse_reading"]["words"]) <= 10
    )
    assert 0 < e["clipscore"] <= 2.5
    assert set(e["cmmd"]) == {"toy-b"}
    assert json.loads(json.dumps(e)) == e  # plain Python all the way down


def test_ordinary_images_are_not_seen_even_by_the_model(toy, options):
    e = evaluate_images(toy, world.generate(4, 203, concept="none").images, PROMPT, **options)
    assert "not seen by the model" in e["flags"] and not e["trusted"]
    assert e["verdict"].startswith("Suspect: not seen even by the model")


def test_the_pathway_is_reported_beside_the_call_not_in_it(toy, options, planted):
    """Planted meanings at 15% contrast: several lie outside the natural spread at the first block while
    the judge still sees them and they survive every perturbation; they are trusted, the pathway noted."""
    faint = (0.5 + 0.15 * (planted.images - 0.5)).astype(np.float32)
    m = measure(toy, faint, PROMPT, **options)
    es = [entry(m, [i]) for i in range(len(faint))]
    for e in es:
        assert ("unusual pathway" in e["flags"]) == (e["pathway_max"] > 3.0)
        assert e["trusted"] == (not {"not seen by the model", "no transfer", "fragile"} & set(e["flags"]))
    noted = [e for e in es if e["trusted"] and "unusual pathway" in e["flags"]]
    assert noted, [e["verdict"] for e in es]
    for e in noted:
        assert e["verdict"].startswith("Trusted: seen by 1 of 1 judge") and "unusual pathway (block" in e["verdict"]
