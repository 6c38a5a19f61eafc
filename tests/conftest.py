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
