"""Optional extras: a command that needs one says so in one sentence, before anything heavy loads."""

from __future__ import annotations

import importlib.util

from clipxai.errors import ClipxaiError

# extra (as in pip install 'clipxai[EXTRA]') -> the modules it brings
EXTRAS = {
    "view": ("starlette", "uvicorn"),
    "sweep": ("ray",),
    "video": ("imageio_ffmpeg",),
    "sdvae": ("diffusers",),
}


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that are not installed, found without importing them."""
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def require_extra(extra: str, purpose: str) -> None:
    """Raise one sentence naming the extra when ``purpose`` (e.g. "clipxai view") cannot run without it."""
    missing = missing_modules(extra)
    if missing:
        raise ClipxaiError(f"{purpose} needs the '{extra}' extra ({', '.join(missing)} not installed): "
                           f"pip install 'clipxai[{extra}]'.")
