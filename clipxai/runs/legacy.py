"""Reading the folders of the original script (zer0int's clipga-self-text-to-image.py).

That script saved, every 10 iterations from 0:

    images/image_<step>.png                    uint8 RGB, min-max normalised per image
    activations/layer<L>_iteration<step>.npy   output.view(output.size(0), -1) of visual
                                               resblock L, min-max normalised; CLIP's resblocks
                                               run sequence-first, so (tokens, width), e.g.
                                               (257, 1024) for ViT-L/14 (any 2-D shape is taken)
    gradients/gradient_iteration<step>.npy     (1, 3*224*224) float32, min-max normalised

``load_legacy_run`` turns such a folder into a ``Run`` (layout ``legacy``) whose arrays are
read file by file only when sliced. Snapshots are ordered by the step in the file name.
Empty, truncated or unreadable files are listed in ``Run.problems`` and skipped; a step
missing from one kind of file is dropped for all (unless that kind misses most steps, then
that kind is dropped instead), so every array has one row per remaining snapshot.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path
from typing import Callable

import numpy as np

from clipxai.errors import RunError
from clipxai.runs.format import FORMAT_VERSION
from clipxai.runs.reader import Run
from clipxai.util.paths import is_inside

PATTERNS = {
    "images": re.compile(r"^image_(\d+)\.png$"),
    "activations": re.compile(r"^layer(\d+)_iteration(\d+)\.npy$"),
    "gradients": re.compile(r"^gradient_iteration(\d+)\.npy$"),
}
SOURCE = "legacy layout of clipga-self-text-to-image.py"
# The script saved after optimizer.step(): a row's image is the image *after* that step's update,
# and its gradient is d loss / d image (loss = -objective) at that step, before the update.
ROW_SEMANTICS = ("row i is iteration steps[i] as the original script saved it: the image after that step's "
                 "update, activations of the image before it, the gradient d loss / d image (not d objective)")


class LazyStack:
    """A read-only array-like of one file per row, loaded only for the rows asked for."""

    def __init__(self, files: list[Path], row_shape: tuple, dtype, loader: Callable[[Path], np.ndarray]):
        self.files = list(files)
        self.row_shape = tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self._load = loader

    @property
    def shape(self) -> tuple:
        return (len(self.files), *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    def __len__(self) -> int:
        return len(self.files)

    def _rows(self, index) -> np.ndarray:
        if not len(index):
            return np.empty((0, *self.row_shape), dtype=self.dtype)
        return np.stack([self._load(self.files[i]) for i in index]).astype(self.dtype, copy=False)

    def __getitem__(self, key):
        key, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(key, (int, np.integer)):
            return self._rows([range(len(self))[key]])[0][rest]
        if isinstance(key, slice):
            index = list(range(len(self))[key])
        else:
            index = np.arange(len(self))[np.asarray(key)].ravel().tolist()
        out = self._rows(index)
        return out[(slice(None), *rest)] if rest else out

    def __array__(self, dtype=None, copy=None):
        arr = self[:]
        return arr if dtype is None else arr.astype(dtype)


# ---------------------------------------------------------------------------------------
# Checking files cheaply

def _npy_problem(path: Path) -> tuple[str | None, tuple | None]:
    """(problem, shape) of a .npy file; memory-mapping reads only its header and checks its size."""
    try:
        if path.stat().st_size == 0:
            return "empty", None
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        shape = tuple(arr.shape)
        del arr
        return None, shape
    except ValueError as err:
        return ("truncated" if "length" in str(err) or "size" in str(err) else "not a readable .npy file"), None
    except (OSError, EOFError, SyntaxError) as err:
        return f"not a readable .npy file ({type(err).__name__})", None


def _png_problem(path: Path) -> tuple[str | None, tuple | None]:
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    try:
        if path.stat().st_size == 0:
            return "empty", None
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            return None, (3, im.size[1], im.size[0])
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        return f"not a readable PNG ({type(err).__name__})", None


def _load_png(path: Path) -> np.ndarray:
    from PIL import Image  # noqa: PLC0415

    with Image.open(path) as im:
        return (np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0).transpose(2, 0, 1)


def _as_2d(shape: tuple) -> tuple:
    return (1, int(shape[0])) if len(shape) == 1 else (int(shape[0]), int(np.prod(shape[1:])))


def _image_shape(size: int) -> tuple:
    """(3, H, W) for a flattened square RGB gradient, else the flat length."""
    side = math.isqrt(size // 3) if size % 3 == 0 else 0
    return (3, side, side) if side and 3 * side * side == size else (size,)


# ---------------------------------------------------------------------------------------

def _scan(path: Path, problems: list[str] | None = None) -> dict[str, dict[int, Path]]:
    """kind -> {step: file}; activation kinds are ``activations/layer<L>``.

    Files (or whole folders) that are links leading out of ``path`` are left out and listed
    in ``problems``: a folder received from someone else must not make us read elsewhere.
    """
    found: dict[str, dict[int, Path]] = {}
    problems = [] if problems is None else problems
    for folder, kind in (("images", "images"), ("activations", "activations"), ("gradients", "gradients")):
        d = path / folder
        if not d.is_dir():
            continue
        if not is_inside(path, d):
            problems.append(f"{folder}/: a link leading outside the folder; left out")
            continue
        for f in d.iterdir():
            m = PATTERNS[kind].match(f.name)
            if not m:
                continue
            if not is_inside(path, f):
                problems.append(f"{folder}/{f.name}: a link leading outside the folder; skipped")
                continue
            if kind == "activations":
                found.setdefault(f"activations/layer{int(m.group(1))}", {})[int(m.group(2))] = f
            else:
                found.setdefault(kind, {})[int(m.group(1))] = f
    return found


def is_legacy_run(path: str | Path) -> bool:
    """Whether ``path`` holds files in the original script's layout."""
    p = Path(path)
    return p.is_dir() and bool(_scan(p))


