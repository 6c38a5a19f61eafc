"""Reading taming-transformers releases: the OmegaConf yaml and the Lightning checkpoint.

The official releases (vqgan_imagenet_f16_1024, vqgan_imagenet_f16_16384, the Gumbel f8
8192 model) ship a yaml naming the model class and its ``params`` and a Lightning
checkpoint whose ``state_dict`` holds the network and the training loss. Only the network
is read: the loss (whose LPIPS part would download VGG weights) is never built, and its
``loss.*`` weights are dropped.

Checkpoints are read with ``torch.load(weights_only=True)``. Lightning checkpoints also
pickle training bookkeeping (callback classes, hyper-parameter objects) that weights-only
loading refuses; those objects are replaced by inert placeholders, since only the tensors
of ``state_dict`` are used. Only a file that still cannot be read that way is unpickled in
full, which runs code from the file: use checkpoints you trust.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from clipxai.errors import ModelLoadError

EXTRA_HINT = 'pip install -e ".[vqgan]"'

# Model classes whose first stage is encoder + quantizer + decoder with the same weight names.
TARGETS = {
    "taming.models.vqgan.VQModel": "vq",
    "taming.models.vqgan.VQNoDiscModel": "vq",
    "taming.models.vqgan.GumbelVQ": "gumbel",
}
DDCONFIG_KEYS = ("ch", "out_ch", "ch_mult", "num_res_blocks", "attn_resolutions", "in_channels",
                 "resolution", "z_channels")


@dataclass(frozen=True)
class VQGANConfig:
    """What the yaml says about the network (the loss and training settings are ignored)."""

    path: str
    target: str
    kind: str            # "vq" (VectorQuantizer2) or "gumbel" (GumbelQuantize)
    ddconfig: dict
    n_embed: int
    embed_dim: int
    kl_weight: float = 1e-8

    @property
    def factor(self) -> int:
        """Downsampling factor: image side / latent side."""
        return 2 ** (len(self.ddconfig["ch_mult"]) - 1)


def read_config(path: str | Path) -> VQGANConfig:
    """Parse a taming-transformers model yaml; ``ModelLoadError`` names the file if it is not one."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"The VQGAN config {path} does not exist.")
    try:
        from omegaconf import OmegaConf  # noqa: PLC0415
    except ImportError as err:
        raise ModelLoadError(f"Reading a VQGAN config needs omegaconf, which is not installed; run `{EXTRA_HINT}`.") from err
    try:
        data = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as err:  # noqa: BLE001  (yaml scanner/parser errors, bad interpolations)
        raise ModelLoadError(f"The VQGAN config {path} is not valid YAML ({type(err).__name__}).") from err
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or not isinstance(model.get("params"), dict):
        raise ModelLoadError(f"The VQGAN config {path} is not a taming-transformers model config (it has no model.params).")
    target = str(model.get("target", ""))
    if target not in TARGETS:
        raise ModelLoadError(
            f"The VQGAN config {path} names the model '{target}'; supported are {', '.join(TARGETS)}."
        )
    params = model["params"]
    dd = params.get("ddconfig")
    missing = [k for k in DDCONFIG_KEYS if not isinstance(dd, dict) or k not in dd]
    if missing or "n_embed" not in params or "embed_dim" not in params:
        what = f"ddconfig.{missing[0]}" if missing else ("n_embed" if "n_embed" not in params else "embed_dim")
        raise ModelLoadError(f"The VQGAN config {path} lacks model.params.{what}.")
    if params.get("remap") is not None:
        raise ModelLoadError(f"The VQGAN config {path} uses a remapped codebook (remap), which clipxai does not support.")
    return VQGANConfig(path=str(path), target=target, kind=TARGETS[target], ddconfig=dict(dd),
                       n_embed=int(params["n_embed"]), embed_dim=int(params["embed_dim"]),
                       kl_weight=float(params.get("kl_weight", 1e-8)))


# ---------------------------------------------------------------------------------------
# Checkpoints

def _opaque(name: str) -> type:
    """An inert stand-in for a pickled global that weights-only loading refuses."""
    def init(self, *args, **kwargs):
        self.args = args

    def setstate(self, state):
        self.state = state

    return type(f"Opaque[{name}]", (), {"__init__": init, "__setstate__": setstate, "__module__": __name__})


def _load(source: Path, weights_only: bool):
    """``torch.load`` to the CPU, memory-mapped when the file's format allows it."""
    try:
        return torch.load(source, map_location="cpu", weights_only=weights_only, mmap=True)
    except RuntimeError as err:
        if "mmap" not in str(err):
            raise
    return torch.load(source, map_location="cpu", weights_only=weights_only)


def _load_with_placeholders(source: Path):
    """Weights-only loading with every refused global replaced by an inert placeholder."""
    names = torch.serialization.get_unsafe_globals_in_checkpoint(source)
    with torch.serialization.safe_globals([(_opaque(n), n) for n in names]):
        return _load(source, weights_only=True)


def read_state_dict(path: str | Path) -> tuple[dict, str]:
    """The checkpoint's network weights (``loss.*`` dropped) and how the file was read.

    The second value is ``weights_only``, ``weights_only+placeholders`` or ``full unpickling``.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelLoadError(f"The VQGAN checkpoint {path} does not exist.")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"The VQGAN checkpoint {path} is empty.")
    source = path
    unreadable = (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError,
                  AttributeError, ImportError, TypeError, KeyError, IndexError)
    how = "weights_only"
    try:
        ckpt = _load(source, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err):  # not refused bookkeeping: a damaged or foreign file
            raise _unreadable(path, err) from err
        try:
            ckpt, how = _load_with_placeholders(source), "weights_only+placeholders"
        except unreadable:
            ckpt, how = None, "full unpickling"
    except unreadable as err:
        raise _unreadable(path, err) from err
    if ckpt is None:
        warnings.warn(f"The VQGAN checkpoint {path} needs full unpickling, which runs code stored in the file; "
                      f"load only checkpoints you trust.", stacklevel=2)
        try:
            ckpt = _load(source, weights_only=False)
        except Exception as err:  # noqa: BLE001  (anything a foreign pickle may raise)
            raise _unreadable(path, err) from err
    return _network_weights(ckpt, path), how


def _unreadable(path: Path, err: BaseException) -> ModelLoadError:
    return ModelLoadError(
        f"The VQGAN checkpoint {path} could not be read; it may be truncated or not a torch checkpoint "
        f"({type(err).__name__})."
    )


def _network_weights(ckpt, path: Path) -> dict:
    """``ckpt["state_dict"]`` (a Lightning checkpoint) or ``ckpt`` itself (a plain state dict), minus the loss."""
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    plain = isinstance(ckpt, dict) and "state_dict" not in ckpt and all(torch.is_tensor(v) for v in ckpt.values())
    if not isinstance(sd, dict) or not sd or (sd is ckpt and not plain):
        raise ModelLoadError(f"The VQGAN checkpoint {path} holds no state_dict.")
    weights = {k: v for k, v in sd.items() if not str(k).startswith("loss.")}
    bad = next((k for k, v in weights.items() if not torch.is_tensor(v)), None)
    if bad is not None:
        raise ModelLoadError(f"The VQGAN checkpoint {path} has a state_dict entry '{bad}' that is not a tensor.")
    return weights
