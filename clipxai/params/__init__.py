"""Parameterizations: what the optimizer changes, and how it becomes an image.

A factory takes a ``ParamContext`` (batch, size, device, one generator per seed, the
prompt) and exactly the keyword options it declares, and returns a ``Parameterization``:
the leaf tensors and an ``image_fn()`` giving ``[K,3,H,W]`` images. The engine never asks
which kind it has. Options are checked against the factory's signature the same way for
every parameterization (``check_param_options``), so an option a factory does not take is
one sentence, never silently dropped.
"""

from clipxai.params import fourier, maco, pixels, pyramid  # noqa: E402,F401  (register the built-in factories)
from clipxai.params.base import (
    Factory,
    ParamContext,
    Parameterization,
    check_param_options,
    clamp_st,
    declared_options,
    get_factory,
    list_params,
    make_param,
    register_param,
)

__all__ = ["Factory", "ParamContext", "Parameterization", "check_param_options", "clamp_st", "declared_options",
           "get_factory", "list_params", "make_param", "register_param"]
