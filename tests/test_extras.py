"""A command whose optional extra is missing says which extra, in one sentence, within 2 s."""

import importlib.util
import time

import pytest

from clipxai.cli import main
from clipxai.util.extras import EXTRAS, missing_modules


@pytest.fixture()
def without(monkeypatch):
    """Hide the given modules from importlib's finder, as on a machine that lacks them."""
    real = importlib.util.find_spec

    def hide(*modules):
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a, **k: None if name.split(".")[0] in modules else real(name, *a, **k))
    return hide


@pytest.mark.parametrize("argv, modules, extra", [
    (["view", "{tmp}"], ("starlette",), "view"),
    (["sweep", "{tmp}/spec.toml", "--executor", "ray"], ("ray",), "sweep"),
])
def test_a_missing_extra_is_one_sentence_naming_it(argv, modules, extra, without, tmp_path, capsys):
    (tmp_path / "spec.toml").write_text('name = "s"\nprompts = ["red"]\n[base]\nmodel = "toy"\n')
    without(*modules)
    start = time.perf_counter()
    code = main([a.format(tmp=tmp_path) for a in argv])
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and seconds < 2.0 and len(err) == 1
    assert f"pip install 'clipxai[{extra}]'" in err[0] and modules[0] in err[0]
    assert not (tmp_path / "runs").exists()


def test_the_extras_named_are_the_ones_pyproject_declares():
    from pathlib import Path

    tomllib = pytest.importorskip("tomllib")
    declared = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    extras = declared["project"]["optional-dependencies"]
    for extra in EXTRAS:
        assert extra in extras
    assert missing_modules("view") == []  # installed for the tests
