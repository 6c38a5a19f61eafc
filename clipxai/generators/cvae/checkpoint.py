"""CVAE checkpoint files: what they hold, how they are found, and rebuilding conditions from text.

A checkpoint is a ``torch.save``d dict of plain values and tensors (it loads with
``weights_only=True``): the model's shape and state dict, the training config, the
attribute names, the conditioning mode and the CLIP (name and weights sha256) whose text
embeddings were the conditions. That is all sampling needs to turn a new sentence into
a condition vector. ``CHECKPOINT`` may be the file, the training folder holding it, or
the name of a CVAE shipped with the package (``toy``).
"""

from __future__ import annotations

import io
import lzma
from dataclasses import dataclass
from pathlib import Path

import torch

from clipxai.errors import ModelLoadError
from clipxai.generators.cvae.conditioning import Conditioner
from clipxai.generators.cvae.model import CVAE, CVAEConfig
from clipxai.generators.cvae.phrases import SentenceBuilder
from clipxai.util.training import save_checkpoint as save_checkpoint  # written atomically; its name here stays

FORMAT = "clipxai-cvae"
VERSION = 1
CHECKPOINT = "checkpoint.pt"
WEIGHTS_DIR = Path(__file__).parent / "weights"
BUNDLED = {"toy": WEIGHTS_DIR / "toy.pt.xz"}


def resolve(spec: str | Path) -> Path:
    """The checkpoint file a CHECKPOINT argument names (a bundled name, a folder or a file)."""
    s = str(spec)
    if s in BUNDLED:
        if not BUNDLED[s].is_file():
            raise ModelLoadError(f"The bundled CVAE '{s}' is missing from this install ({BUNDLED[s]}).")
        return BUNDLED[s]
    path = Path(s).expanduser()
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise ModelLoadError(f"The CVAE checkpoint {path} does not exist"
                             f"{' (train one with `clipxai cvae train DATA --out DIR`)' if not path.parent.exists() else ''}.")
    return path


def read_checkpoint(spec: str | Path) -> tuple[dict, Path, str]:
    """(payload, file, sha256 of the file); xz-compressed files are read too."""
    from clipxai.models.weights import file_sha256  # noqa: PLC0415

    path = resolve(spec)
    try:
        data = path.read_bytes()
        if path.suffix == ".xz":
            data = lzma.decompress(data)
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (truncated, not torch, not xz, ...)
        raise ModelLoadError(f"The CVAE checkpoint {path} cannot be read; it may be truncated or not a "
                             f"clipxai CVAE ({type(err).__name__}).") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelLoadError(f"{path} is not a clipxai CVAE checkpoint.")
    if payload.get("version", 0) > VERSION:
        raise ModelLoadError(f"{path} was written by a newer clipxai (CVAE format {payload.get('version')}).")
    return payload, path, file_sha256(path)


@dataclass
class LoadedCVAE:
    """A trained CVAE ready to decode, and what it needs to condition on text."""

    model: CVAE
    payload: dict
    path: Path
    sha256: str
    conditioner: Conditioner
    attributes: list[str]
    _clip: object = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def size(self) -> int:
        return self.model.config.size

    @property
    def zdim(self) -> int:
        return self.model.config.zdim

    @property
    def clip_info(self) -> dict | None:
        return self.payload["conditioning"].get("clip")

    def info(self) -> dict:
        """What a run's manifest records about this CVAE."""
        return {"checkpoint": str(self.path), "sha256": self.sha256, "size": self.size, "zdim": self.zdim,
                "condition": self.conditioner.mode, "conditioning_clip": self.clip_info,
                "epoch": self.payload.get("epoch")}

    def conditioning_clip(self, clip=None):
        """The CLIP whose text embeddings are this CVAE's conditions (None in attributes mode).

        ``clip`` may pass it already loaded; otherwise it is loaded by the name the checkpoint
        records. Either way its weights must be the ones the CVAE was trained with.
        """
        if not self.conditioner.uses_clip:
            return None
        info = self.clip_info
        if clip is None:
            clip = self._clip
        if clip is None:
            from clipxai.models.load import load_clip  # noqa: PLC0415

            clip = load_clip(info["name"], self.device)
        if clip.sha256 != info["sha256"]:
            raise ModelLoadError(
                f"The CVAE {self.path.name} was conditioned on the CLIP '{info['name']}' with weights "
                f"{info['sha256'][:12]}, but the CLIP given has weights {str(clip.sha256)[:12]}; its text "
                f"embeddings would not mean what the CVAE learned.")
        self._clip = clip
        return clip

    @torch.no_grad()
    def conditions(self, texts: list[str], clip=None) -> torch.Tensor:
        """(len(texts), cond_dim) condition vectors, built as in training."""
        clip_unit = attrs = None
        if self.conditioner.uses_clip:
            model = self.conditioning_clip(clip)
            feats = model.encode_text(list(texts)).float()
            clip_unit = (feats / feats.norm(dim=-1, keepdim=True)).to(self.device)
        if self.conditioner.uses_attributes:
            builder = SentenceBuilder(self.attributes, warn=False)
            attrs = torch.tensor([builder.parse(t) for t in texts], dtype=torch.float32, device=self.device)
        return self.conditioner.build(clip_unit, attrs)

    @torch.no_grad()
    def sample(self, texts: list[str], n: int, generator: torch.Generator, clip=None) -> torch.Tensor:
        """``n`` images per text, text-major: [len(texts) * n, 3, size, size] in [0, 1]."""
        c = self.conditions(texts, clip).repeat_interleave(n, dim=0)
        z = torch.randn((len(c), self.zdim), generator=generator).to(self.device)
        return self.model.decode(z, c)


def load_cvae(spec: str | Path, device: str | torch.device = "cpu", clip=None) -> LoadedCVAE:
    """A checkpoint's CVAE in eval mode, frozen, fp32 on ``device``."""
    payload, path, sha = read_checkpoint(spec)
    try:
        config = CVAEConfig(**payload["model_config"])
        model = CVAE(config)
        model.load_state_dict({k: v.float() for k, v in payload["state_dict"].items()})
        cond = payload["conditioning"]
        conditioner = Conditioner(cond["mode"], cond["clip_dim"], cond["n_attributes"])
        attributes = list(cond["attributes"])
    except (KeyError, TypeError, RuntimeError) as err:
        raise ModelLoadError(f"The CVAE checkpoint {path} is incomplete or its weights do not fit its "
                             f"config ({type(err).__name__}).") from err
    if conditioner.dim != config.cond_dim:
        raise ModelLoadError(f"The CVAE checkpoint {path} has a condition width that does not match its model.")
    model = model.to(device).eval().requires_grad_(False)
    return LoadedCVAE(model, payload, path, sha, conditioner, attributes, clip)


def export_checkpoint(spec: str | Path, out: str | Path, half: bool = True) -> Path:
    """A small file for sampling and ascent only: no optimizer state, fp16 weights, xz-compressed
    when ``out`` ends in ``.xz`` (how the bundled CVAE ships)."""
    payload, _, _ = read_checkpoint(spec)
    small = {k: v for k, v in payload.items() if k not in ("optimizer",)}
    if half:
        small["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}
        small["condition_mean"] = payload["condition_mean"].half()
    buffer = io.BytesIO()
    torch.save(small, buffer)
    data = buffer.getvalue()
    out = Path(out)
    if out.suffix == ".xz":
        data = lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return out
