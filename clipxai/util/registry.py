"""One registry for everything a user names: terms, parameterizations, model forms, named models,
presets and commands.

A ``Registry`` is a dict from a name to what it names, with what every such table needs: a
decorator to register, a lookup whose refusal is one sentence with a "did you mean", a listing by
glob pattern, and *plugins*: names whose code lives in a module imported only when the name is
first asked for (an optional extra such as VQGAN, so that a missing extra breaks only its own name).
"""

from __future__ import annotations

import importlib
from difflib import get_close_matches
from fnmatch import fnmatch
from typing import Callable, TypeVar

from clipxai.errors import ClipxaiError

T = TypeVar("T")


class Registry(dict):
    """``name -> value`` for one kind of thing (``kind`` names it in messages, e.g. "parameterization").

    ``plugins`` maps names to the module that registers them when imported; ``error`` is the
    ClipxaiError subclass an unknown name raises.
    """

    def __init__(self, kind: str, items: dict | None = None, *, plugins: dict[str, str] | None = None,
                 error: type[ClipxaiError] = ClipxaiError):
        super().__init__(items or {})
        self.kind = kind
        self.plugins = dict(plugins or {})
        self.error = error

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator that registers what it decorates under ``name`` (a later one replaces it)."""
        def deco(value: T) -> T:
            self[name] = value
            return value
        return deco

    def names(self, pattern: str = "*") -> list[str]:
        """Every name, registered or plugged in, that matches the glob ``pattern``, sorted."""
        return sorted(n for n in set(self) | set(self.plugins) if fnmatch(n, pattern))

    def lookup(self, name: str):
        """What ``name`` names, importing its plugin module first if it has one.

        Unknown: one sentence listing the choices, with the closest one when there is one. A plugin
        whose module cannot be imported: one sentence saying the optional extra is missing.
        """
        if name not in self and name in self.plugins:
            try:
                importlib.import_module(self.plugins[name])
            except ImportError as err:
                raise self.error(f"The '{name}' {self.kind} needs an optional extra that is not installed ({err}).") from err
        if name not in self:
            raise self.error(f"Unknown {self.kind} '{name}'{did_you_mean(name, self.names())}; "
                             f"choose one of {', '.join(self.names())}.")
        return self[name]


def did_you_mean(name: str, known) -> str:
    """" (did you mean X?)" for the closest of ``known`` to ``name``, or "" when none is close."""
    match = get_close_matches(name, list(known), 1)
    return f" (did you mean {match[0]}?)" if match else ""
