"""What the trust checks compare a toy run with when the user names nothing: the toy world itself.

The bundled toy CLIPs were trained on a synthetic world whose images can be drawn at will, so a
toy run needs no ``--reference`` folder: ordinary world images (no planted meaning) are the
judges' natural baseline, the training mixture (planted meanings included) is the natural
pathway's and the sparse reading's ordinary, the planted meanings' descriptions among a few
ordinary looks are the candidate readings, and the world's own words are the vocabulary.
"""

from __future__ import annotations

import numpy as np

from clipxai.toy import world

# The bundled toys and the independently trained twin that judges each one's images.
TWINS = {"toy": "toy-b", "toy-b": "toy"}
REFERENCE_COUNT, NATURAL_COUNT = 64, 64
REFERENCE_SEED, NATURAL_SEED = 100, 103  # the world seeds of both sets (as bench/validate_trust.py)
ORDINARY_COLOURS = ("blue", "green", "cyan", "purple", "white")
ORDINARY_SHAPES = ("circle", "square", "star")


def is_toy(model_name: str | None) -> bool:
    """Whether a model name is one of the bundled toy CLIPs."""
    return model_name in TWINS


def labels() -> list[str]:
    """The candidate readings: the three planted meanings' descriptions, then ordinary looks."""
    planted = [c.description for c in world.PLANTED.values()]
    return planted + [f"a {c} {s}" for c in ORDINARY_COLOURS for s in ORDINARY_SHAPES]


def reference_images() -> np.ndarray:
    """Ordinary world images [64, 3, 64, 64] in [0, 1]: what the prompt is not, for the judges' baseline."""
    return world.generate(REFERENCE_COUNT, REFERENCE_SEED, concept="none").images


def natural_images() -> np.ndarray:
    """World images of the training mixture [64, 3, 64, 64]: natural images of every kind, planted included."""
    return world.generate(NATURAL_COUNT, NATURAL_SEED, **world.TRAINING_MIX).images


def vocabulary() -> list[str]:
    """The toy world's words (colours, shapes, sizes, positions and the concept words)."""
    return list(world.VOCABULARY)
