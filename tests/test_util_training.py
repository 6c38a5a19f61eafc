"""The training-folder helper the four training loops share: refusals, resumes, whole checkpoints, log lines."""

import zipfile

import pytest
import torch

from clipxai.cli.commands import main
from clipxai.errors import ClipxaiError, TrainError
from clipxai.util import training


def test_one_train_error_under_its_old_names():
    from clipxai.generators.cvae import train as cvae_train
    from clipxai.toy import train as toy_train

    assert toy_train.TrainError is cvae_train.TrainError is training.TrainError is TrainError
    assert issubclass(TrainError, ClipxaiError) and TrainError.exit_code == 2


def test_a_new_training_refuses_results_and_overwrite_replaces_them(tmp_path):
    holds = {"model.pt": "a trained model", "checkpoint.pt": "an unfinished training"}
    (tmp_path / "checkpoint.pt").write_bytes(b"x")
    with pytest.raises(TrainError, match="already holds an unfinished training; pass --resume to continue it or --overwrite"):
        training.prepare_folder(tmp_path, holds=holds)
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(TrainError, match="already holds a trained model"):  # the first of ``holds`` that is there
        training.prepare_folder(tmp_path, holds=holds)
    (tmp_path / "notes.txt").write_text("kept")
    training.prepare_folder(tmp_path, overwrite=True, holds=holds, replace=("model.pt", "checkpoint.pt"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    training.prepare_folder(tmp_path, holds=holds)  # other files never stop a training


def test_resume_needs_its_checkpoint_and_not_overwrite(tmp_path):
    with pytest.raises(TrainError, match="holds no checkpoint.pt to resume from"):
        training.prepare_folder(tmp_path / "none", resume=True)
    assert not (tmp_path / "none").exists()
    (tmp_path / "checkpoint.pt").write_bytes(b"x")
    assert training.prepare_folder(tmp_path, resume=True) == tmp_path
    with pytest.raises(TrainError, match="either --resume or --overwrite"):
        training.prepare_folder(tmp_path, resume=True, overwrite=True)


def test_a_training_without_checkpoints_offers_only_overwrite(tmp_path):
    (tmp_path / "classifier.pt").write_bytes(b"x")
    with pytest.raises(TrainError, match=r"already holds a classifier; pass --overwrite to replace it\.$"):
        training.prepare_folder(tmp_path, checkpoint=None, holds={"classifier.pt": "a classifier"})
    with pytest.raises(TrainError, match="holds no checkpoint to resume from"):
        training.prepare_folder(tmp_path, resume=True, checkpoint=None)
    fresh = training.prepare_folder(tmp_path / "a" / "b", checkpoint=None, create=False)
    assert not fresh.exists()
    training.prepare_folder(fresh, checkpoint=None)
    assert fresh.is_dir()


def test_a_resume_keeps_its_configuration_except_the_allowed_fields(tmp_path):
    saved = {"lr": 1e-3, "epochs": 2, "seed": 0}
    training.check_resumed_config(saved, dict(saved), tmp_path)
    training.check_resumed_config(saved, {**saved, "epochs": 5}, tmp_path, allowed=("epochs",))
    with pytest.raises(TrainError, match=r"different configuration \(lr, seed\); resume with the same options\."):
        training.check_resumed_config(saved, {**saved, "lr": 0.5, "seed": 1, "epochs": 5}, tmp_path, allowed=["epochs"])


def test_checkpoints_are_written_whole_and_a_named_one_keeps_its_archive_name(tmp_path):
    payload = {"state_dict": {"w": torch.arange(4.0)}}
    plain = training.save_checkpoint(tmp_path / "sub" / "checkpoint.pt", payload)
    named = training.save_named_checkpoint(tmp_path / "sub" / "vqgan-toy.ckpt", payload)
    assert zipfile.ZipFile(plain).namelist()[0].startswith("archive/")
    assert zipfile.ZipFile(named).namelist()[0].startswith("vqgan-toy/")  # as torch.save("vqgan-toy.ckpt") names it
    torch.save(payload, tmp_path / "vqgan-toy.ckpt")
    assert named.read_bytes() == (tmp_path / "vqgan-toy.ckpt").read_bytes()
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["checkpoint.pt", "vqgan-toy.ckpt"]  # no leftovers
    assert torch.equal(torch.load(plain, weights_only=True)["state_dict"]["w"], payload["state_dict"]["w"])


def test_log_lines_are_appended(tmp_path):
    log = tmp_path / "train.log"
    training.append_line(log, "starting ❤️")
    training.append_line(log, "step 1/2")
    assert log.read_text(encoding="utf-8") == "starting ❤️\nstep 1/2\n"


@pytest.mark.parametrize("command", [["cvae", "train", "no-such-data"], ["cvae", "train-classifier", "no-such-data"]])
def test_the_cvae_trainings_refuse_a_file_as_their_folder_before_reading_data(tmp_path, capsys, command):
    out = tmp_path / "taken"
    out.write_text("not a folder")
    assert main(command + ["--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {out} exists and is not a folder."


def test_the_toy_trainings_refuse_a_file_as_their_folder_too(tmp_path):
    """Their --out refuses a file already (click); their functions do as the CVAE's."""
    from clipxai.toy import train as toy_train
    from clipxai.toy import train_vqgan

    out = tmp_path / "taken"
    out.write_text("not a folder")
    with pytest.raises(TrainError, match="exists and is not a folder"):
        toy_train.train(out, toy_train.TrainConfig(steps=1, batch_size=2))
    with pytest.raises(TrainError, match="exists and is not a folder"):  # before the minutes of training, not after
        train_vqgan.train(train_vqgan.VQTrainConfig(steps=1), out, log=lambda line: None)
    assert main(["toy", "train-vqgan", "--out", str(out), "--steps", "1"]) == 2
