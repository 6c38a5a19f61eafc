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
import os
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
        if isinstance(value, numbers.Integral) and not _accepts(annotation, True) and not _takes_int(annotation):
            try:   # a whole number given for a number: the float it means, so no C conversion overflows later
                options[name] = float(value)
            except OverflowError:
                raise ClipxaiError(f"{name} takes a number of at most 1e308 (got {str(value)[:20]}..., "
                                   f"{len(str(value))} digits).") from None
    return options


def _takes_int(annotation) -> bool:
    return annotation is int or int in typing.get_args(annotation)


CALLBACK_EVENTS = ("on_start", "on_forward", "on_backward", "on_step_end", "on_end")
EXPAND_KEYS = ("n", "model", "base_url", "api_key", "system_prompt", "timeout", "retries", "temperature")


def check_api_keywords(*, quiet, display_every, resume, callbacks, model_obj, expand, out) -> list:
    """The keywords of ``clipxai.ascend`` that are not config options, checked the same way: one
    sentence naming the keyword of the wrong kind, before anything is loaded or created.
    Returns ``callbacks`` as a list (it may be any iterable of callbacks)."""
    def refuse(name, what, value):
        raise ClipxaiError(f"{name} takes {what} (got {repr(value)[:60]}, {type(value).__name__}).")
    if not isinstance(quiet, bool):
        refuse("quiet", "true or false", quiet)
    if display_every is not None and (not isinstance(display_every, numbers.Integral) or isinstance(display_every, bool)):
        refuse("display_every", "a whole number of steps", display_every)   # its range: notebook_display's
    for name, value in (("resume", resume), ("out", out)):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            refuse(name, "a folder's path (text or a Path)", value)
    if isinstance(callbacks, (str, bytes, dict)) or not isinstance(callbacks, typing.Iterable):
        refuse("callbacks", "a list of callbacks", callbacks)
    callbacks = list(callbacks)
    for cb in callbacks:
        if not all(callable(getattr(cb, event, None)) for event in CALLBACK_EVENTS):
            refuse("callbacks", f"a list of callbacks (objects with {', '.join(CALLBACK_EVENTS)})", cb)
    if model_obj is not None:
        models = model_obj if isinstance(model_obj, (list, tuple)) else [model_obj]
        if not models or not all(callable(getattr(m, "encode_image", None)) and isinstance(getattr(m, "name", None), str)
                                 for m in models):
            refuse("model_obj", "a loaded ClipModel or a list of them", model_obj)
    if expand is not None:
        if not isinstance(expand, dict):
            refuse("expand", f"a dict of LLM settings ({', '.join(EXPAND_KEYS)})", expand)
        unknown = sorted(str(k) for k in expand if k not in EXPAND_KEYS)
        if unknown:
            raise ClipxaiError(f"expand does not take {', '.join(unknown)[:80]}; it takes {', '.join(EXPAND_KEYS)}.")
        n = expand.get("n", 1)
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or not 1 <= n <= 64:
            refuse("expand's n", "a whole number from 1 to 64", n)
    return callbacks
