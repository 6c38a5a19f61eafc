"""Terms by name: built-in terms, `file.py:fn`, `module:fn` and the entry points of installed packages."""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from pathlib import Path

from clipxai.errors import TermError
from clipxai.terms.base import TERMS, Objective, _entry_point_terms
from clipxai.terms.diversity import parse_diversity
from clipxai.terms.features import parse_spec
from clipxai.terms.palette import parse_palette
from clipxai.util.registry import did_you_mean


def load_term(spec: str) -> Objective:
    """Resolve ``spec`` to an Objective; ``TermError`` (one sentence) if it cannot be found."""
    spec = spec.strip()
    if not spec:
        raise TermError("A --term value is empty.")
    feature = parse_spec(spec)  # neuron:LAYER:UNIT, channel:..., direction:..., head:...
    if feature is not None:
        return feature
    for parse in (parse_palette, parse_diversity):  # built-ins that take an argument: palette:#hex,..., diversity:LAYER
        argued = parse(spec)
        if argued is not None:
            return argued
    if spec in TERMS:
        return _as_objective(TERMS[spec](), spec)
    eps = _entry_point_terms()
    if spec in eps:
        try:
            fn = eps[spec].load()
        except Exception as err:  # noqa: BLE001
            raise TermError(f"The term plugin '{spec}' ({eps[spec].value}) cannot be loaded: {err}.") from err
        return _as_objective(fn, spec)
    if ":" not in spec:
        raise TermError(
            f"'{spec}' is not a known term{did_you_mean(spec, [*TERMS, *eps])}; use a built-in name ({', '.join(sorted(TERMS))}), "
            f"file.py:function or package.module:function."
        )
    where, fn_name = spec.rsplit(":", 1)
    module = _import_term_module(where)
    fn = getattr(module, fn_name, None)
    if fn is None or not callable(fn):
        raise TermError(f"{where} has no function named '{fn_name}'.")
    return _as_objective(fn, fn_name)


def _import_term_module(where: str):
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where).expanduser()
        if not path.is_file():
            raise TermError(f"The term file {path} does not exist.")
        name = f"clipxai_user_term_{abs(hash(str(path.resolve())))}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # noqa: BLE001  (any error in user code)
            raise TermError(f"The term file {path} failed to import ({type(err).__name__}: {err}).") from err
        sys.modules[name] = module
        return module
    try:
        return importlib.import_module(where)
    except Exception as err:  # noqa: BLE001
        raise TermError(f"The term module '{where}' cannot be imported ({type(err).__name__}: {err}).") from err


def _as_objective(obj, name: str) -> Objective:
    if isinstance(obj, Objective):
        return obj
    if callable(obj):
        return Objective(obj, name)
    raise TermError(f"The term '{name}' is a {type(obj).__name__}, not a callable term.")


def parse_term_option(value: str) -> tuple[str, float]:
    """``"spec"`` or ``"spec=weight"`` (weight multiplies the term; it is maximized)."""
    if "=" in value:
        spec, raw = value.rsplit("=", 1)
        try:
            weight = float(raw)
        except ValueError as err:
            raise TermError(f"The weight '{raw}' in --term '{value}' is not a number.") from err
        if not math.isfinite(weight):
            raise TermError(f"The weight in --term '{value}' must be finite.")
        return spec, weight
    return value, 1.0


load_loss = load_term  # the first name, kept for scripts written against it
