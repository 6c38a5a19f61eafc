"""Evaluation: reconstruction, KL, CLIP agreement of samples, and the attribute classifier."""

import json
import types

import numpy as np
import pytest
import torch

from clipxai.cli.commands import main
from clipxai.errors import ClipxaiError
from clipxai.generators.cvae.classifier import ClassifierConfig, load_classifier, train_classifier
from clipxai.generators.cvae.evaluate import _clip_scores, _shuffled, evaluate
from clipxai.generators.cvae.fixture import make_fixture
from clipxai.generators.cvae.train import TrainConfig, train


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cvae-eval")
    data = make_fixture(root / "fx", n=200, seed=0)
    cache = root / "cache"
    cfg = TrainConfig(clip="random:tiny", size=16, width=4, zdim=4, cond_embed=8, batch_size=16, epochs=1)
    cvae = train(data, root / "cvae", cfg, cache_dir=cache).checkpoint
    clf = train_classifier(data, root / "clf", ClassifierConfig(size=32, epochs=5, width=8, batch_size=16, lr=3e-3),
                           cache_dir=cache)
    return types.SimpleNamespace(data=data, cvae=cvae, clf=clf, cache=cache, root=root)


def test_the_classifier_reads_attributes_better_than_the_majority_guess(setup):
    result = evaluate(setup.cvae, setup.data, classifier=setup.clf, cache_dir=setup.cache)
    a = result.attributes
    assert a["real"] > a["majority"] + 0.02
    assert 0 <= a["samples"] <= 1 and set(a["per_attribute"]) >= {"Red", "Heart", "Big", "Center"}
    clf = load_classifier(setup.clf)
    assert clf.size == 32 and clf.attributes[0] == "Red"
    assert clf.predict(torch.rand(3, 3, 16, 16)).shape == (3, 25)  # other sizes are resized


def test_evaluate_reports_reconstruction_and_agreement_on_the_test_split(setup):
    r = evaluate(setup.cvae, setup.data, cache_dir=setup.cache)
    assert r.split == "test" and r.n == 20
    rec = r.reconstruction
    assert rec["loss"] == "mse" and 0 < rec["mse_pixel"] < 1 and rec["kl"] >= 0
    assert rec["rec"] == pytest.approx(rec["mse_pixel"] * 3 * 16 * 16, rel=1e-4)  # mse summed per image
    a = r.clip_agreement
    assert a["judge"] == "random:tiny" and 0 <= a["win_rate"] <= 1 and 0 <= a["real_win_rate"] <= 1
    assert a["gap"] == pytest.approx(a["own"] - a["shuffled"], abs=1e-6)
    assert evaluate(setup.cvae, setup.data, split="val", n=5, cache_dir=setup.cache).n == 5


def test_clip_scores_measure_own_against_shuffled_sentences():
    texts = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    own = torch.arange(4)
    # a judge that sees in image i exactly sentence i's embedding
    judge = types.SimpleNamespace(input_resolution=4, device="cpu",
                                  embed_images=lambda x: texts[x[:, 0, 0, 0].round().long()])
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 4, 4)
    got = _clip_scores(judge, images, texts, own, own.roll(1))
    assert got["own"] == pytest.approx(1.0) and got["win_rate"] == 1.0 and got["gap"] > 0
    same = _clip_scores(judge, images, texts, own, own)
    assert same["gap"] == 0 and same["win_rate"] == 0


def test_shuffled_partners_have_another_sentence():
    sentences = ["a"] * 5 + ["b"] * 3 + ["c"]
    partners = _shuffled(sentences, np.random.default_rng(0))
    assert all(sentences[j] != s for s, j in zip(sentences, partners))


def test_evaluate_command_prints_json_and_text(setup, capsys):
    args = ["cvae", "evaluate", str(setup.cvae), str(setup.data), "--cache-dir", str(setup.cache), "-n", "8"]
    assert main(args + ["--json", "--classifier", str(setup.clf)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 8 and {"reconstruction", "clip_agreement", "attributes"} <= set(out)
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "reconstruction: mse" in text and "CLIP agreement (random:tiny)" in text


def test_evaluate_refuses_data_with_other_attributes(setup, tmp_path, capsys):
    (tmp_path / "a.csv").write_text("file,Smiling\nx.jpg,1\n")
    with pytest.raises(ClipxaiError, match="not the ones the CVAE was trained on"):
        evaluate(setup.cvae, tmp_path / "a.csv")
    assert main(["cvae", "evaluate", str(setup.cvae), str(tmp_path / "a.csv")]) == 2
    assert "error: The attributes of" in capsys.readouterr().err
    assert main(["cvae", "evaluate", str(setup.cvae), str(setup.data), "--classifier", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_train_classifier_command_writes_and_protects_its_file(setup, tmp_path, capsys):
    args = ["cvae", "train-classifier", str(setup.data), "--out", str(tmp_path / "clf"), "--epochs", "1",
            "--size", "16", "--limit", "40", "--cache-dir", str(setup.cache)]
    assert main(args) == 0
    path = tmp_path / "clf" / "classifier.pt"
    assert capsys.readouterr().out.strip() == str(path)
    before = path.read_bytes()
    assert main(args) == 2
    assert "already holds a classifier; pass --overwrite" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert json.loads((tmp_path / "clf" / "classifier.json").read_text())["limit"] == 40
