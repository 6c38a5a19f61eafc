"""The ``--model`` forms: a registry of prefixes, a decorator to add one, and a list function.

A form's loader gets what follows its prefix, the device and the whole spec (for messages
and the model's name) and returns a ``ClipModel``. Named models (the bundled toys) have a
registry of their own: a loader returning an OpenAI-format state dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from clipxai.util.registry import Registry

FORMS: Registry = Registry("model form")        # prefix -> Form
NAMED: Registry = Registry("named model")       # name -> fn(name) -> (state_dict, sha256, source)


@dataclass(frozen=True)
class Form:
    prefix: str
    usage: str
    help: str
    load: Callable


def register_form(prefix: str, usage: str, help: str):
    """Register ``fn(rest, device, spec) -> ClipModel`` for specs starting with ``prefix``."""
    def deco(fn):
        FORMS[prefix] = Form(prefix, usage, help, fn)
        return fn
    return deco


def list_forms() -> list[Form]:
    """Every prefixed form, longest prefix first (the order they are tried in)."""
    return sorted(FORMS.values(), key=lambda f: -len(f.prefix))


def register_model(name: str):
    """Register a loader ``fn(name) -> (state_dict, sha256, source)`` under a model name."""
    return NAMED.register(name)


def register_bundled() -> None:
    """The toy models shipped with the package, as named models."""
    try:
        from clipxai.toy import bundled  # noqa: PLC0415
    except ImportError:
        return
    for name in bundled.BUNDLED_MODELS:
        NAMED.setdefault(name, bundled.load_bundled)
