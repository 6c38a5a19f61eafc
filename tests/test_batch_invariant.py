"""--batch-invariant: a seed's run does not depend on how many seeds share its batch (bit for bit on CPU)."""

import numpy as np

import clipxai


def _ascend(tmp_path, name, seed, seeds, **options):
    return clipxai.ascend("❤️", model="toy", steps=40, seed=seed, seeds=seeds, cutouts=2, size=(32, 32),
                          snapshot_every=10, quiet=True, out=str(tmp_path), name=name, **options)


def _same(a, b) -> bool:
    return all(np.array_equal(a.array(n), b.array(n)) for n in ("images", "embeddings", "latents"))


def test_seed_3_of_a_batch_of_4_is_seed_3_alone(tmp_path):
    batch = _ascend(tmp_path, "batch", 0, 4, batch_invariant=True)
    alone = _ascend(tmp_path, "alone", 3, 1, batch_invariant=True)
    assert len(batch[3].steps) == len(alone[0].steps) == 4
    assert _same(batch[3], alone[0])
    sim = [m["sim/❤️"] for m in batch[3].metrics()]
    assert sim == [m["sim/❤️"] for m in alone[0].metrics()] and len(sim) >= 10
    assert batch[3].option("batch_invariant") is True
