"""The memory a step needs, checked before anything is allocated: the compute options and ensembles count.

Free memory is faked by replacing ``clipxai.ascent.budget.available_bytes``; the activations are
measured on the tiny CLIP as they would be on a real one.
"""

from __future__ import annotations

import pytest

import clipxai
from clipxai.ascent import budget
from clipxai.ascent.budget import check_step_memory
from clipxai.errors import ClipxaiError

# Enough views in one pass that the activations are measured (budget.MEASURE_ABOVE).
MANY = {"seeds": 1, "cutouts": 64}


def need(models, **options) -> int:
    return check_step_memory(models, shape=(32, 32), cutout_batch=0, **MANY, **options)


def ascend(model, out, **options):
    return clipxai.ascend("a red heart", model_obj=model, out=str(out), quiet=True, steps=3, snapshot_every=1,
                          **MANY, **options)


def fake_free(monkeypatch, have: int) -> None:
    monkeypatch.setattr(budget, "available_bytes", lambda device: have)


def test_checkpointed_activations_count_one_block_and_the_block_inputs(tiny_clip):
    plain = budget.view_activation_bytes(tiny_clip)
    checkpointed = budget.view_activation_bytes(tiny_clip, checkpointed=True)
    assert 0 < checkpointed < plain


def test_a_step_that_fits_only_with_checkpointing_runs_with_it_and_the_refusal_says_so(tiny_clip, tmp_path,
                                                                                       monkeypatch):
    plain, checkpointed = need(tiny_clip), need(tiny_clip, checkpoint_activations=True)
    assert checkpointed < plain
    fake_free(monkeypatch, (plain + checkpointed) // 2)
    with pytest.raises(ClipxaiError, match="--checkpoint-activations"):
        ascend(tiny_clip, tmp_path / "plain")
    [run] = ascend(tiny_clip, tmp_path / "ckpt", checkpoint_activations=True)
    assert run.status == "complete"


def test_the_refusal_does_not_suggest_checkpointing_already_on(tiny_clip, monkeypatch):
    fake_free(monkeypatch, need(tiny_clip, checkpoint_activations=True) - 1)
    with pytest.raises(ClipxaiError, match="needs about") as err:
        need(tiny_clip, checkpoint_activations=True)
    assert "--checkpoint-activations" not in str(err.value)


def test_half_precision_activations_count_half(tiny_clip, tmp_path, monkeypatch):
    full, half = need(tiny_clip), need(tiny_clip, precision="bf16")
    assert half < full
    fake_free(monkeypatch, (full + half) // 2)
    with pytest.raises(ClipxaiError, match="needs about"):
        ascend(tiny_clip, tmp_path / "fp32", precision="fp32")
    [run] = ascend(tiny_clip, tmp_path / "bf16", precision="bf16", force_precision=True)
    assert run.status == "complete"


def test_an_ensemble_needs_what_its_models_need_together(tiny_clip, tmp_path, monkeypatch):
    one, two = need(tiny_clip), need([tiny_clip, tiny_clip])
    assert two > one
    fake_free(monkeypatch, (one + two) // 2)
    ascend(tiny_clip, tmp_path / "one")
    with pytest.raises(ClipxaiError, match="needs about"):
        ascend([tiny_clip, tiny_clip], tmp_path / "two")
    assert not (tmp_path / "two").exists() or not any((tmp_path / "two").iterdir())
