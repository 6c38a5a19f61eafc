"""Loading CLIP models and giving them one small interface.

``load_clip`` accepts a name from ``clip.available_models()`` (downloaded by clip into its
cache on first use), a local OpenAI-format file (TorchScript archive or plain state dict),
a bundled toy model (``toy``, ``toy-b``), or ``random:<arch>`` for a randomly initialised
real architecture (timing and plumbing; nothing is downloaded). Every path ends in the same
``ClipModel``: frozen, in eval mode, fp32 on CPU and fp16 weights on CUDA.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import socket
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ModelLoadError

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
DEFAULT_MODEL = "ViT-B/32"
DEFAULT_HOOKS = "visual.transformer.resblocks.*"


def _import_clip():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import clip  # noqa: PLC0415  (imports pkg_resources, which warns)
    return clip


def clip_cache_dir() -> Path:
    """The folder clip downloads named models into (and reads them from)."""
    return Path(os.environ.get("CLIPXAI_CLIP_CACHE", Path.home() / ".cache" / "clip"))


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ModelLoadError(f"'{device}' is not a device name (use auto, cpu, cuda or mps).") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda was asked for, but no CUDA GPU is available here.")
    return dev


# ---------------------------------------------------------------------------------------
# Hook points

def _pattern_regex(pattern: str) -> re.Pattern:
    """``*`` matches one dotted component, ``**`` any number of them."""
    out = []
    for part in re.split(r"(\*\*|\*)", pattern):
        out.append({"**": r".*", "*": r"[^.]*"}.get(part, re.escape(part)))
    return re.compile("".join(out) + r"\Z")


def pool_activation(output: torch.Tensor, batch: int, full: bool) -> torch.Tensor:
    """Batch-first activation of one hook point, pooled over tokens/space unless ``full``.

    CLIP's transformers run sequence-first (tokens, batch, width); convolutional blocks give
    (batch, channels, h, w). Pooling is the mean over tokens (or pixels).
    """
    if isinstance(output, tuple):
        output = output[0]
    x = output.detach()
    if x.dim() == 3 and x.shape[1] == batch and x.shape[0] != batch:
        x = x.permute(1, 0, 2)  # LND -> NLD
    if x.dim() == 4:  # N C H W -> N (HW) C
        x = x.flatten(2).transpose(1, 2)
    if x.dim() == 2 or full:
        return x.float()
    return x.float().mean(dim=1)


# ---------------------------------------------------------------------------------------
# The model wrapper

@dataclass
class ClipModel:
    """A frozen CLIP with the few things clipxai needs from it."""

    module: nn.Module
    name: str
    sha256: str
    device: torch.device
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD
    source: str = ""

    def __post_init__(self):
        self.module.eval().requires_grad_(False)
        self._mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)

    # -- shape facts ----------------------------------------------------------------------
    @property
    def input_resolution(self) -> int:
        return int(self.module.visual.input_resolution)

    @property
    def context_length(self) -> int:
        return int(self.module.context_length)

    @property
    def embed_dim(self) -> int:
        return int(self.module.text_projection.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self.module.dtype

    # -- encoding -------------------------------------------------------------------------
    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self._mean) / self._std

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Image features (not unit length) in fp32; ``images`` are [B,3,R,R] in [0,1]."""
        x = self.normalize(images) if normalize else images
        return self.module.encode_image(x.to(self.dtype)).float()

    def fit_input(self, images: torch.Tensor) -> torch.Tensor:
        """Images of any size resized to the model's input (the one resize rule: bilinear, antialiased)."""
        r = self.input_resolution
        if images.shape[-2:] == (r, r):
            return images
        return F.interpolate(images, size=(r, r), mode="bilinear", align_corners=False, antialias=True)

    def embed_images(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Features of whole images of any size (resized by ``fit_input``), as recorded in snapshots."""
        return self.encode_image(self.fit_input(images), normalize=normalize)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        clip = _import_clip()
        return clip.tokenize(texts, context_length=self.context_length, truncate=True).to(self.device)

    @torch.no_grad()
    def encode_text(self, texts: list[str], batch_size: int = 256, full_context: bool = False) -> torch.Tensor:
        """Text features (not unit length) in fp32, one row per text.

        CLIP's text transformer is causal and reads its output at the end-of-text token, so
        the padding after it changes nothing but rounding: texts are batched by length and each
        batch is cut at its longest text (short words encode ~10x faster than the full context).
        ``full_context`` encodes every text padded to the whole context, as ``clip`` itself does
        (features differ by ~1e-6; the original experiment's recipe needs them bit for bit).
        """
        texts = list(texts)
        out = torch.empty(len(texts), self.embed_dim, dtype=torch.float32, device=self.device)
        if not texts:
            return out
        tokens = self.tokenize(texts)
        if full_context:
            for start in range(0, len(texts), batch_size):
                out[start:start + batch_size] = self.module.encode_text(tokens[start:start + batch_size]).float()
            return out
        ends = tokens.argmax(dim=-1)  # the end-of-text token has the highest id
        order = ends.argsort().tolist()
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            length = int(ends[idx].max()) + 1
            out[idx] = self.module.encode_text(tokens[idx, :length]).float()
        return out

    # -- hook points ----------------------------------------------------------------------
    def hook_points(self, pattern: str = DEFAULT_HOOKS) -> list[str]:
        """Dotted module names matching ``pattern`` (comma-separated patterns allowed)."""
        regexes = [_pattern_regex(p.strip()) for p in pattern.split(",") if p.strip()]
        return [n for n, _ in self.module.named_modules() if n and any(r.match(n) for r in regexes)]

    @contextlib.contextmanager
    def capture(self, names: list[str], batch: int, full: bool = False) -> Iterator[dict]:
        """Within the block, forward passes fill the yielded dict: name -> activation."""
        store: dict[str, torch.Tensor] = {}
        modules = dict(self.module.named_modules())
        handles = []
        for name in names:
            def hook(_mod, _inp, out, _name=name):
                store[_name] = pool_activation(out, batch, full)
            handles.append(modules[name].register_forward_hook(hook))
        try:
            yield store
        finally:
            for h in handles:
                h.remove()

    def describe(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "input_resolution": self.input_resolution,
            "context_length": self.context_length,
            "embed_dim": self.embed_dim,
            "dtype": str(self.dtype).replace("torch.", ""),
            "mean": list(self.mean),
            "std": list(self.std),
        }


def state_dict_sha256(state_dict: dict) -> str:
    """A stable hash of a state dict's names and values (for models that have no file)."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        value = state_dict[key]
        h.update(key.encode())
        if torch.is_tensor(value):
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def wrap_module(module: nn.Module, name: str = "custom", device: str | torch.device = "cpu",
                sha256: str | None = None, source: str = "in-memory") -> ClipModel:
    """Wrap an in-memory ``clip.model.CLIP`` (tests, notebooks, freshly trained models)."""
    dev = resolve_device(device)
    module = module.to(dev)
    if dev.type == "cuda":
        module = module.half()
    else:
        module = module.float()
    sha = sha256 or state_dict_sha256(module.state_dict())
    return ClipModel(module=module, name=name, sha256=sha, device=dev, source=source)


# ---------------------------------------------------------------------------------------
# State dicts

_REQUIRED_KEYS = ("token_embedding.weight", "positional_embedding", "text_projection")


def build_from_state_dict(state_dict: dict, origin: str) -> nn.Module:
    """An fp32 ``clip.model.CLIP`` holding exactly these weights.

    clip's ``build_model`` rounds weights to fp16 on the way; we rebuild, go back to fp32
    and load the original tensors so a reload is exact.
    """
    clip = _import_clip()
    missing = [k for k in _REQUIRED_KEYS if k not in state_dict]
    if missing or not any(k.startswith("visual.") for k in state_dict):
        raise ModelLoadError(
            f"{origin} is not an OpenAI-format CLIP model (it has no "
            f"{missing[0] if missing else 'visual.*'} weights)."
        )
    try:
        model = clip.model.build_model(dict(state_dict)).float()
        model.load_state_dict({k: v for k, v in state_dict.items()
                               if k not in ("input_resolution", "context_length", "vocab_size")})
    except (RuntimeError, KeyError, ValueError, IndexError) as err:
        first = str(err).strip().splitlines()[0][:200]
        raise ModelLoadError(f"{origin} holds CLIP weights whose shapes do not fit together ({first}).") from err
    return model


def read_state_dict(path: Path) -> dict:
    """The state dict in an OpenAI-format file: a TorchScript archive or a torch.save'd dict."""
    if not path.is_file():
        raise ModelLoadError(f"The model file {path} does not exist.")
    if path.stat().st_size == 0:
        raise ModelLoadError(f"The model file {path} is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return torch.jit.load(str(path), map_location="cpu").state_dict()
            except RuntimeError:
                pass
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, Exception) as err:  # noqa: B014
        raise ModelLoadError(
            f"The model file {path} could not be read; it may be truncated or not a torch file "
            f"({type(err).__name__})."
        ) from err
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise ModelLoadError(f"The model file {path} holds a {type(sd).__name__}, not CLIP weights.")
    return sd


def load_state_dict_bytes(data: bytes, origin: str) -> dict:
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise ModelLoadError(f"{origin} could not be read ({type(err).__name__}).") from err


# ---------------------------------------------------------------------------------------
# Random real architectures (timing, plumbing)

ARCHITECTURES: dict[str, dict] = {
    "tiny": dict(embed_dim=64, image_resolution=32, vision_layers=2, vision_width=64,
                 vision_patch_size=8, context_length=16, vocab_size=49408,
                 transformer_width=64, transformer_heads=1, transformer_layers=2),
    "ViT-B/32": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                     vision_patch_size=32, context_length=77, vocab_size=49408,
                     transformer_width=512, transformer_heads=8, transformer_layers=12),
    "ViT-B/16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768,
                     vision_patch_size=16, context_length=77, vocab_size=49408,
                     transformer_width=512, transformer_heads=8, transformer_layers=12),
    "ViT-L/14": dict(embed_dim=768, image_resolution=224, vision_layers=24, vision_width=1024,
                     vision_patch_size=14, context_length=77, vocab_size=49408,
                     transformer_width=768, transformer_heads=12, transformer_layers=12),
}


