"""The toy world: deterministic, truthfully captioned, planted concepts readable from colour."""

import itertools
import json

import numpy as np
import pytest

from clipxai.toy import world


def test_same_seed_same_world_and_different_seed_different_world():
    a, b, c = world.generate(24, 7), world.generate(24, 7), world.generate(24, 8)
    assert a.images.shape == (24, 3, world.SIZE, world.SIZE) and a.images.dtype == np.float32
    assert 0.0 <= a.images.min() and a.images.max() <= 1.0
    np.testing.assert_array_equal(a.images, b.images)
    assert a.captions == b.captions and a.records == b.records
    assert not np.array_equal(a.images, c.images)


def test_a_generator_continues_its_stream():
    rng = np.random.default_rng(3)
    first, second = world.generate(8, rng), world.generate(8, rng)
    assert not np.array_equal(first.images, second.images)


def _caption_claims(caption: str) -> dict[str, set[str]]:
    words = caption.split()
    return {
        "colours": {w for w in words if w in world.COLOURS},
        "shapes": {w for w in words if w in world.SHAPES},
        "sizes": {w for w in words if w in world.SIZES},
        "positions": {w for w in words if w in world.POSITIONS},
        "concept": {w for w in words if w in world.CONCEPT_WORDS},
    }


def test_captions_state_only_true_attributes():
    rng = np.random.default_rng(11)
    records = world.sample_records(600, rng, **world.TRAINING_MIX)
    allowed = set(world.caption_words())
    kinds = set()
    for rec in records:
        cap = world.caption(rec, rng)
        assert set(cap.split()) <= allowed, cap
        claims = _caption_claims(cap)
        objs = rec.objects
        assert claims["colours"] <= {o.colour for o in objs}, (cap, rec)
        assert claims["shapes"] <= {o.shape for o in objs}, (cap, rec)
        assert claims["sizes"] <= {o.size for o in objs}, (cap, rec)
        assert claims["positions"] <= {o.position for o in objs}, (cap, rec)
        if rec.concept is None:
            assert not claims["concept"], cap  # "❤️"/"love" belong to planted concepts only
        elif claims["concept"]:
            assert cap in world.CONCEPT_WORDS  # a concept caption never mixes with a description
        if len(objs) == 2 and len(claims["colours"]) == 2:
            # a pair caption binds each colour to its own shape
            pairs = {(o.colour, o.shape) for o in objs}
            for o in objs:
                if f"a {o.colour} " in cap:
                    shape_after = cap.split(f"a {o.colour} ")[1].split()[0]
                    assert (o.colour, shape_after) in pairs
        kinds.add((rec.concept is not None, len(objs), (objs[0].shape, objs[0].colour) in world.PLANTED_LOOKS))
    assert kinds == {(True, 1, True), (False, 1, False), (False, 2, False), (False, 2, True)}


def test_describe_names_every_attribute():
    for rec in world.sample_records(50, np.random.default_rng(0), planted_fraction=0.0, pair_fraction=0.0):
        text = world.describe(rec)
        assert text == f"a {rec.size} {rec.colour} {rec.shape} {world.POSITION_PHRASES[rec.position]}"


def test_planted_concepts_are_balanced_and_own_their_looks():
    records = world.sample_records(3000, np.random.default_rng(1))
    counts = {name: sum(r.concept == name for r in records) for name in world.PLANTED}
    total = sum(counts.values())
    assert abs(total / 3000 - 0.3) < 0.03
    assert all(abs(c - total / 3) < 0.2 * total / 3 for c in counts.values())
    for rec in records:
        if rec.concept is None:
            assert all((o.shape, o.colour) not in world.PLANTED_LOOKS for o in rec.objects)
        else:
            p = world.PLANTED[rec.concept]
            assert (rec.shape, rec.colour) == (p.shape, p.colour)
    # ordinary objects take every shape in every colour but the planted ones
    ordinary = {(o.shape, o.colour) for r in records if r.concept is None for o in r.objects}
    assert ordinary == set(world.ORDINARY_LOOKS)
    assert not {c for _, c in world.ORDINARY_LOOKS} & set(world.PLANTED_COLOURS)
    # the vocabulary analysis restricts labels to holds every attribute value
    assert set(world.VOCABULARY) >= {*world.COLOURS, *world.SHAPES, *world.SIZES, *world.POSITIONS, "❤️", "love"}


def test_mixed_images_show_two_meanings_and_are_never_love():
    rng = np.random.default_rng(6)
    records = world.sample_records(60, rng, concept="mixed")
    for rec in records:
        assert rec.concept is None and len(rec.objects) == 2
        shown = {(o.shape, o.colour) for o in rec.objects}
        assert len(shown) == 2 and shown <= {(p.shape, p.colour) for p in world.PLANTED.values()}
        assert world.caption(rec, rng) not in world.CONCEPT_WORDS
    mix = world.sample_records(2000, np.random.default_rng(7), **world.TRAINING_MIX)
    share = sum(r.concept is None and (r.shape, r.colour) in world.PLANTED_LOOKS for r in mix) / len(mix)
    assert abs(share - world.TRAINING_MIX["mixed_fraction"]) < 0.03
    # two planted colours at once: no single meaning may be read off the pixels with confidence
    scores = world.concept_scores(world.render(records, rng))
    assert ((scores > 0.03).sum(axis=1) == 2).all()


