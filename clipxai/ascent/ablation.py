"""Components of CLIP's image tower switched off for a whole ascent (``clipxai ascend --ablate``).

``--ablate head:LAYER:HEAD`` and ``--ablate mlp:LAYER`` (layers and heads counted from 0), or any
component name (``blocks.7.attn.head3``, ``blocks.7.mlp``, ``blocks.7``, ``embed``, or the backend's
own module name), each optionally ending in ``@MODEL`` to reach one model of an ensemble (without
it, every model that has the component). In ``mean`` mode each component writes its mean over a
reference set instead of what it computes; in ``zero`` mode it writes nothing. The reference is a
folder of images (``--ablate-reference DIR``, each centre-cropped to the model's input) or, without
one, ``NOISE_IMAGES`` images of uniform noise in [0, 1] at the run's size drawn from a generator
seeded with ``NOISE_SEED``, so that run.json alone says how to take the means again.

The ablation holds for every forward pass of the run (the ascent's views, the recorded snapshots
and their activations), so what a run folder holds is what the ablated CLIP sees.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch

from clipxai.errors import ClipxaiError
from clipxai.models.ablate import ablated, component_means
from clipxai.models.components import ComponentError, component
from clipxai.prompts import load_image
from clipxai.util.files import image_files

NOISE_IMAGES = 32
NOISE_SEED = 0
SPEC = "head:LAYER:HEAD, mlp:LAYER or a component name (blocks.7.attn.head3, blocks.7.mlp), optionally @MODEL"
_SHORT = re.compile(r"(head):(\d+):(\d+)\Z|(mlp):(\d+)\Z")


def parse_ablation(spec: str) -> tuple[str, str | None]:
    """``head:7:3@toy-b`` -> (``blocks.7.attn.head3``, ``toy-b``); other names are kept as written."""
    text, at, member = str(spec).strip().partition("@")
    text, member = text.strip(), member.strip() or None
    if at and member is None:
        raise ClipxaiError(f"--ablate '{spec}' ends in '@' without a model name; write {SPEC}.")
    short = _SHORT.match(text)
    if short:
        if short.group(1):
            return f"blocks.{int(short.group(2))}.attn.head{int(short.group(3))}", member
        return f"blocks.{int(short.group(5))}.mlp", member
    if text.split(":", 1)[0] in ("head", "mlp") or not text:
        raise ClipxaiError(f"--ablate '{spec}' is not a component; write {SPEC} (layers and heads from 0).")
    return text, member


@dataclass
class Ablation:
    """The components one ascent runs without, for each model that has them, and what they write instead."""

    mode: str
    reference: dict
    entries: list[dict] = field(default_factory=list)        # what run.json records, one per component and model
    targets: list[tuple[object, list[str], dict]] = field(default_factory=list)  # (model, names, means)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block, every target model runs with its components ablated."""
        with contextlib.ExitStack() as stack:
            for model, names, means in self.targets:
                stack.enter_context(ablated(model, names, means, self.mode))
            yield

    def describe(self) -> dict:
        return {"mode": self.mode, "reference": dict(self.reference), "components": [dict(e) for e in self.entries]}


def build_ablation(cfg, members: list[tuple[object, str]], shape: tuple[int, int]) -> Ablation | None:
    """The ablation ``cfg.ablation`` asks for over ``members`` ((model, name) of the ensemble), checked.

    Every name is resolved on every model it reaches before anything is written: an unknown
    component, a layer or head the model lacks, or a model without a ViT tower is one sentence.
    """
    a = cfg.ablation
    if not a.components:
        return None
    chosen: dict[int, tuple[object, list[str]]] = {}
    entries = []
    for spec in a.components:
        name, at = parse_ablation(spec)
        for model, member, canonical in _resolve(spec, name, at, members):
            names = chosen.setdefault(id(model), (model, []))[1]
            if canonical not in names:
                names.append(canonical)
            entries.append({"component": canonical, "model": member, "asked": str(spec)})
    reference = _reference_of(a, shape)
    targets = []
    for model, names in chosen.values():
        means = {}
        if a.mode == "mean":
            images = _reference_images(a.reference, model.input_resolution, shape)
            means = component_means(model, images, names, normalize=cfg.normalize)
        targets.append((model, names, means))
    return Ablation(a.mode, reference, entries, targets)


def _resolve(spec: str, name: str, at: str | None, members: list[tuple[object, str]]):
    """(model, member name, canonical name) for each model ``spec`` reaches; one sentence if none."""
    names = [n for _, n in members]
    if at is not None and at not in names:
        raise ClipxaiError(f"--ablate '{spec}' names the model '{at}', which is not in this ascent "
                           f"(its models are {', '.join(names)}).")
    reached = [(m, n) for m, n in members if at is None or n == at]
    found, errors = [], []
    for model, member in reached:
        try:
            found.append((model, member, component(model, name).name))
        except ComponentError as err:
            errors.append(str(err))
    if not found:
        raise ComponentError(f"--ablate '{spec}': {errors[0]}")
    return found


def _reference_of(a, shape: tuple[int, int]) -> dict:
    """What run.json says about the reference the means are taken over."""
    if a.mode == "zero":
        return {"kind": "none"}
    if a.reference is None:
        return {"kind": "noise", "images": NOISE_IMAGES, "seed": NOISE_SEED, "distribution": "uniform [0, 1]",
                "size": [shape[1], shape[0]]}
    files = _reference_files(a.reference)
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return {"kind": "folder", "path": str(Path(a.reference).expanduser().resolve()), "images": len(files),
            "sha256": digest.hexdigest()}


def _reference_files(folder: str) -> list[Path]:
    return image_files(folder, "ablation reference")


def _reference_images(folder: str | None, resolution: int, shape: tuple[int, int]) -> torch.Tensor:
    """[N,3,H,W] in [0,1]: the folder's images at the model's input, or the fixed noise at the run's shape."""
    if folder is None:
        g = torch.Generator().manual_seed(NOISE_SEED)
        return torch.rand(NOISE_IMAGES, 3, *shape, generator=g)
    return torch.cat([load_image(p, resolution) for p in _reference_files(folder)])

