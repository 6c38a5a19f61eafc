"""A CelebA-format dataset drawn from the toy world, so the CVAE runs and is tested anywhere.

The folder looks exactly like CelebA as distributed: ``img_align_celeba/000001.jpg``...
(JPEG quality 95), ``list_attr_celeba.txt`` (count line, header line, "<file> ±1 ..." rows
with CelebA's spacing) and ``list_eval_partition.txt`` (80 % train, 10 % validation,
10 % test, in file order). The attributes are the world's, one +1/-1 column each:

    Red Gold Pink Blue Green Cyan Purple White Coral Rose Peach   the main object's colour
    Heart Circle Square Triangle Star Ring Cross Mouth   its shape
    Big                                              its size (-1: small)
    Left Right Top Bottom Center                     its position

Every image shows a single object (no pairs), so its attributes describe all of it, and
the phrase table turns a row back into the world's own caption: "a big red heart in the
center". With the toy CLIP, the conditioning is therefore meaningful.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from clipxai.errors import ClipxaiError
from clipxai.generators.cvae.data import CELEBA_ATTR, CELEBA_IMAGES, CELEBA_PARTITION

COLOUR_COLUMNS = ["Red", "Gold", "Pink", "Blue", "Green", "Cyan", "Purple", "White", "Coral", "Rose", "Peach"]
SHAPE_COLUMNS = ["Heart", "Circle", "Square", "Triangle", "Star", "Ring", "Cross", "Mouth"]
POSITION_COLUMNS = ["Left", "Right", "Top", "Bottom", "Center"]
ATTRIBUTES = COLOUR_COLUMNS + SHAPE_COLUMNS + ["Big"] + POSITION_COLUMNS
_CHUNK = 500


def record_row(record) -> list[int]:
    """The +1/-1 attribute row of a world ``Record`` (its main object), in ``ATTRIBUTES`` order."""
    d = record.to_dict()
    on = {d["colour"].capitalize(), d["shape"].capitalize(), d["position"].capitalize()}
    if d["size"] == "big":
        on.add("Big")
    unknown = on - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"the world has attributes the fixture does not know: {sorted(unknown)}")
    return [1 if a in on else -1 for a in ATTRIBUTES]


def make_fixture(out: str | Path, n: int = 2000, seed: int = 0, planted_fraction: float = 0.3,
                 overwrite: bool = False) -> Path:
    """Write ``n`` world images and their attribute files under ``out``; returns ``out``."""
    from PIL import Image  # noqa: PLC0415

    from clipxai.toy import world  # noqa: PLC0415

    out = Path(out)
    if n < 1:
        raise ClipxaiError(f"--n must be at least 1 (got {n}).")
    if (out / CELEBA_ATTR).exists() and not overwrite:
        raise ClipxaiError(f"{out} already holds a dataset; pass --overwrite to replace it.")
    image_dir = out / CELEBA_IMAGES
    try:
        image_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ClipxaiError(f"The folder {out} cannot be created ({err.strerror}).") from err
    rng = np.random.default_rng(seed)
    names, rows = [], []
    for start in range(0, n, _CHUNK):
        batch = world.generate(min(_CHUNK, n - start), rng, planted_fraction=planted_fraction, pair_fraction=0.0)
        pixels = (np.clip(batch.images, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(0, 2, 3, 1)
        for k, record in enumerate(batch.records):
            name = f"{start + k + 1:06d}.jpg"
            Image.fromarray(pixels[k]).save(image_dir / name, quality=95)
            names.append(name)
            rows.append(record_row(record))
    lines = [f"{n}", " ".join(ATTRIBUTES) + " "]
    lines += [name + " " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, rows)]
    (out / CELEBA_ATTR).write_text("\n".join(lines) + "\n")
    n_train, n_val = int(round(0.8 * n)), int(round(0.1 * n))
    split = [0 if i < n_train else 1 if i < n_train + n_val else 2 for i in range(n)]
    (out / CELEBA_PARTITION).write_text("".join(f"{name} {s}\n" for name, s in zip(names, split)))
    return out
