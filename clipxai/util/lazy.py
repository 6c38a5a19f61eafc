"""Packages whose public names are imported on first use, so that importing them stays fast."""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Callable


def lazy_attributes(package: str, where: dict[str, str]) -> tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` for ``package``: each name of ``where`` (name -> defining module)
    is imported when first asked for, then kept on the package."""
    module = sys.modules[package]

    def __getattr__(name: str):
        if name in where:
            value = getattr(import_module(where[name]), name)
            setattr(module, name, value)
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(module)) | set(where))

    return __getattr__, __dir__
