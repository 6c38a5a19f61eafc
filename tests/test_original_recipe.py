"""`--preset zer0int` is the original experiment step for step.

The loop below is re-implemented from zer0int's `clipga-self-text-to-image.py`
(CLIP-text-to-image on GitHub) as it is written there: CLIP's parameters requiring grad,
anomaly detection on, the prompt tokenized to the full context, `-log(exp(cos/5).mean())`,
`1e-5 * TV(sum)`, `0.01 * F.mse_loss` to the best image so far (updated before the loss),
AdamW lr 1.5. Its only changes: the model is the bundled toy CLIP, so the image is the
model's input size (224 for the original's ViT-L/14) and the context is the model's own;
and both programs start from one saved tensor. Every step's image must be equal, not close.
"""

import copy

import clip
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import clipxai
from clipxai.models import load_clip

STEPS = 60


def original_loop(module, text: str, start: torch.Tensor, steps: int) -> list[torch.Tensor]:
    """The original gradient_ascent_loop, returning the image CLIP saw at every step."""
    def total_variation_loss(img):
        return torch.sum(torch.abs(img[:, :, :, :-1] - img[:, :, :, 1:])) + \
            torch.sum(torch.abs(img[:, :, :-1, :] - img[:, :, 1:, :]))

    image = start.clone().requires_grad_(True)
    with torch.no_grad():
        text_features = module.encode_text(clip.tokenize([text], context_length=module.context_length))
    optimizer = torch.optim.AdamW([image], lr=1.5)
    best_state = {"image": None, "similarity": float("-inf")}
    seen = []
    with torch.autograd.set_detect_anomaly(True):
        for _ in range(steps):
            seen.append(image.detach().clone())
            optimizer.zero_grad()
            image = image.float()
            image_features = module.encode_image(image)
            total_cosine_sim = torch.cosine_similarity(image_features, text_features, dim=1).mean()
            scaled_total_cosine_sim = torch.exp(total_cosine_sim / 5).mean()
            current_similarity = total_cosine_sim.item()
            if current_similarity > best_state["similarity"]:
                best_state["similarity"] = current_similarity
                best_state["image"] = image.detach().clone()
            tv_loss = total_variation_loss(image)
            deviation_loss = F.mse_loss(image, best_state["image"])
            loss = -torch.log(scaled_total_cosine_sim) + 0.00001 * tv_loss + 0.01 * deviation_loss
            loss.backward()
            optimizer.step()
    return seen


@pytest.fixture(scope="module")
def toy():
    return load_clip("toy", "cpu")


@pytest.fixture(scope="module")
def start(toy, tmp_path_factory):
    r = toy.input_resolution
    tensor = torch.randn((1, 3, r, r), generator=torch.Generator().manual_seed(0)) * 0.01
    path = tmp_path_factory.mktemp("start") / "start.npy"
    np.save(path, tensor.numpy())
    return tensor, path


@pytest.fixture(scope="module")
def original(toy, start):
    module = copy.deepcopy(toy.module).requires_grad_(True)  # as clip.load gives it: trainable
    return original_loop(module, "❤️", start[0], STEPS)


def ascend_zer0int(toy, start_path, tmp_path, **options):
    [run] = clipxai.ascend("❤️", preset="zer0int", model_obj=toy, steps=STEPS, snapshot_every=1,
                           init_image=str(start_path), activations="none", out=str(tmp_path), quiet=True, **options)
    return run


def test_zer0int_preset_equals_the_original_loop_at_every_step(toy, start, original, tmp_path):
    run = ascend_zer0int(toy, start[1], tmp_path)
    assert run.n == STEPS and run.option("size") is None  # the model's own input size
    diffs = [float(np.abs(run.latents[i] - original[i][0].numpy()).max()) for i in range(STEPS)]
    assert max(diffs) == 0.0, f"first difference at step {next(i for i, d in enumerate(diffs) if d)}"
    assert np.abs(original[-1].numpy()).max() > 0.5  # the images moved far from the 0.01 start


def test_the_fidelity_check_sees_a_trimmed_text_encoding(toy, start, original, tmp_path):
    run = ascend_zer0int(toy, start[1], tmp_path, text_context="trimmed")
    last = float(np.abs(run.latents[STEPS - 1] - original[STEPS - 1][0].numpy()).max())
    assert last > 0  # ~1e-6 in the text features is enough to part the two ascents