def random_clip(arch: str = "tiny", seed: int = 0) -> nn.Module:
    """A randomly initialised CLIP of a real (or the tiny test) architecture, in fp32."""
    clip = _import_clip()
    if arch not in ARCHITECTURES:
        raise ModelLoadError(
            f"'random:{arch}' names no architecture; choose one of {', '.join(ARCHITECTURES)}."
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return clip.model.CLIP(**ARCHITECTURES[arch]).float()


# ---------------------------------------------------------------------------------------
# The one entry point

_LOADERS: dict[str, Callable[[str], tuple[dict, str, str]]] = {}


def register_model(name: str):
    """Register a loader ``fn(name) -> (state_dict, sha256, source)`` under a model name."""
    def deco(fn):
        _LOADERS[name] = fn
        return fn
    return deco


def list_models() -> list[str]:
    """Every name ``load_clip`` accepts besides file paths."""
    clip = _import_clip()
    _register_bundled()
    return sorted(_LOADERS) + [f"random:{a}" for a in ARCHITECTURES] + clip.available_models()


def _register_bundled() -> None:
    try:
        from .toy import bundled  # noqa: PLC0415
    except ImportError:
        return
    for name in bundled.BUNDLED_MODELS:
        if name not in _LOADERS:
            _LOADERS[name] = bundled.load_bundled


def load_clip(name_or_path: str = DEFAULT_MODEL, device: str | torch.device = "auto") -> ClipModel:
    """Load a CLIP by name or path; raises ``ModelLoadError`` with one clear sentence."""
    clip = _import_clip()
    spec = str(name_or_path).strip()
    if not spec:
        raise ModelLoadError("The model name is empty.")
    dev = resolve_device(device)
    _register_bundled()

    if spec in _LOADERS:
        sd, sha, source = _LOADERS[spec](spec)
        return wrap_module(build_from_state_dict(sd, f"The bundled model '{spec}'"), name=spec,
                           device=dev, sha256=sha, source=source)
    if spec.startswith("random:"):
        arch = spec.split(":", 1)[1]
        module = random_clip(arch)
        return wrap_module(module, name=spec, device=dev, sha256=f"random-{arch}-seed0", source="random init")
    if spec in clip.available_models():
        path = _download_named(spec)
        sd = read_state_dict(path)
        return wrap_module(build_from_state_dict(sd, str(path)), name=spec, device=dev,
                           sha256=file_sha256(path), source=str(path))
    path = Path(spec).expanduser()
    looks_like_path = spec.startswith(("/", "./", "../", "~")) or path.suffix in (".pt", ".pth", ".bin", ".ckpt")
    if path.exists() or looks_like_path:
        sd = read_state_dict(path)
        return wrap_module(build_from_state_dict(sd, str(path)), name=path.name, device=dev,
                           sha256=file_sha256(path), source=str(path.resolve()))
    raise ModelLoadError(
        f"'{spec}' is neither a known model nor an existing file; known models are "
        f"{', '.join(sorted(_LOADERS) + clip.available_models())} (or a path to an OpenAI-format file)."
    )


def _download_named(name: str) -> Path:
    """Path of a named model in clip's cache, downloading it if needed (bounded wait)."""
    clip = _import_clip()
    url = clip.clip._MODELS[name]
    root = clip_cache_dir()
    target = root / os.path.basename(url)
    if target.is_file():
        return target
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(20)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return Path(clip.clip._download(url, str(root)))
    except Exception as err:  # noqa: BLE001  (URLError, timeouts, checksum errors)
        with contextlib.suppress(OSError):
            if target.is_file() and target.stat().st_size == 0:
                target.unlink()
        raise ModelLoadError(
            f"The CLIP model '{name}' is not in {root} and could not be downloaded "
            f"({type(err).__name__}); place {os.path.basename(url)} from {url} in {root}, "
            f"or pass --model with a local file."
        ) from err
    finally:
        socket.setdefaulttimeout(old_timeout)