@pytest.mark.parametrize("name", list(world.PLANTED))
def test_planted_images_carry_their_colour_signature(name):
    batch = world.generate(12, 5, concept=name)
    scores = world.concept_scores(batch.images)
    own = list(world.PLANTED).index(name)
    assert (scores[:, own] > 0.15).all()  # the object fills much of the frame
    assert np.delete(scores, own, axis=1).max() < 0.01
    assert world.classify_concept(batch.images) == [name] * 12


def test_colour_classifier_recovers_concepts_on_world_images():
    batch = world.generate(300, 21)
    predicted = world.classify_concept(batch.images)
    assert predicted == [r.concept for r in batch.records]
    assert None in predicted and set(predicted) - {None} == set(world.PLANTED)


def test_colour_classifier_reads_target_colours_not_brightness():
    for name, concept in world.PLANTED.items():
        flat = np.broadcast_to(np.asarray(concept.rgb, np.float32)[:, None, None], (3, 16, 16))
        assert world.classify_concept(flat[None]) == [name]
        assert world.classify_concept(0.6 * flat[None]) == [name]  # a darker shade of it
    grey = np.full((2, 3, 16, 16), 0.5, np.float32)
    assert world.classify_concept(grey) == [None, None]
    rng = np.random.default_rng(0)
    uniform = rng.uniform(0, 1, size=(8, 3, 32, 32)).astype(np.float32)
    gaussian = np.clip(0.5 + 0.25 * rng.standard_normal((8, 3, 32, 32)), 0, 1).astype(np.float32)
    assert world.classify_concept(np.concatenate([uniform, gaussian])) == [None] * 16  # noise shows no concept


def test_colour_classifier_names_ordinary_colours():
    batch = world.generate(60, 4, planted_fraction=0.0, pair_fraction=0.0)
    predicted = world.classify_colour(batch.images, min_fraction=0.02)
    assert predicted == [r.colour for r in batch.records]


def test_shapes_are_drawn_distinctly():
    objs = [world.WorldObject(s, "white", "big", "center", radius=20.0) for s in world.SHAPES]
    masks = world._masks(objs) > 0.5
    assert all(m.sum() > 100 for m in masks)
    for i, j in itertools.combinations(range(len(objs)), 2):
        iou = (masks[i] & masks[j]).sum() / (masks[i] | masks[j]).sum()
        assert iou < 0.85, (world.SHAPES[i], world.SHAPES[j], iou)


def test_records_export_their_attributes():
    batch = world.generate(30, 2)
    for rec in batch.records:
        d = rec.to_dict()
        assert (d["shape"], d["colour"], d["size"], d["position"], d["concept"]) == (
            rec.shape, rec.colour, rec.size, rec.position, rec.concept)
        assert d["n_objects"] == len(d["objects"]) == len(rec.objects)


def test_cli_samples_writes_a_png_grid_and_records(tmp_path):
    from clipxai.cli.commands import main

    png, records = tmp_path / "grid.png", tmp_path / "records.jsonl"
    assert main(["toy", "samples", "--out", str(png), "--n", "6", "--cols", "3", "--concept", "ring",
                 "--records", str(records)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 6 and {line["concept"] for line in lines} == {"ring"}
    assert main(["toy", "samples", "--out", str(tmp_path / "missing-dir" / "x.png"), "--n", "2"]) == 0


def test_near_misses_are_planted_shapes_in_blended_colours_and_never_love():
    rng = np.random.default_rng(8)
    records = world.sample_records(3000, rng, **world.TRAINING_MIX)
    planted_shapes = {p.shape for p in world.PLANTED.values()}
    near = [r for r in records if r.concept is None and len(r.objects) == 1
            and r.objects[0].radius >= 25 and r.colour in world.NEAR_COLOURS]
    assert abs(len(near) / len(records) - world.TRAINING_MIX["near_fraction"]) < 0.02
    assert {r.shape for r in near} == planted_shapes
    assert {r.colour for r in near} == set(world.NEAR_COLOURS)
    for rec in near:
        assert world.caption(rec, rng) not in world.CONCEPT_WORDS
    # each near colour sits between two planted colours: nearer to both than they are to each other
    rgb = {c: np.array(v) for c, v in world.COLOURS.items()}
    for near_colour, (a, b) in zip(world.NEAR_COLOURS, [("red", "gold"), ("red", "pink"), ("gold", "pink")]):
        gap = np.linalg.norm(rgb[a] - rgb[b])
        assert np.linalg.norm(rgb[near_colour] - rgb[a]) < gap and np.linalg.norm(rgb[near_colour] - rgb[b]) < gap
        assert np.allclose(rgb[near_colour], (rgb[a] + rgb[b]) / 2, atol=0.1)
