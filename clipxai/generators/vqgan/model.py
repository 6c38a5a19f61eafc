"""A taming-transformers first stage as a plain ``nn.Module``, and loading one from its files.

``VQGAN`` holds exactly the weights of taming's ``VQModel`` / ``GumbelVQ`` minus the loss
(encoder, decoder, quantize, quant_conv, post_quant_conv), built from taming's own
``Encoder``, ``Decoder``, ``VectorQuantizer2`` and ``GumbelQuantize``. Nothing of
PyTorch Lightning is imported: checkpoints load strictly into this module.
"""

from __future__ import annotations

import contextlib
import io
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from clipxai.errors import ModelLoadError
from clipxai.generators.vqgan.files import EXTRA_HINT, VQGANConfig, read_config, read_state_dict

# Bundled VQGANs: name -> (yaml, checkpoint), resolved inside the installed package.
WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "toy" / "weights"
BUNDLED = {"toy": (WEIGHTS_DIR / "vqgan-toy.yaml", WEIGHTS_DIR / "vqgan-toy.ckpt")}
REBUILD_HINT = {"toy": "clipxai toy train-vqgan --bundle"}


def _taming_modules():
    """taming's network building blocks; a missing or outdated taming becomes one sentence."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from taming.modules.diffusionmodules.model import Decoder, Encoder  # noqa: PLC0415
            from taming.modules.vqvae.quantize import GumbelQuantize, VectorQuantizer2  # noqa: PLC0415
    except ImportError as err:
        missing = getattr(err, "name", None) or "taming"
        if missing.startswith("taming") and "cannot import name" in str(err):
            raise ModelLoadError(
                f"The installed taming package lacks VectorQuantizer2 or GumbelQuantize (taming-transformers "
                f"0.0.1 is too old); install taming-transformers-rom1504 with `{EXTRA_HINT}`."
            ) from err
        raise ModelLoadError(
            f"VQGAN latents need the optional extra that provides taming-transformers "
            f"({missing} is not installed); install it with `{EXTRA_HINT}`."
        ) from err
    return Encoder, Decoder, VectorQuantizer2, GumbelQuantize


class VQGAN(nn.Module):
    """taming's encoder, quantizer and decoder; images in [-1, 1], latents (B, embed_dim, H/f, W/f)."""

    def __init__(self, config: VQGANConfig):
        super().__init__()
        Encoder, Decoder, VectorQuantizer2, GumbelQuantize = _taming_modules()
        dd = config.ddconfig
        self.config = config
        # taming's Decoder prints "Working with z of shape ..." to stdout; ascend's stdout is
        # reserved for run paths.
        with contextlib.redirect_stdout(io.StringIO()):
            self.encoder = Encoder(**dd)
            self.decoder = Decoder(**dd)
        if config.kind == "gumbel":
            self.quantize = GumbelQuantize(dd["z_channels"], config.embed_dim, n_embed=config.n_embed,
                                           kl_weight=config.kl_weight, temp_init=1.0)
        else:
            self.quantize = VectorQuantizer2(config.n_embed, config.embed_dim, beta=0.25)
        self.quant_conv = nn.Conv2d(dd["z_channels"], config.embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, dd["z_channels"], 1)

    # -- facts ----------------------------------------------------------------------------
    @property
    def factor(self) -> int:
        return self.config.factor

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    @property
    def n_embed(self) -> int:
        return self.config.n_embed

    @property
    def codebook(self) -> torch.Tensor:
        """(n_embed, embed_dim): the vectors latents are snapped to."""
        q = self.quantize
        return (q.embed if self.config.kind == "gumbel" else q.embedding).weight

    # -- latent <-> image -----------------------------------------------------------------
    def nearest_codes(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest codebook vector at every latent position: (B, h, w)."""
        with torch.no_grad():
            e = self.codebook
            flat = z.detach().movedim(1, -1).reshape(-1, e.shape[1])
            dist = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.T) + e.pow(2).sum(1)
            return dist.argmin(1).view(z.shape[0], *z.shape[2:])

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Latents made of codebook vectors: (B, h, w) indices -> (B, embed_dim, h, w)."""
        return self.codebook[codes].movedim(-1, 1)

    def snap(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest codebook vectors in the forward pass; identity gradient to ``z`` (straight-through)."""
        zq = self.embed_codes(self.nearest_codes(z))
        return z + (zq - z).detach()

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Quantized latents of images in [0, 1] (Gumbel models take the most likely code, no sampling)."""
        h = self.quant_conv(self.encoder(images * 2 - 1))
        if self.config.kind == "gumbel":
            return self.embed_codes(self.quantize.proj(h).argmax(1))
        return self.embed_codes(self.nearest_codes(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in about [-1, 1] from (already quantized) latents."""
        return self.decoder(self.post_quant_conv(z))


# ---------------------------------------------------------------------------------------
# Loading

@dataclass
class LoadedVQGAN:
    """A frozen VQGAN and what run.json records about it."""

    module: VQGAN
    info: dict


def resolve_files(name: str | None = None, config: str | Path | None = None,
                  checkpoint: str | Path | None = None) -> tuple[Path, Path, str | None]:
    """(yaml, checkpoint, bundled name) from ``--vqgan NAME`` or ``--vqgan-config``/``--vqgan-checkpoint``.

    Given only one of the two files, the other is looked for beside it with the same stem
    (``X.yaml`` next to ``X.ckpt``), the way release files are usually kept.
    """
    if name:
        if config or checkpoint:
            raise ModelLoadError("Give either --vqgan NAME or --vqgan-config/--vqgan-checkpoint, not both.")
        if name not in BUNDLED:
            raise ModelLoadError(f"'{name}' is not a bundled VQGAN; choose one of {', '.join(BUNDLED)} "
                                 f"or pass --vqgan-config and --vqgan-checkpoint.")
        yaml_path, ckpt_path = BUNDLED[name]
        if not ckpt_path.is_file() or not yaml_path.is_file():
            raise ModelLoadError(f"The bundled VQGAN '{name}' is missing ({ckpt_path}); rebuild it with `{REBUILD_HINT[name]}`.")
        return yaml_path, ckpt_path, name
    if not config and not checkpoint:
        raise ModelLoadError("The vqgan parameterization needs a model: --vqgan toy, or --vqgan-config X.yaml "
                             "with --vqgan-checkpoint Y.ckpt.")
    if config and checkpoint:
        return Path(config).expanduser(), Path(checkpoint).expanduser(), None
    given = Path(config or checkpoint).expanduser()
    suffixes = (".ckpt", ".pt") if config else (".yaml", ".yml")
    stem = given.name.rsplit(".", 1)[0]
    for suffix in suffixes:
        sibling = given.with_name(stem + suffix)
        if sibling.is_file():
            return (given, sibling, None) if config else (sibling, given, None)
    flag = "--vqgan-checkpoint" if config else "--vqgan-config"
    raise ModelLoadError(f"{given} was given without {flag}, and no file of the same name sits beside it.")


_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 2


def load_vqgan(name: str | None = None, config: str | Path | None = None, checkpoint: str | Path | None = None,
               device: str | torch.device = "cpu") -> LoadedVQGAN:
    """Load a VQGAN by bundled name or by its two files; frozen, eval mode, fp32.

    Loaded models are kept for the process (two at most), keyed by the files' paths, sizes
    and modification times, so several ascents in one session load them once.
    """
    yaml_path, ckpt_path, bundled = resolve_files(name, config, checkpoint)
    key = (_file_key(yaml_path), _file_key(ckpt_path), str(torch.device(device)))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    cfg = read_config(yaml_path)
    state_dict, how = read_state_dict(ckpt_path)
    module = build_vqgan(cfg)
    load_weights(module, state_dict, yaml_path, ckpt_path)
    module = module.to(device).eval().requires_grad_(False)
    from clipxai.models.weights import file_sha256  # noqa: PLC0415

    info = {
        "vqgan": bundled,
        "config": str(yaml_path.resolve()),
        "checkpoint": str(ckpt_path.resolve()),
        "checkpoint_sha256": file_sha256(ckpt_path),
        "checkpoint_read": how,
        "target": cfg.target,
        "embed_dim": cfg.embed_dim,
        "n_embed": cfg.n_embed,
        "factor": cfg.factor,
    }
    loaded = LoadedVQGAN(module, info)
    _CACHE[key] = loaded
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return loaded


def _file_key(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return (str(path),)
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def build_vqgan(cfg: VQGANConfig) -> VQGAN:
    """The network the yaml describes, randomly initialised."""
    try:
        return VQGAN(cfg)
    except ModelLoadError:
        raise
    except (ValueError, TypeError, KeyError, RuntimeError, ZeroDivisionError) as err:
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise ModelLoadError(f"The VQGAN config {cfg.path} describes a network taming cannot build ({first}).") from err


def load_weights(module: VQGAN, state_dict: dict, yaml_path: Path, ckpt_path: Path) -> None:
    """Strict loading; any missing, extra or misshapen weight is one sentence naming both files."""
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        detail = _mismatch_detail(module, state_dict)
        raise ModelLoadError(f"The VQGAN checkpoint {ckpt_path} does not fit the config {yaml_path} ({detail}).") from err


def _mismatch_detail(module: nn.Module, state_dict: dict) -> str:
    own = module.state_dict()
    for key, value in state_dict.items():
        if key in own and tuple(own[key].shape) != tuple(value.shape):
            return f"{key} is {tuple(value.shape)} in the checkpoint but {tuple(own[key].shape)} in the config"
    missing = [k for k in own if k not in state_dict]
    if missing:
        return f"{len(missing)} weights such as {missing[0]} are missing"
    extra = [k for k in state_dict if k not in own]
    return f"{len(extra)} unexpected weights such as {extra[0]}" if extra else "the weights differ"


def clear_cache() -> None:
    """Forget loaded VQGANs (tests, or after replacing a file in place with the same size and time)."""
    _CACHE.clear()


__all__ = ["VQGAN", "LoadedVQGAN", "BUNDLED", "load_vqgan", "build_vqgan", "load_weights", "resolve_files",
           "clear_cache"]