def _validate(path: Path, kinds: dict[str, dict[int, Path]], problems: list[str]) -> dict[str, tuple]:
    """Drop unreadable files and files whose shape differs from their kind's usual one."""
    shapes = {}
    for kind, files in kinds.items():
        check = _png_problem if kind == "images" else _npy_problem
        row_shape = _as_2d if kind.startswith("activations/") else tuple  # activations: any 2-D view
        seen = {}
        for step, f in list(files.items()):
            problem, shape = check(f)
            if problem:
                problems.append(f"{f.relative_to(path)}: {problem}; skipped")
                del files[step]
            else:
                seen[step] = row_shape(shape)
        if not seen:
            continue
        usual = Counter(seen.values()).most_common(1)[0][0]
        for step, shape in seen.items():
            if shape != usual:
                problems.append(f"{files[step].relative_to(path)}: shape {shape} differs from {usual}; skipped")
                del files[step]
        shapes[kind] = usual
    return shapes


def load_legacy_run(path: str | Path) -> Run:
    """A ``Run`` over a folder of the original script's layout (see the module docstring)."""
    path = Path(path)
    problems: list[str] = []
    kinds = _scan(path, problems)
    if not kinds:
        raise RunError(f"{path} holds no files of the original script's layout"
                       + (f" inside it ({problems[0]})." if problems else "."))
    shapes = _validate(path, kinds, problems)
    kinds = {k: v for k, v in kinds.items() if v}
    union = sorted(set().union(*[set(v) for v in kinds.values()])) if kinds else []
    for kind in list(kinds):
        if len(kinds[kind]) < len(union) / 2:
            problems.append(f"{kind}: only {len(kinds[kind])} of {len(union)} snapshots; left out")
            del kinds[kind]
    steps = sorted(set.intersection(*[set(v) for v in kinds.values()])) if kinds else []
    if kinds and len(steps) < len(union):
        dropped = [s for s in union if s not in steps]
        problems.append(f"steps {', '.join(map(str, dropped[:10]))}{' ...' if len(dropped) > 10 else ''} "
                        f"miss some files; left out")

    if not steps:
        raise RunError(f"{path} has files of the original script's layout but no snapshot could be read "
                       f"({len(problems)} problem(s), the first: {problems[0] if problems else 'none'}).")
    arrays: dict = {"steps": np.asarray(steps, dtype=np.int64)}
    inventory = {"steps": {"file": "(file names)", "shape": [len(steps)], "dtype": "int64",
                           "meaning": "iteration in each file name"}}
    for kind, files in sorted(kinds.items()):
        ordered = [files[s] for s in steps]
        if kind == "images":
            stack = LazyStack(ordered, shapes[kind], np.float16, _load_png)
            meaning = "PNG snapshot, min-max normalised per image by the original script"
        elif kind == "gradients":
            row = _image_shape(int(np.prod(shapes[kind])))
            stack = LazyStack(ordered, row, np.float32, lambda f, r=row: np.load(f).reshape(r))
            meaning = "gradient, min-max normalised per snapshot by the original script"
        else:
            row = shapes[kind]
            stack = LazyStack(ordered, row, np.float32, lambda f, r=row: np.load(f).reshape(r))
            meaning = "resblock output (tokens, width), min-max normalised per snapshot by the original script"
        arrays[kind] = stack
        inventory[kind] = {"file": kind, "shape": list(stack.shape), "dtype": stack.dtype.name, "meaning": meaning}

    gaps = np.diff(steps)
    manifest = {
        "format_version": FORMAT_VERSION,
        "status": "complete",
        "layout": "legacy",
        "n_snapshots": len(steps),
        "steps_done": int(steps[-1]) + 1,
        "prompt": "",
        "prompts": [],
        "config": {"source": SOURCE, "snapshot_every": int(np.median(gaps)) if len(gaps) else None},
        "model": {"name": None},
        "snapshot_semantics": ROW_SEMANTICS,
        "arrays": inventory,
        "notes": ["Values were min-max normalised per snapshot by the original script, so magnitudes "
                  "are not comparable between snapshots; there are no embeddings or metrics."],
    }
    return Run(path=path, manifest=manifest, layout="legacy", problems=problems, _arrays=arrays)
