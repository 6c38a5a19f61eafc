"""The output folder of a hand-written training loop (toy CLIP, toy VQGAN, CVAE, attribute classifier).

Every training writes into a folder of its own and shares the same care with it: a new
training never mixes with the results of another one already there (unless told to
replace them), a resume needs the checkpoint and the configuration it was made with,
checkpoints are written whole or not at all, and the log grows one line at a time.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

from clipxai.errors import TrainError
from clipxai.util.files import save_torch

__all__ = ["CHECKPOINT", "TrainError", "append_line", "check_resumed_config", "prepare_folder", "save_checkpoint",
           "save_named_checkpoint"]

CHECKPOINT = "checkpoint.pt"


def prepare_folder(out: str | Path, *, resume: bool = False, overwrite: bool = False,
                   holds: dict[str, str] | None = None, checkpoint: str | None = CHECKPOINT,
                   replace: Iterable[str] = (), create: bool = True) -> Path:
    """Refuse to mix a new training with the results already in ``out``; returns the folder.

    ``holds`` names the files that mean a training already happened there, each with what it
    is ("a trained model"), checked in order; a new training refuses them unless ``overwrite``,
    which first removes the files ``replace`` lists. ``resume`` needs ``checkpoint`` (None: this
    training cannot resume, and its refusal offers only --overwrite). ``create`` makes the folder.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise TrainError(f"{out} exists and is not a folder.")
    if resume and overwrite:
        raise TrainError("Choose either --resume or --overwrite, not both.")
    if resume:
        if checkpoint is None or not (out / checkpoint).is_file():
            raise TrainError(f"{out} holds no {checkpoint or 'checkpoint'} to resume from.")
        return out
    if not overwrite:
        held = next((what for name, what in (holds or {}).items() if (out / name).exists()), None)
        if held is not None:
            hint = "pass --resume to continue it or --overwrite" if checkpoint is not None else "pass --overwrite"
            raise TrainError(f"{out} already holds {held}; {hint} to replace it.")
    else:
        for name in replace:
            (out / name).unlink(missing_ok=True)
    if create:
        out.mkdir(parents=True, exist_ok=True)
    return out


def check_resumed_config(saved: dict, given: dict, out: str | Path, allowed: Iterable[str] = ()) -> None:
    """Refuse to resume the training in ``out`` with a configuration other than the one its checkpoint
    ``saved``; only the ``allowed`` fields (a longer training's new total, say) may differ."""
    allowed = set(allowed)
    diff = sorted(k for k in set(saved) | set(given) if k not in allowed and saved.get(k) != given.get(k))
    if diff:
        raise TrainError(f"The checkpoint in {out} was made with a different configuration "
                         f"({', '.join(diff)}); resume with the same options.")


def save_checkpoint(path: str | Path, payload: Any) -> Path:
    """``torch.save`` through a temporary file renamed into place: a killed process leaves the previous
    checkpoint intact, and a reader never sees half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_torch(payload, path)


def save_named_checkpoint(path: str | Path, payload: Any) -> Path:
    """``save_checkpoint`` for files whose zip archive is named after the file, the way
    ``torch.save(obj, "name.ckpt")`` names it (taming's releases, the bundled toy VQGAN): the
    file is written under its own name in a temporary folder beside it, then moved into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    import torch  # noqa: PLC0415  (only writers of checkpoints need torch)

    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        staged = Path(tmp) / path.name
        torch.save(payload, staged)
        os.replace(staged, path)
    return path


def append_line(path: str | Path, line: str) -> None:
    """Add one line to a training's log (``train.log``, ``history.jsonl``), flushed at once, so a killed
    training's log ends with its last complete line."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
