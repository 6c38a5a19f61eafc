"""The kind of value each ``ascend`` option takes, checked before anything is built.

Every option of ``clipxai.ascend`` is declared once, as a field of a config section
(``clipxai.ascent.config``); its annotation says what it holds. A keyword of the wrong kind
(``steps=True``, ``lr="x"``, ``size=16``, ``terms="tv"``) would otherwise surface later as a
TypeError deep in torch, or run a one-step ascent; here it is one sentence naming the option.
Bounds that no run can meet (``steps=10**30``) are ``validate``'s, with the others.
"""

from __future__ import annotations

import dataclasses
import numbers
import types
import typing
from typing import Any

from clipxai.errors import ClipxaiError

WORDS = {int: "a whole number", float: "a number", str: "text", bool: "true or false", list: "a list of text"}


def _field_types(config_module) -> dict[str, Any]:
    """``section.field`` (or ``field``) -> its annotation, for every config section."""
    out = {}
    for name, kind in {**config_module._SECTIONS, "": config_module.AscendConfig}.items():
        hints = typing.get_type_hints(kind, vars(config_module))
        for f in dataclasses.fields(kind):
            if name or f.name not in config_module._SECTIONS:
                out[f"{name}.{f.name}" if name else f.name] = hints[f.name]
    return out


def _accepts(annotation, value) -> bool:
    """Whether ``value`` is of the kind ``annotation`` names (None only where it is optional)."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in args)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if origin is tuple:   # a size: exactly as many items as declared, each of its kind
        return (isinstance(value, (list, tuple)) and len(value) == len(args)
                and all(_accepts(a, v) for a, v in zip(args, value)))
    if origin is list:
        return isinstance(value, (list, tuple)) and all(_accepts(args[0], v) for v in value)
    if annotation is dict or origin is dict:
        return isinstance(value, dict)
    return True


def _described(annotation) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(args) > 1 and str in args:
        return "text or a list of text"
    base = args[0] if len(args) == 1 and typing.get_origin(annotation) in (typing.Union, types.UnionType) else annotation
    if typing.get_origin(base) is tuple:
        return "two whole numbers (width, height)"
    return WORDS.get(typing.get_origin(base) or base, str(base))


def check_kinds(options: dict[str, Any], flat: dict[str, str], config_module) -> dict[str, Any]:
    """``options`` with one text given for a list option made a list of it; ``ClipxaiError`` with one
    sentence for the first given option (``None``: not given) whose value is of the wrong kind."""
    declared = _field_types(config_module)
    options = dict(options)
    for name, value in options.items():
        where = flat.get(name)
        if value is None or where not in declared:
            continue
        annotation = declared[where]
        if isinstance(value, str) and typing.get_origin(annotation) is list:   # terms="tv": one term
            options[name] = value = [value]
        if not _accepts(annotation, value):
            shown = repr(value)[:60]
            raise ClipxaiError(f"{name} takes {_described(annotation)} (got {shown}, {type(value).__name__}).")
    return options
