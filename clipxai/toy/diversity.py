"""How many of "❤️"'s planted meanings the K seeds of one batch reach, with and without the diversity term.

The question clipxai exists for (which meanings CLIP holds for a word) is answered faster when
the seeds of one batch are pushed apart (``--term diversity``) instead of hoping they start
apart. On the toy world the meanings are known: each seed's final image is read by the
independent ``toy-b`` (zero-shot over the planted meanings' descriptions), and a batch's count
is the number of distinct meanings its seeds reached. ``python bench/diversity_toy.py`` prints
the figures; ``tests/test_palette_diversity.py`` asserts them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from clipxai.models.base import ClipModel
from clipxai.toy import groundtruth, world


@dataclass
class DiversityCheck:
    """Per batch of ``seeds`` seeds: the meaning toy-b reads in each seed's final image, and how many distinct."""

    weight: float
    seeds: int
    judged: list = field(default_factory=list)        # per batch: the judge's planted meaning of each seed
    pixels: list = field(default_factory=list)        # per batch: the meaning read from the pixels (or None)

    @property
    def distinct(self) -> list[int]:
        """Distinct planted meanings per batch, as the judge reads them."""
        return [len(set(batch)) for batch in self.judged]

    @property
    def confirmed(self) -> list[int]:
        """Distinct meanings per batch where the pixels' colour signature agrees with the judge."""
        return [len({j for j, p in zip(js, ps) if j == p}) for js, ps in zip(self.judged, self.pixels)]


def diversity_check(model: ClipModel, judge: ClipModel, *, weight: float, batches: int = 5, seeds: int = 8,
                    steps: int = 60, **options) -> DiversityCheck:
    """Ascend "❤️" in ``batches`` batches of ``seeds`` seeds (first seeds 0, seeds, 2*seeds, ...), with
    ``--term diversity=weight`` (none when 0), as the heart check ascends; the judge reads each final image."""
    check = DiversityCheck(weight=weight, seeds=seeds)
    terms = [f"diversity={weight:g}"] if weight else []
    for b in range(batches):
        with tempfile.TemporaryDirectory(prefix="clipxai-div-") as tmp:
            runs = groundtruth._ascend("❤️", model, Path(tmp), seeds, steps, snapshot_every=max(1, steps - 1),
                                       seed=b * seeds, terms=terms, **{**groundtruth.HEART_OPTIONS, **options})
            images = groundtruth._final_images(runs)
        check.judged.append(groundtruth.zero_shot_concept(judge, images))
        check.pixels.append(world.classify_concept(images))
    return check
