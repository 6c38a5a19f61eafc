"""One seed, many independent streams of randomness: one per consumer and purpose.

``derive_seed(7, "init")`` and ``derive_seed(7, "augment")`` are unrelated 63-bit seeds, so
adding a new consumer never shifts the numbers another one draws.
"""

from __future__ import annotations

import hashlib


def derive_seed(*parts) -> int:
    """A 63-bit seed from any parts (a base seed, a purpose, an index...), stable across versions."""
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "little") >> 1


def generator(*parts):
    """A CPU ``torch.Generator`` seeded with ``derive_seed(*parts)``."""
    import torch  # noqa: PLC0415

    return torch.Generator().manual_seed(derive_seed(*parts))
