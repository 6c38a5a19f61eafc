"""Using clipxai from Python and notebooks: keywords, suggestions, short reprs, pictures, folders of runs."""

import sys
import types

import numpy as np
import pytest

import clipxai
from clipxai.errors import ClipxaiError

FAST = dict(quiet=True, cutouts=2, steps=9, snapshot_every=3)


@pytest.fixture()
def run(tiny_clip, tmp_path):
    [r] = clipxai.ascend("a red heart", model_obj=tiny_clip, out=tmp_path, name="r", **FAST)
    return r


def test_the_public_api_is_listed_and_loaded_on_first_use():
    names = dir(clipxai)
    for name in ("ascend", "analyze", "load_run", "Run", "cosine", "load_clip"):
        assert name in names
    import inspect
    params = inspect.signature(clipxai.ascend).parameters
    for keyword in ("model", "steps", "seeds", "cutouts", "display_every", "resume"):
        assert keyword in params  # completion sees them


def test_a_misspelt_keyword_gets_a_suggestion(tiny_clip, tmp_path):
    with pytest.raises(ClipxaiError, match=r"cutout \(did you mean cutouts\?\)"):
        clipxai.ascend("x", model_obj=tiny_clip, out=tmp_path, cutout=4, quiet=True)
    with pytest.raises(ClipxaiError, match=r"projection \(did you mean projections\?\)"):
        clipxai.analyze(tmp_path, projection="pca")


def test_too_few_snapshots_are_warned_about(tiny_clip, tmp_path):
    with pytest.warns(UserWarning, match="record 2 snapshot"):
        clipxai.ascend("x", model_obj=tiny_clip, out=tmp_path, steps=20, snapshot_every=10, cutouts=1, quiet=True)


def test_a_run_has_a_short_repr_a_notebook_view_and_pictures(run):
    text = repr(run)
    assert len(text) < 200 and "complete" in text and "'a red heart'" in text and "3 snapshots" in text
    html = run._repr_html_()
    assert html.count("<img") == 3 and "data:image/png;base64," in html and "a red heart" in html
    last = run.image(-1)
    assert last.shape == (32, 32, 3) and last.dtype == np.uint8
    expected = (np.clip(run.images[2].astype(np.float32), 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)
    np.testing.assert_array_equal(last, expected)
    assert run.show(0).size == (256, 256)
    with pytest.raises(ClipxaiError, match="no snapshot 3"):
        run.image(3)


def test_analyze_at_the_top_level_returns_the_result(run):
    result = clipxai.analyze(run, projections=(), labels=False, gif=False)
    summary = result.to_dict()
    assert summary["n_snapshots"] == 3 and summary["verdict"]
    assert not (run.path / "analysis").exists()  # nothing written until asked
    assert result.write()["files"]["summary"] == "summary.json"


def test_a_folder_of_seeds_loads_as_all_its_runs(tiny_clip, tmp_path):
    clipxai.ascend("x", model_obj=tiny_clip, out=tmp_path / "group", name="g", seeds=3, **FAST)
    runs = clipxai.load_run(tmp_path / "group")
    assert [r.path.name for r in runs] == ["g-seed0", "g-seed1", "g-seed2"]
    from clipxai.runs.load import open_run
    with pytest.raises(ClipxaiError, match="holds 3 runs"):
        open_run(tmp_path / "group")


def test_display_every_updates_one_output_in_place(tiny_clip, tmp_path, monkeypatch):
    shown, updates = [], []

    class Handle:
        def update(self, obj):
            updates.append(obj)

    def display(obj, display_id=None):
        shown.append(obj)
        return Handle()
    fake = types.ModuleType("IPython.display")
    fake.display, fake.Image, fake.HTML = display, (lambda data: ("image", data)), (lambda text: ("html", text))
    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: types.SimpleNamespace(kernel=object())  # a notebook's kernel
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", fake)
    clipxai.ascend("a red heart", model_obj=tiny_clip, out=tmp_path, display_every=3, **FAST)
    assert len(shown) == 2  # one picture and one caption, then updated in place
    assert [u[0] for u in updates] == ["image", "html"] * 2  # steps 6 and 9
    assert updates[-1][1].startswith("step 9/9") and "a red heart:" in updates[-1][1]
    assert updates[0][1][:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("ipython", ["missing", "terminal"])
def test_display_every_outside_a_notebook_falls_back_to_the_progress_line(ipython, tiny_clip, tmp_path, monkeypatch,
                                                                          capsys):
    """The README's snippet, run as a script: no IPython, or IPython without a kernel."""
    fake = types.ModuleType("IPython")
    if ipython == "terminal":
        fake.get_ipython = lambda: None
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setitem(sys.modules, "IPython.display", None)  # importing it would fail
    runs = clipxai.ascend("a red heart", model_obj=tiny_clip, out=tmp_path, display_every=3, **{**FAST, "quiet": False})
    assert runs[0].status == "complete"
    assert "a red heart" in capsys.readouterr().err  # the text progress line
    with pytest.raises(ClipxaiError, match="display_every must be a positive number of steps"):
        clipxai.ascend("a red heart", model_obj=tiny_clip, out=tmp_path, display_every=0, **FAST)


def test_a_prompt_longer_than_the_context_is_said_to_be_cut(tiny_clip, tmp_path):
    long = " ".join(["heart"] * 40)  # the tiny CLIP reads 16 tokens
    with pytest.warns(UserWarning, match="fills tiny's whole context of 16 tokens"):
        clipxai.ascend(long, model_obj=tiny_clip, out=tmp_path, steps=3, snapshot_every=1, cutouts=1, quiet=True)
