"""Prompt strings: ``"text:weight|text:-weight"``, image prompts, and their encodings.

A negative weight excludes a concept (pushes the image away from it); several weighted
prompts are the include / exclude / extra prompts of CLIP+VQGAN notebooks. Write ``\\:`` or
``\\|`` for a literal colon or bar inside a prompt's text.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from clipxai.errors import PromptError

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


@dataclass(frozen=True)
class Prompt:
    text: str            # the text, or the image file's path for image prompts
    weight: float = 1.0
    kind: str = "text"   # "text" or "image"

    def to_dict(self) -> dict:
        return {"text": self.text, "weight": self.weight, "kind": self.kind}


@dataclass
class EncodedPrompt:
    prompt: Prompt
    features: torch.Tensor    # (D,) raw CLIP features
    embedding: torch.Tensor   # (D,) unit length

    @property
    def text(self) -> str:
        return self.prompt.text

    @property
    def weight(self) -> float:
        return self.prompt.weight


def _split_unescaped(s: str, sep: str) -> list[str]:
    return re.split(rf"(?<!\\){re.escape(sep)}", s)


def _unescape(s: str) -> str:
    return s.replace("\\:", ":").replace("\\|", "|")


def _split_weight(part: str, what: str) -> tuple[str, float]:
    pieces = _split_unescaped(part, ":")
    if len(pieces) == 1:
        return _unescape(part).strip(), 1.0
    text, raw = ":".join(pieces[:-1]), pieces[-1].strip()
    if not _NUMBER.fullmatch(raw):
        raise PromptError(
            f"The weight '{raw}' in {what} '{part.strip()}' is not a number "
            f"(write 'text:0.5', or '\\:' for a literal colon)."
        )
    weight = float(raw)
    if not math.isfinite(weight):   # 1e309 reads as inf, which the pattern alone lets through
        raise PromptError(f"The weight '{raw[:40]}' in {what} '{part.strip()[:80]}' is too large to be a finite number.")
    return _unescape(text).strip(), weight


def parse_prompts(spec: str) -> list[Prompt]:
    """Parse ``"a:1|b:-0.5"`` into prompts; raises ``PromptError`` on empty parts or bad weights."""
    if spec is None or not spec.strip():
        raise PromptError("The prompt is empty; give the text CLIP should ascend toward, e.g. \"a red heart\".")
    prompts = []
    for part in _split_unescaped(spec, "|"):
        if not part.strip():
            raise PromptError(f"The prompt '{spec}' has an empty part between '|' separators.")
        text, weight = _split_weight(part, "prompt")
        if not text:
            raise PromptError(f"The prompt part '{part.strip()}' has a weight but no text.")
        prompts.append(Prompt(text, weight, "text"))
    return prompts


def parse_image_prompt(spec: str) -> Prompt:
    """``"file.png"`` or ``"file.png:weight"``; the file must exist."""
    path, weight = _split_weight(spec, "image prompt")
    if not Path(path).is_file():
        raise PromptError(f"The image prompt file {path} does not exist.")
    return Prompt(str(Path(path)), weight, "image")


def load_image(path: str | Path, size: int | tuple[int, int]) -> torch.Tensor:
    """An image file as a [1,3,H,W] float tensor in [0,1], resized (centre-cropped) to ``size``."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    h, w = (size, size) if isinstance(size, int) else size
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            scale = max(w / im.width, h / im.height)
            im = im.resize((max(w, round(im.width * scale)), max(h, round(im.height * scale))), Image.BICUBIC)
            left, top = (im.width - w) // 2, (im.height - h) // 2
            im = im.crop((left, top, left + w, top + h))
            data = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise PromptError(f"The image {path} cannot be read as an image ({type(err).__name__}).") from err
    return data.view(h, w, 3).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def _warn_if_cut(model, texts: list[str]) -> None:
    """Say once (a warning) when a prompt fills the model's whole context: CLIP cuts what does not fit."""
    if not getattr(model, "trims_text", False):
        return
    lengths = model.tokenizer.lengths(model.tokenize(texts)).tolist()
    for text, length in zip(texts, lengths):
        if length >= model.context_length:
            shown = text if len(text) <= 40 else text[:39] + "…"
            warnings.warn(f"The prompt '{shown}' fills {model.name}'s whole context of {model.context_length} "
                          f"tokens; CLIP reads only that much of it, the rest is cut.", stacklevel=3)


def encode_prompts(model, prompts: list[Prompt], normalize_images: bool = True,
                   full_context: bool = False) -> list[EncodedPrompt]:
    """Encode text prompts in one batch and image prompts one by one (all without gradients).

    ``full_context`` pads texts to the model's whole context, as the original script did.
    """
    out: list[EncodedPrompt | None] = [None] * len(prompts)
    texts = [(i, p) for i, p in enumerate(prompts) if p.kind == "text"]
    if texts:
        _warn_if_cut(model, [p.text for _, p in texts])
        feats = model.encode_text([p.text for _, p in texts], full_context=full_context)
        for (i, p), f in zip(texts, feats):
            out[i] = EncodedPrompt(p, f, f / f.norm())
    for i, p in enumerate(prompts):
        if p.kind == "image":
            img = load_image(p.text, model.input_resolution).to(model.device)
            with torch.no_grad():
                f = model.embed_images(img, normalize=normalize_images)[0]
            out[i] = EncodedPrompt(p, f, f / f.norm())
    return out
