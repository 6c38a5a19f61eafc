"""The bundled toy CLIPs: they load every supported way, meet their card, and fail clearly."""

import json
import lzma
import re
from pathlib import Path

import pytest
import torch

from clipxai.cli.commands import main
from clipxai.errors import ModelLoadError
from clipxai.models import file_sha256, load_clip
from clipxai.toy import bundled
from clipxai.toy.evaluate import evaluate

CARD = Path(bundled.__file__).with_name("MODEL.md")


def card_floors() -> dict[str, dict[str, float]]:
    """The minimum scores MODEL.md promises, from its ```floors block."""
    block = re.search(r"```floors\n(.*?)```", CARD.read_text(encoding="utf-8"), re.S)
    assert block, "MODEL.md has no ```floors block"
    floors = {}
    for line in block.group(1).strip().splitlines():
        name, *claims = line.split()
        floors[name] = {k: float(v) for k, v in (c.split(">=") for c in claims)}
    return floors


@pytest.fixture(scope="module")
def toy():
    return load_clip("toy", device="cpu")


def test_toy_loads_by_name(toy):
    assert (toy.input_resolution, toy.context_length, toy.embed_dim) == (64, 16, 64)
    assert toy.sha256 == file_sha256(bundled.BUNDLED_MODELS["toy"])
    other = load_clip("toy-b", device="cpu")
    assert other.sha256 != toy.sha256
    for name in bundled.BUNDLED_MODELS:  # about a megabyte each, never more than a few
        assert 0.2e6 < bundled.BUNDLED_MODELS[name].stat().st_size < 3e6


def test_decompressed_file_loads_with_clip_load(tmp_path, toy):
    import clip

    path = tmp_path / "toy.pt"
    path.write_bytes(lzma.decompress(bundled.BUNDLED_MODELS["toy"].read_bytes()))
    model, _ = clip.load(str(path), jit=False, device="cpu")
    texts = ["❤️", "a gold ring", "a small blue square on the left"]
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        direct = model.encode_text(clip.tokenize(texts, context_length=model.context_length)).float()
        direct_img = model.encode_image(toy.normalize(images)).float()
    torch.testing.assert_close(direct, toy.encode_text(texts), atol=1e-4, rtol=1e-4)
    with torch.no_grad():
        torch.testing.assert_close(direct_img, toy.encode_image(images), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(bundled.BUNDLED_MODELS))
def test_bundled_models_meet_their_card(name, toy):
    model = toy if name == "toy" else load_clip(name, device="cpu")
    result = evaluate(model, n=300, seed=1)
    floors = card_floors()[name]
    assert floors["colour_accuracy"] >= 0.95 and floors["heart_auc"] >= 0.97  # what the card must promise
    for metric, floor in floors.items():
        assert getattr(result, metric) >= floor, (name, metric, getattr(result, metric), floor)


def _corrupt_copies(tmp_path) -> dict[str, Path]:
    data = bundled.BUNDLED_MODELS["toy"].read_bytes()
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    copies = {
        "truncated": data[: len(data) // 2],
        "flipped": bytes(flipped),
        "not-a-model": lzma.compress(b"these bytes are not a torch file"),
    }
    out = {}
    for kind, content in copies.items():
        out[kind] = tmp_path / f"{kind}.pt.xz"
        out[kind].write_bytes(content)
    return out


def test_a_corrupt_bundled_file_is_named_with_its_rebuild_command(tmp_path, monkeypatch):
    for kind, path in _corrupt_copies(tmp_path).items():
        monkeypatch.setitem(bundled.BUNDLED_MODELS, "toy", path)
        with pytest.raises(ModelLoadError) as info:
            load_clip("toy", device="cpu")
        message = str(info.value)
        assert str(path) in message and bundled.REBUILD_HINT["toy"] in message, kind
        assert message.count(". ") == 0 and message.endswith("."), message  # one sentence


def test_cli_reports_a_corrupt_or_missing_bundle_in_one_line(tmp_path, monkeypatch, capsys):
    bad = _corrupt_copies(tmp_path)["flipped"]
    before = bad.read_bytes()
    monkeypatch.setitem(bundled.BUNDLED_MODELS, "toy", bad)
    assert main(["toy", "evaluate", "--model", "toy", "--n", "20"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "corrupt" in err and "clipxai toy train" in err
    assert bad.read_bytes() == before  # the evidence is left in place
    monkeypatch.setitem(bundled.BUNDLED_MODELS, "toy", tmp_path / "gone.pt.xz")
    assert main(["toy", "evaluate", "--model", "toy", "--n", "20"]) == 2
    assert "missing" in capsys.readouterr().err


def test_cli_evaluate_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["toy", "evaluate", "--model", "toy-b", "--n", "60", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "colour accuracy" in printed and "❤️" in printed and "noise" in printed
    scores = json.loads(out.read_text(encoding="utf-8"))
    assert scores["model"] == "toy-b" and scores["n_images"] == 60
    assert set(scores["similarity"]) == {"heart (red)", "ring (gold)", "mouth (pink)", "mixed", "ordinary", "noise"}
