"""Toy training: reproducible from the seed, resumable to the same weights, careful with folders."""

import json

import pytest
import torch

from clipxai.cli.commands import main
from clipxai.models import load_clip
from clipxai.toy import train as T

TINY = dict(steps=4, batch_size=8, vision_layers=1, text_layers=1, checkpoint_every=2, warmup=2, noise_augment=0.2)


def _weights(folder):
    return torch.load(folder / T.MODEL_FILE, weights_only=True)


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    T.train(tmp_path / "a", T.TrainConfig(seed=3, **TINY))
    T.train(tmp_path / "b", T.TrainConfig(seed=3, **TINY))
    T.train(tmp_path / "c", T.TrainConfig(seed=4, **TINY))
    a, b, c = (_weights(tmp_path / n) for n in "abc")
    _assert_same(a, b)
    assert not torch.equal(a["visual.conv1.weight"], c["visual.conv1.weight"])


def test_resumed_training_ends_identical_to_uninterrupted(tmp_path):
    config = T.TrainConfig(seed=5, **{**TINY, "steps": 6})
    T.train(tmp_path / "whole", config)
    assert T.train(tmp_path / "parts", config, stop_after=2) is None  # as if killed after step 2
    assert not (tmp_path / "parts" / T.MODEL_FILE).exists()
    T.train(tmp_path / "parts", config, resume=True)
    _assert_same(_weights(tmp_path / "whole"), _weights(tmp_path / "parts"))
    assert "resuming at step 2/6" in (tmp_path / "parts" / T.LOG_FILE).read_text(encoding="utf-8")


def test_resume_refuses_a_different_configuration(tmp_path):
    T.train(tmp_path / "run", T.TrainConfig(seed=0, **TINY), stop_after=2)
    with pytest.raises(T.TrainError, match="different configuration.*lr"):
        T.train(tmp_path / "run", T.TrainConfig(seed=0, **{**TINY, "lr": 0.5}), resume=True)
    with pytest.raises(T.TrainError, match="no checkpoint.pt"):
        T.train(tmp_path / "empty", T.TrainConfig(**TINY), resume=True)


def test_an_existing_model_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "run"
    T.train(out, T.TrainConfig(seed=0, **TINY))
    before = (out / T.MODEL_FILE).read_bytes()
    with pytest.raises(T.TrainError, match="already holds a trained model.*--overwrite"):
        T.train(out, T.TrainConfig(seed=1, **TINY))
    assert (out / T.MODEL_FILE).read_bytes() == before
    T.train(out, T.TrainConfig(seed=1, **TINY), overwrite=True)
    assert (out / T.MODEL_FILE).read_bytes() != before


def test_cli_trains_refuses_an_existing_folder_and_resumes(tmp_path, capsys):
    out = tmp_path / "cli-run"
    args = ["toy", "train", "--out", str(out), "--steps", "3", "--batch-size", "8", "--vision-layers", "1",
            "--text-layers", "1", "--checkpoint-every", "2"]
    assert main(args) == 0
    summary = json.loads((out / T.SUMMARY_FILE).read_text(encoding="utf-8"))
    assert summary["steps"] == 3 and summary["config"]["vision_layers"] == 1
    assert "step 3/3" in (out / T.LOG_FILE).read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "--overwrite" in err and len(err.splitlines()) == 1
    # --resume takes the saved configuration; an explicit conflicting option is refused
    assert main(["toy", "train", "--out", str(out), "--resume"]) == 0
    assert main(["toy", "train", "--out", str(out), "--resume", "--steps", "9"]) == 2


def test_saved_model_is_compact_and_loads_everywhere(tmp_path):
    import clip

    config = T.TrainConfig(seed=0, **TINY)
    result = T.train(tmp_path / "run", config)
    sd = _weights(tmp_path / "run")
    assert sd["visual.conv1.weight"].dtype == torch.float16
    seen = torch.cat([clip.tokenize(T.world_batch(config, s).captions, context_length=16) for s in range(4)])
    used = (sd["token_embedding.weight"] != 0).any(dim=1)
    # exactly the tokens the training captions held survive; the other 49000+ rows are zero
    assert set(used.nonzero().flatten().tolist()) == set(seen[seen > 0].tolist())
    positions = (sd["positional_embedding"] != 0).any(dim=1)
    longest = int(seen.argmax(dim=1).max()) + 1
    assert positions[:longest].all() and not positions[longest:].any()

    model, _ = clip.load(str(result.model_path), jit=False, device="cpu")
    wrapped = load_clip(str(result.model_path), device="cpu")
    images = torch.rand(2, 3, 64, 64)
    tokens = clip.tokenize(["a red heart", "a blue square"], context_length=16)
    with torch.no_grad():
        direct = model.encode_text(tokens).float()
        assert torch.allclose(direct, wrapped.encode_text(["a red heart", "a blue square"]), atol=1e-4)
        assert model.encode_image(wrapped.normalize(images)).shape == (2, 64)


def test_identical_captions_are_not_negatives_of_each_other():
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    captions = ["❤️", "a blue square", "❤️", "a green star"]
    scale = torch.tensor(2.0)
    loss, _ = T.contrastive_loss(img, txt, scale, captions)
    # Both "❤️" images match both "❤️" texts, so trading the two images changes nothing
    # (plain InfoNCE would reward one pairing and punish the other).
    swapped, _ = T.contrastive_loss(img[[2, 1, 0, 3]], txt, scale, captions)
    assert torch.allclose(loss, swapped)
    other, _ = T.contrastive_loss(img[[1, 0, 2, 3]], txt, scale, captions)
    assert not torch.allclose(loss, other)  # distinct captions do care


def test_bad_widths_are_refused():
    with pytest.raises(T.TrainError, match="multiple of 64"):
        T.TrainConfig(vision_width=96)
