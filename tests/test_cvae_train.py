"""Training: reproducible, resumable, careful with existing results, and it writes what it says."""

import json

import pytest
import torch

from clipxai.cli.commands import main
from clipxai.generators.cvae import checkpoint as ckpt
from clipxai.generators.cvae.fixture import make_fixture
from clipxai.generators.cvae.train import TrainConfig, TrainError, train

TINY = dict(clip="random:tiny", size=16, width=4, zdim=4, cond_embed=8, batch_size=8, grid_rows=3, epochs=2)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return make_fixture(tmp_path_factory.mktemp("cvae-train") / "fx", n=48, seed=0)


def run(dataset, out, cache, **overrides):
    return train(dataset, out, TrainConfig(**{**TINY, **overrides}), cache_dir=cache)


def weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


def test_same_seed_gives_identical_weights_and_another_seed_differs(dataset, tmp_path):
    a = run(dataset, tmp_path / "a", tmp_path / "cache")
    b = run(dataset, tmp_path / "b", tmp_path / "cache")
    c = run(dataset, tmp_path / "c", tmp_path / "cache", seed=1)
    wa, wb, wc = weights(a.checkpoint), weights(b.checkpoint), weights(c.checkpoint)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    def losses(r):
        return [{k: v for k, v in h.items() if k not in ("images_per_s", "seconds")} for h in r.history]
    assert losses(a) == losses(b) != losses(c)


def test_resume_equals_an_uninterrupted_training(dataset, tmp_path):
    straight = run(dataset, tmp_path / "straight", tmp_path / "cache", epochs=3)
    run(dataset, tmp_path / "resumed", tmp_path / "cache", epochs=1)
    resumed = train(dataset, tmp_path / "resumed", resume=True, epochs=3, cache_dir=tmp_path / "cache")
    ws, wr = weights(straight.checkpoint), weights(resumed.checkpoint)
    assert all(torch.equal(ws[k], wr[k]) for k in ws)
    opt_s = torch.load(straight.checkpoint, weights_only=True)["optimizer"]["state"]
    opt_r = torch.load(resumed.checkpoint, weights_only=True)["optimizer"]["state"]
    assert all(torch.equal(opt_s[i]["exp_avg"], opt_r[i]["exp_avg"]) for i in opt_s)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    lines = (tmp_path / "resumed" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_training_lowers_the_validation_loss(dataset, tmp_path):
    r = run(dataset, tmp_path / "out", tmp_path / "cache", epochs=4, width=8, lr=3e-3, kl_warmup=0.0)
    assert r.history[-1]["val_rec"] < r.history[0]["val_rec"]
    assert r.history[-1]["loss"] < r.history[0]["loss"]


def test_the_folder_holds_config_checkpoint_history_and_grids(dataset, tmp_path):
    r = run(dataset, tmp_path / "out", tmp_path / "cache", condition="both", recon="bce")
    out = tmp_path / "out"
    config = json.loads((out / "config.json").read_text())
    assert {k: config[k] for k in TINY} == TINY
    assert config["condition"] == "both" and config["recon"] == "bce" and config["model"]["cond_dim"] == 64 + 25
    payload = torch.load(r.checkpoint, weights_only=True)
    assert payload["conditioning"]["clip"] == {"name": "random:tiny", "sha256": "random-tiny-seed0", "embed_dim": 64}
    assert payload["train_config"]["recon"] == "bce" and payload["epoch"] == 2
    assert payload["conditioning"]["attributes"][:3] == ["Red", "Gold", "Pink"]
    for e in (1, 2):
        assert (out / "grids" / f"recon-e{e:03d}.png").is_file()
        assert (out / "grids" / f"samples-e{e:03d}.png").is_file()
    rows = (out / "grids" / "samples.txt").read_text().splitlines()
    assert len(rows) == 3 and rows[0].startswith("row 1: a ")
    loaded = ckpt.load_cvae(out)
    assert loaded.conditioner.mode == "both" and loaded.size == 16


@pytest.mark.parametrize("recon", ["mse", "bce", "l1"])
def test_each_reconstruction_loss_trains(dataset, tmp_path, recon):
    r = run(dataset, tmp_path / recon, tmp_path / "cache", recon=recon, condition="attributes", epochs=1)
    assert r.history[0]["rec"] > 0 and torch.isfinite(torch.tensor(r.history[0]["val_rec"]))


def test_existing_results_are_refused_unless_asked(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["cvae", "train", str(dataset), "--out", str(out), "--clip", "random:tiny", "--size", "16",
            "--width", "4", "--zdim", "4", "--batch-size", "8", "--epochs", "1", "--cache-dir", str(tmp_path / "c")]
    assert main(args) == 0
    assert capsys.readouterr().out.strip() == str(out / "checkpoint.pt")
    before = (out / "checkpoint.pt").read_bytes()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already holds a CVAE checkpoint; pass --resume to continue it or --overwrite" in err
    assert (out / "checkpoint.pt").read_bytes() == before
    assert main(args + ["--overwrite", "--seed", "5"]) == 0
    assert (out / "checkpoint.pt").read_bytes() != before
    assert main(["cvae", "train", str(dataset), "--out", str(out), "--resume", "--epochs", "1"]) == 2
    assert "already done 1 epochs" in capsys.readouterr().err
    assert main(["cvae", "train", str(dataset), "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "holds no checkpoint.pt to resume from" in capsys.readouterr().err


@pytest.mark.parametrize("option, message", [
    (dict(epochs=0), "--epochs must be at least 1"),
    (dict(condition="pixels"), "--condition must be one of"),
    (dict(recon="huber"), "--recon must be one of"),
    (dict(size=48), "--size must be a power of two"),
])
def test_bad_hyperparameters_are_one_sentence(dataset, tmp_path, option, message):
    with pytest.raises(TrainError, match=message):
        run(dataset, tmp_path / "out", tmp_path / "cache", **option)
    assert not (tmp_path / "out" / "checkpoint.pt").exists()


def test_an_interrupted_training_keeps_its_last_epoch_and_resumes_exactly(dataset, tmp_path):
    straight = run(dataset, tmp_path / "straight", tmp_path / "cache", epochs=3)

    def interrupt(line):
        if line.startswith("epoch 2/3 step"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(dataset, tmp_path / "cut", TrainConfig(**{**TINY, "epochs": 3}), cache_dir=tmp_path / "cache",
              progress=interrupt)
    assert torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=True)["epoch"] == 1
    resumed = train(dataset, tmp_path / "cut", resume=True, cache_dir=tmp_path / "cache")
    ws, wr = weights(straight.checkpoint), weights(resumed.checkpoint)
    assert all(torch.equal(ws[k], wr[k]) for k in ws)


def test_a_config_given_on_resume_may_change_only_the_epochs(dataset, tmp_path):
    run(dataset, tmp_path / "out", tmp_path / "cache", epochs=1)
    with pytest.raises(TrainError, match=r"different configuration \(lr\); resume with the same options"):
        train(dataset, tmp_path / "out", TrainConfig(**{**TINY, "lr": 0.5, "epochs": 2}), resume=True,
              cache_dir=tmp_path / "cache")
    resumed = train(dataset, tmp_path / "out", TrainConfig(**{**TINY, "epochs": 2}), resume=True,
                    cache_dir=tmp_path / "cache")
    assert [h["epoch"] for h in resumed.history] == [1, 2]
