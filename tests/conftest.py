"""Shared test fixtures: tiny CLIPs built in memory, never downloaded weights."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "clipxai-numba"))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_module():
    """A randomly initialised 32-px CLIP (widths multiple of 64, as build_model needs)."""
    from clipxai.models import random_clip
    return random_clip("tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_resnet_module():
    """A randomly initialised 32-px CLIP with a ResNet image tower (what the ViT-only tools refuse)."""
    clip = pytest.importorskip("clip")
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return clip.model.CLIP(embed_dim=32, image_resolution=32, vision_layers=(1, 1, 1, 1), vision_width=8,
                               vision_patch_size=None, context_length=16, vocab_size=49408,
                               transformer_width=64, transformer_heads=1, transformer_layers=1).float()


@pytest.fixture()
def tiny_clip(tiny_module):
    from clipxai.models import wrap_module
    return wrap_module(tiny_module, name="tiny", device="cpu")


@pytest.fixture()
def tiny_clip_file(tmp_path, tiny_module):
    """The tiny CLIP saved as a plain OpenAI-format state dict."""
    path = tmp_path / "tiny-clip.pt"
    torch.save(tiny_module.state_dict(), path)
    return path


# Runs made once for the whole session and shared by the modules that used to make their own. They are
# read-only: a module copies one (shutil.copytree, cheap) before anything it does could change it.

@pytest.fixture(scope="session")
def synthetic_analysed(tmp_path_factory):
    """A synthetic native run (60 snapshots, 3 planted states; tests/helpers_runs.py) analysed as the command
    line does: PCA, word labels with two concepts, the GIF."""
    from helpers_runs import write_run

    from clipxai.cli.commands import main
    path = write_run(tmp_path_factory.mktemp("synthetic-analysed"), "heart", n=60, k=3)
    assert main(["analyze", str(path), "--projection", "pca", "-q", "--concepts", "a red heart,a gold ring"]) == 0
    return path


@pytest.fixture(scope="session")
def toy_heart_analysed(tmp_path_factory):
    """The toy CLIP's "❤️" ascent (24 steps, a snapshot every 2) analysed with ``--explain --evaluate --judge
    toy-b``, and a pristine copy of it made before any analysis: ``(run, pristine)``."""
    import shutil

    import clipxai
    from clipxai.cli.commands import main
    root = tmp_path_factory.mktemp("toy-heart")
    [run] = clipxai.ascend("❤️", model="toy", steps=24, snapshot_every=2, out=str(root), name="heart", quiet=True)
    pristine = shutil.copytree(run.path, root / "pristine")
    assert main(["analyze", str(run.path), "--explain", "--evaluate", "--judge", "toy-b", "--projection", "pca",
                 "--no-gif", "-q"]) == 0
    return run.path, pristine
