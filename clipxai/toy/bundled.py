"""The toy CLIPs shipped inside the package, as xz-compressed fp16 state dicts.

``toy`` is the model users run offline; ``toy-b`` (another training seed) is the
independent judge. Each file is ``torch.save(state_dict)`` compressed with xz; the
decompressed state dict is exactly what ``clip.load(path, jit=False)`` accepts.
"""

from __future__ import annotations

import lzma
from pathlib import Path

from clipxai.errors import ModelLoadError

WEIGHTS_DIR = Path(__file__).parent / "weights"
BUNDLED_MODELS = {
    "toy": WEIGHTS_DIR / "toy.pt.xz",
    "toy-b": WEIGHTS_DIR / "toy-b.pt.xz",
}
# The commands that retrain each model exactly (see clipxai/toy/MODEL.md).
REBUILD_HINT = {
    "toy": "clipxai toy train --seed 0 --bundle toy --overwrite",
    "toy-b": "clipxai toy train --seed 1 --bundle toy-b --overwrite",
}


def load_bundled(name: str) -> tuple[dict, str, str]:
    """(state_dict, sha256 of the shipped file, its path) of a bundled toy model."""
    from clipxai.models.weights import file_sha256, load_state_dict_bytes  # noqa: PLC0415

    path = BUNDLED_MODELS[name]
    if not path.is_file():
        raise ModelLoadError(
            f"The bundled model '{name}' is missing ({path}); rebuild it with `{REBUILD_HINT[name]}`."
        )
    corrupt = f"The bundled model file {path} is corrupt; rebuild it with `{REBUILD_HINT[name]}`."
    try:
        data = lzma.decompress(path.read_bytes())
    except (lzma.LZMAError, EOFError, OSError) as err:
        raise ModelLoadError(corrupt) from err
    try:
        sd = load_state_dict_bytes(data, f"The bundled model file {path}")
    except ModelLoadError as err:  # valid xz around something that is not a state dict
        raise ModelLoadError(corrupt) from err
    if not isinstance(sd, dict):
        raise ModelLoadError(corrupt)
    return sd, file_sha256(path), str(path)
