"""Folders of the original script (clipga-self-text-to-image.py) load as runs, file by file."""

import numpy as np
import pytest
from PIL import Image

from clipxai.errors import RunError
from clipxai.runs.legacy import LazyStack, is_legacy_run, load_legacy_run
from clipxai.runs.load import load_run

TOKENS, WIDTH = 257, 1024          # ViT-L/14 at batch 1, sequence-first: output.view(257, -1)
STEPS = list(range(0, 130, 10))    # every 10 iterations from 0; 100+ sorts wrongly as strings
COLOURS = [(230, 20, 20), (20, 200, 40)]


def _minmax(x):
    return (x - x.min()) / (x.max() - x.min())


def write_legacy(folder, steps=STEPS, layers=(5, 23), flat_layer=False):
    """Files named and shaped exactly like the original script's output."""
    rng = np.random.default_rng(0)
    patterns = rng.standard_normal((2, WIDTH)).astype(np.float32)  # what each state looks like to a layer
    for sub in ("images", "activations", "gradients"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i, step in enumerate(steps):
        state = (i // 4) % 2
        img = np.zeros((224, 224, 3), np.uint8) + np.array(COLOURS[state], np.uint8)
        img[0, 0] = 0  # per-image min-max normalisation makes the darkest pixel 0
        Image.fromarray(img).save(folder / "images" / f"image_{step}.png")
        for layer in layers:
            act = 0.5 * rng.standard_normal((TOKENS, WIDTH)).astype(np.float32) + patterns[state]
            act = _minmax(act)
            if flat_layer:
                act = act.reshape(1, -1)
            np.save(folder / "activations" / f"layer{layer}_iteration{step}.npy", act)
        grad = _minmax(rng.standard_normal((1, 3 * 224 * 224)).astype(np.float32))
        np.save(folder / "gradients" / f"gradient_iteration{step}.npy", grad)
    return folder


@pytest.fixture(scope="module")
def legacy_dir(tmp_path_factory):
    return write_legacy(tmp_path_factory.mktemp("legacy") / "out")


def test_legacy_folder_loads_in_step_order(legacy_dir):
    assert is_legacy_run(legacy_dir)
    run = load_run(legacy_dir)
    assert run.layout == "legacy" and run.problems == []
    assert run.n == len(STEPS)
    assert run.steps.tolist() == STEPS
    assert run.images.shape == (len(STEPS), 3, 224, 224)
    assert set(run.activations) == {"layer5", "layer23"}
    assert run.activations["layer23"].shape == (len(STEPS), TOKENS, WIDTH)
    assert run.gradients.shape == (len(STEPS), 3, 224, 224)
    # row i is the file of step STEPS[i]: snapshot 4 (step 40) is the second colour
    assert np.allclose(run.images[4][:, 5, 5], np.array(COLOURS[1]) / 255, atol=1 / 255)
    assert np.allclose(run.images[3][:, 5, 5], np.array(COLOURS[0]) / 255, atol=1 / 255)
    saved = np.load(legacy_dir / "activations" / "layer5_iteration100.npy")
    assert np.array_equal(run.activations["layer5"][STEPS.index(100)], saved)
    assert "embeddings" not in run.array_names()


def test_lazy_stack_reads_only_the_rows_asked_for(legacy_dir, monkeypatch):
    run = load_legacy_run(legacy_dir)
    stack = run.activations["layer5"]
    assert isinstance(stack, LazyStack)
    loaded = []
    original = stack._load
    monkeypatch.setattr(stack, "_load", lambda f: loaded.append(f) or original(f))
    part = stack[2:4]
    assert part.shape == (2, TOKENS, WIDTH) and len(loaded) == 2
    assert stack[[0, 5], 0].shape == (2, WIDTH)
    assert stack[-1].shape == (TOKENS, WIDTH)


def test_flattened_activations_are_accepted(tmp_path):
    folder = write_legacy(tmp_path / "flat", steps=STEPS[:5], layers=(3,), flat_layer=True)
    run = load_run(folder)
    assert run.activations["layer3"].shape == (5, 1, TOKENS * WIDTH)


def test_corrupt_and_empty_files_are_reported_and_skipped(tmp_path):
    folder = write_legacy(tmp_path / "broken", steps=STEPS[:8], layers=(1,))
    (folder / "images" / "image_30.png").write_bytes(b"")
    data = (folder / "activations" / "layer1_iteration50.npy").read_bytes()
    (folder / "activations" / "layer1_iteration50.npy").write_bytes(data[:1000])
    (folder / "gradients" / "gradient_iteration60.npy").write_bytes(b"not numpy at all")
    run = load_run(folder)
    text = "\n".join(run.problems)
    assert "image_30.png: empty" in text
    assert "layer1_iteration50.npy: truncated" in text
    assert "gradient_iteration60.npy" in text
    assert run.steps.tolist() == [0, 10, 20, 40, 70]
    assert run.images.shape[0] == run.activations["layer1"].shape[0] == run.n == 5


def test_a_kind_missing_most_steps_is_left_out(tmp_path):
    folder = write_legacy(tmp_path / "partial", steps=STEPS[:6], layers=(1,))
    for step in STEPS[1:6]:
        (folder / "gradients" / f"gradient_iteration{step}.npy").unlink()
    run = load_run(folder)
    assert run.n == 6 and "gradients" not in run.array_names()
    assert any(p.startswith("gradients: only 1 of 6") for p in run.problems)


def test_a_folder_of_only_broken_files_is_refused_in_one_sentence(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "image_0.png").write_bytes(b"")
    (tmp_path / "images" / "image_10.png").write_bytes(b"not a png")
    with pytest.raises(RunError, match=r"no snapshot could be read \(2 problem\(s\), the first: images/image_"):
        load_run(tmp_path)


def test_a_folder_of_anything_else_is_not_a_run(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "holiday.png").write_bytes(b"x")
    assert not is_legacy_run(tmp_path)
    with pytest.raises(RunError, match="not a clipxai run"):
        load_run(tmp_path)
