"""Attribute-captioned image datasets: the CelebA layout as distributed, or a folder plus a CSV.

CelebA layout (``DATA`` is the folder, or ``DATA/Anno`` / ``DATA/Img`` / ``DATA/Eval`` as
in the official download)::

    img_align_celeba/000001.jpg ...
    list_attr_celeba.txt      line 1: the image count; line 2: the 40 attribute names;
                              then "<file> <+1|-1> x40", whitespace separated
    list_eval_partition.txt   optional, "<file> <0|1|2>" (train / validation / test)

Generic layout: a CSV with a header row, the image file (relative to the CSV's folder,
or to an ``images/`` folder beside it) in the first column, an optional ``partition`` or
``split`` column (0/1/2 or train/val/test) and one column per binary attribute
(1/-1, 1/0, true/false or yes/no).

Images are centre-cropped to a square (``crop`` pixels, default the largest one) and
resized to ``size``; decoding many thousands of JPEGs is slow, so the decoded uint8 array
can be cached on disk, keyed by the file list, the files' sizes and times, and the crop.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from clipxai.errors import ClipxaiError
from clipxai.util.files import FILE_MODE, atomic_write_text

CELEBA_ATTR = "list_attr_celeba.txt"
CELEBA_PARTITION = "list_eval_partition.txt"
CELEBA_IMAGES = "img_align_celeba"
SPLITS = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2, "0": 0, "1": 1, "2": 2}
_TRUE = {"1", "+1", "true", "yes", "y", "t"}
_FALSE = {"-1", "0", "false", "no", "n", "f"}
CACHE_FORMAT = 1


class DataError(ClipxaiError):
    """A dataset cannot be read: missing files, malformed attribute tables, no usable images."""


class SkippedImagesWarning(UserWarning):
    """Some listed images were missing or could not be decoded; they were left out."""


@dataclass
class AttributeTable:
    """What an attribute file says: one row per listed image."""

    root: Path                   # the dataset folder
    image_dir: Path              # image paths are relative to this
    files: list[str]
    attributes: list[str]
    values: np.ndarray           # (N, A) int8, +1 / -1
    partition: np.ndarray | None = None   # (N,) int8: 0 train, 1 validation, 2 test
    layout: str = "celeba"
    source: Path | None = None   # the attribute file

    def __len__(self) -> int:
        return len(self.files)

    def head(self, n: int | None) -> "AttributeTable":
        """The first ``n`` rows (all when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise DataError(f"--limit must be at least 1 (got {n}).")
        part = None if self.partition is None else self.partition[:n]
        return AttributeTable(self.root, self.image_dir, self.files[:n], self.attributes, self.values[:n],
                              part, self.layout, self.source)


# -- reading attribute tables --------------------------------------------------------------

def _first_existing(candidates: list[Path]) -> Path | None:
    return next((p for p in candidates if p.exists()), None)


def read_table(data: str | Path, images: str | Path | None = None) -> AttributeTable:
    """Read a CelebA-layout folder, a ``list_attr_celeba.txt``, a CSV, or a folder with one CSV."""
    path = Path(data).expanduser()
    if not path.exists():
        raise DataError(f"The dataset {path} does not exist.")
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return read_csv(path, images)
        return read_celeba(path.parent, attr_file=path, images=images)
    attr = _first_existing([path / CELEBA_ATTR, path / "Anno" / CELEBA_ATTR])
    if attr is not None:
        return read_celeba(path, attr_file=attr, images=images)
    csvs = sorted(path.glob("*.csv"))
    if len(csvs) == 1:
        return read_csv(csvs[0], images)
    if len(csvs) > 1:
        raise DataError(f"{path} holds {len(csvs)} CSV files; pass the one with the attributes as DATA.")
    raise DataError(f"No attribute file in {path}: expected {CELEBA_ATTR} (CelebA layout) "
                    f"or one CSV file with a header row.")


def read_celeba(root: Path, attr_file: Path | None = None, images: str | Path | None = None) -> AttributeTable:
    """The CelebA attribute list (and partition, when present) of the folder ``root``."""
    attr_file = attr_file or root / CELEBA_ATTR
    if not attr_file.is_file():
        raise DataError(f"The attribute file {attr_file} does not exist.")
    name = attr_file.name
    try:
        lines = attr_file.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        raise DataError(f"The attribute file {attr_file} cannot be read ({err.strerror}).") from err
    lines = [ln for ln in lines if ln.strip()]
    if len(lines) < 2:
        raise DataError(f"{name} is too short: CelebA's format needs a count line and a header line of attribute names.")
    try:
        count = int(lines[0].split()[0])
    except ValueError:
        raise DataError(f"The first line of {name} should be the number of images, not '{lines[0].strip()[:40]}'.") from None
    header = lines[1].split()
    if len(set(header)) != len(header):
        raise DataError(f"The header of {name} names an attribute twice.")
    files, rows = [], []
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        values = parts[1:]
        if len(values) != len(header):
            raise DataError(f"Line {lineno} of {name} has {len(values)} values, but its header names "
                            f"{len(header)} attributes.")
        try:
            row = [_flag(v) for v in values]
        except ValueError as err:
            raise DataError(f"Line {lineno} of {name} holds '{err}', which is not +1 or -1.") from None
        files.append(parts[0])
        rows.append(row)
    if len(files) != count:
        raise DataError(f"{name} says it lists {count} images but lists {len(files)}; the file may be truncated.")
    if not files:
        raise DataError(f"{name} lists no images.")
    base = attr_file.parent.parent if attr_file.parent.name == "Anno" else attr_file.parent
    image_dir = Path(images) if images else _first_existing(
        [base / CELEBA_IMAGES, base / "Img" / CELEBA_IMAGES, root / CELEBA_IMAGES])
    if image_dir is None or not Path(image_dir).is_dir():
        raise DataError(f"The image folder {CELEBA_IMAGES} was not found beside {name} in {base}.")
    part_file = _first_existing([base / CELEBA_PARTITION, base / "Eval" / CELEBA_PARTITION])
    partition = _read_partition(part_file, files) if part_file else None
    return AttributeTable(base, Path(image_dir), files, header, np.asarray(rows, np.int8), partition,
                          "celeba", attr_file)


def _flag(text: str) -> int:
    t = text.strip().lower()
    if t in _TRUE:
        return 1
    if t in _FALSE:
        return -1
    raise ValueError(text)


def _read_partition(path: Path, files: list[str]) -> np.ndarray:
    """Split of each listed file; files the partition does not mention go to training."""
    split = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(f"Line {lineno} of {path.name} should read '<file> 0|1|2'.")
        split[parts[0]] = int(parts[1])
    missing = sum(f not in split for f in files)
    if missing:
        warnings.warn(f"{path.name} does not mention {missing} listed images; they are used for training.",
                      UserWarning, stacklevel=3)
    return np.asarray([split.get(f, 0) for f in files], np.int8)


def read_csv(path: Path, images: str | Path | None = None) -> AttributeTable:
    """A CSV of binary attributes: file column first, optional partition/split column."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            table = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"The attribute file {path} cannot be read as CSV ({type(err).__name__}).") from err
    if not table:
        raise DataError(f"The attribute file {path} is empty.")
    header = [h.strip() for h in table[0]]
    if len(header) < 2:
        raise DataError(f"The header of {path.name} needs a file column and at least one attribute column.")
    split_col = next((i for i, h in enumerate(header) if i and h.lower() in ("partition", "split")), None)
    attr_cols = [i for i in range(1, len(header)) if i != split_col]
    if len({header[i] for i in attr_cols}) != len(attr_cols):
        raise DataError(f"The header of {path.name} names an attribute twice.")
    files, rows, parts = [], [], []
    for lineno, row in enumerate(table[1:], start=2):
        if len(row) != len(header):
            raise DataError(f"Line {lineno} of {path.name} has {len(row)} fields, but its header has {len(header)}.")
        try:
            rows.append([_flag(row[i]) for i in attr_cols])
        except ValueError as err:
            raise DataError(f"Line {lineno} of {path.name} holds '{err}', which is not a binary value "
                            f"(1/-1, 1/0, true/false, yes/no).") from None
        if split_col is not None:
            key = row[split_col].strip().lower()
            if key not in SPLITS:
                raise DataError(f"Line {lineno} of {path.name} has split '{row[split_col]}'; use train/val/test or 0/1/2.")
            parts.append(SPLITS[key])
        files.append(row[0].strip())
    if not files:
        raise DataError(f"{path.name} lists no images.")
    if images:
        image_dir = Path(images)
    elif not (path.parent / files[0]).exists() and (path.parent / "images" / files[0]).exists():
        image_dir = path.parent / "images"
    else:
        image_dir = path.parent
    partition = np.asarray(parts, np.int8) if split_col is not None else None
    return AttributeTable(path.parent, image_dir, files, [header[i] for i in attr_cols],
                          np.asarray(rows, np.int8), partition, "csv", path)


# -- decoding images -----------------------------------------------------------------------

def load_image(path: str | Path, size: int, crop: int | None = None) -> np.ndarray:
    """One image as uint8 [3, size, size]: centre square of side ``crop`` (default the largest),
    resized with antialiasing. Raises OSError (or PIL's error) when it cannot be decoded."""
    from PIL import Image  # noqa: PLC0415

    with Image.open(path) as im:
        im = im.convert("RGB")
        side = min(im.width, im.height) if crop is None else min(crop, im.width, im.height)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        im = im.crop((left, top, left + side, top + side))
        if side != size:
            im = im.resize((size, size), Image.BICUBIC, reducing_gap=None if side < 2 * size else 2.0)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1).copy()


@dataclass
class ImageSet:
    """Decoded images and which table rows they are (rows whose image failed are absent)."""

    images: np.ndarray            # (M, 3, S, S) uint8
    rows: np.ndarray              # (M,) int64 indices into the table
    skipped: list[str] = field(default_factory=list)


def default_cache_dir() -> Path:
    """``$CLIPXAI_CACHE/cvae`` or ``~/.cache/clipxai/cvae``."""
    root = os.environ.get("CLIPXAI_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "clipxai") / "cvae"


def _images_key(table: AttributeTable, size: int, crop: int | None) -> str:
    h = hashlib.sha256(json.dumps([CACHE_FORMAT, str(table.image_dir.resolve()), size, crop]).encode())
    for name in table.files:
        try:
            st = (table.image_dir / name).stat()
            h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{name}\0missing\n".encode())
    return h.hexdigest()[:32]


def decode_images(table: AttributeTable, size: int = 64, crop: int | None = None,
                  cache_dir: str | Path | None = None,
                  progress: Callable[[int, int], None] | None = None) -> ImageSet:
    """Decode every listed image; missing or undecodable ones are skipped, counted and warned about.

    With ``cache_dir`` the images are decoded straight into a memory-mapped file there
    (CelebA at 64 px is 2.4 GB) that is reused while the files are unchanged.
    Raises ``DataError`` when no image at all can be used.
    """
    if size < 8:
        raise DataError(f"The image size must be at least 8 pixels (got {size}).")
    shape = (len(table), 3, size, size)
    base = tmp = None
    if cache_dir is not None:
        base = Path(cache_dir).expanduser() / f"images-{_images_key(table, size, crop)}"
        got = _read_image_cache(base, size)
        if got is not None:
            _warn_skipped(got.skipped, len(table))
            return got
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=base.parent, prefix=".tmp-", suffix=".npy")
            os.close(fd)
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        except OSError:
            base = tmp = None  # an unwritable cache: decode in memory
    if base is None:
        out = np.empty(shape, np.uint8)
    try:
        kept, skipped = [], []
        for i, name in enumerate(table.files):
            try:
                out[len(kept)] = load_image(table.image_dir / name, size, crop)
                kept.append(i)
            except Exception:  # noqa: BLE001  (PIL raises many kinds on a broken file)
                skipped.append(name)
            if progress is not None and (i + 1) % 1000 == 0:
                progress(i + 1, len(table))
        if not kept:
            source = table.source.name if table.source else "the dataset"
            raise DataError(f"None of the {len(table)} images listed in {source} could be read from {table.image_dir}.")
        result = ImageSet(out[:len(kept)], np.asarray(kept, np.int64), skipped)
        if base is not None:
            out.flush()
            _commit_image_cache(Path(tmp), base, result)
            tmp = None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    _warn_skipped(skipped, len(table))
    return result


def _warn_skipped(skipped: list[str], total: int) -> None:
    if skipped:
        warnings.warn(f"Skipped {len(skipped)} of {total} images that are missing or cannot be decoded "
                      f"(first: {skipped[0]}).", SkippedImagesWarning, stacklevel=3)


def _read_image_cache(base: Path, size: int) -> ImageSet | None:
    """The cached images (memory-mapped), or None when absent or unusable."""
    try:
        meta = json.loads(base.with_suffix(".json").read_text())
        images = np.load(base.with_suffix(".npy"), allow_pickle=False, mmap_mode="r")
        rows = np.asarray(meta["rows"], np.int64)
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if images.dtype != np.uint8 or images.shape[1:] != (3, size, size) or len(images) < len(rows):
        return None
    return ImageSet(images[:len(rows)], rows, list(meta.get("skipped", [])))


def _commit_image_cache(tmp: Path, base: Path, result: ImageSet) -> None:
    """Rename the decoded array into place, then write the index that makes it valid."""
    try:
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, base.with_suffix(".npy"))
        atomic_write_text(base.with_suffix(".json"), json.dumps({"rows": result.rows.tolist(), "skipped": result.skipped}))
    except OSError:
        tmp.unlink(missing_ok=True)  # an unwritable cache only costs time next time


# -- splits --------------------------------------------------------------------------------

def split_rows(table: AttributeTable, rows: np.ndarray, val_fraction: float = 0.05,
               seed: int = 0) -> dict[str, np.ndarray]:
    """Positions (into ``rows``) of the train / val / test images.

    A partition file decides when present (and has validation images); otherwise a seeded
    ``val_fraction`` of the images is held out for validation, and there is no test split.
    """
    n = len(rows)
    if table.partition is not None:
        part = table.partition[rows]
        split = {"train": np.nonzero(part == 0)[0], "val": np.nonzero(part == 1)[0], "test": np.nonzero(part == 2)[0]}
        if len(split["train"]) and len(split["val"]):
            return split
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(max(1, int(round(n * val_fraction))), n - 1) if n > 1 else 0
    return {"train": np.sort(order[n_val:]), "val": np.sort(order[:n_val]), "test": np.empty(0, np.int64)}
