"""Written words: is an ascended image the prompt spelled out, a typographic shortcut, not a picture?

The words are rendered with PIL at the model's input size in a fixed pool of looks (fonts:
PIL's default and the TrueType fonts found on the machine, two sizes, three colour pairs, two
positions), and an image is compared with the renders image to image, through the model's
own image embeddings, so the check works for a model that cannot read at all. Its score is
calibrated by the renders themselves: seeded renders of the words in jittered looks say how
close written words come to the pool, seeded renders of unrelated words how close other
writing comes (the model's *specificity*: 0 when it cannot tell the words from others), and
plain images (blank backgrounds in the pool's colours, the seeded noise ascent starts from)
keep flat fields and noise from reading as writing.

Measured on the bundled toy CLIPs, which were never shown text and see mostly colour:
renders of the words score as written, world images of the planted meanings and noise do
not, but renders of other words do too (specificity ~0.3-0.7) and so do some flat light
fields (the toy takes a pale field for text on it); bench/validate_trust.py prints the rates.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from clipxai.analysis.trust.judges import image_embeddings, noise_images
from clipxai.models.base import ClipModel

# TrueType fonts used when found (besides PIL's default), searched for under FONT_DIRS.
FONT_NAMES = ("DejaVuSans.ttf", "DejaVuSerif-Bold.ttf", "LiberationSans-Regular.ttf")
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts")
COLOUR_PAIRS = (
    ((255, 255, 255), (0, 0, 0)),
    ((0, 0, 0), (255, 255, 255)),
    ((255, 255, 255), (110, 110, 110)),
)
SCALES = (0.35, 0.55)  # font size as a fraction of the side (before fitting the width)
POSITIONS = {"center": 0.5, "top": 0.3}  # vertical centre of the text, fraction of the side
# The seeded jittered renders: a random look of the pool, its size times U(0.8, 1.2), moved
# by up to JITTER_SHIFT of the side each way.
JITTER_COUNT, OWN_SEED, UNRELATED_SEED, JITTER_SHIFT = 48, 11, 12, 1 / 16
DEFAULT_UNRELATED = (
    "dog",
    "tree",
    "car",
    "house",
    "book",
    "fish",
    "lamp",
    "door",
    "cloud",
    "shoe",
    "milk",
    "wind",
    "chair",
    "bread",
    "river",
    "stone",
)
# written = min(z + WRITTEN_Z, plain margin / SD + PLAIN_TOLERANCE), both in SDs of the
# jittered renders' closeness: z is the image's closeness to the renders against theirs (their
# lower tail is long, so WRITTEN_Z is 3), the plain margin how much closer it is to the words'
# renders than to the nearest plain image. An image is written when the score is >= WRITTEN_THRESHOLD.
WRITTEN_Z = 3.0
PLAIN_TOLERANCE = 1.0
WRITTEN_THRESHOLD = 0.0
SD_FLOOR = 1e-3
_IGNORED = {"\ufe0f", "\ufe0e", "\u200d"}  # emoji presentation selectors and the zero-width joiner


@dataclass(frozen=True)
class Look:
    """How one render is drawn: font (None: PIL's default), size fraction, colours, position."""

    font: str | None
    scale: float
    fg: tuple[int, int, int]
    bg: tuple[int, int, int]
    position: str


@functools.lru_cache(maxsize=1)
def available_fonts() -> tuple[str | None, ...]:
    """PIL's default font (None) and the FONT_NAMES found on this machine (any TrueType font if none)."""
    found: dict[str, str] = {}
    files = []
    for d in FONT_DIRS:
        root = Path(d).expanduser()
        if root.is_dir():
            files.extend(sorted(root.rglob("*.ttf")))
    for f in files:
        found.setdefault(f.name, str(f))
    named = [found[n] for n in FONT_NAMES if n in found]
    return (None, *(named or [str(f) for f in files[:2]]))


def looks() -> list[Look]:
    """The fixed pool of looks, in a fixed order."""
    return [
        Look(f, s, fg, bg, p)
        for f in available_fonts()
        for s in SCALES
        for fg, bg in COLOUR_PAIRS
        for p in POSITIONS
    ]


@functools.lru_cache(maxsize=256)
def _font(path: str | None, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size) if path is None else ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=4096)
def _glyph(font_path: str | None, ch: str) -> bytes:
    """One character drawn at a fixed size (cached: every look of a font asks for the same characters)."""
    im = Image.new("L", (48, 48), 0)
    ImageDraw.Draw(im).text((8, 8), ch, fill=255, font=_font(font_path, 24))
    return im.tobytes()


def has_glyphs(font_path: str | None, text: str) -> bool:
    """Whether the font draws every character of ``text`` (not its missing-glyph box)."""
    missing = _glyph(font_path, "\ue000")  # a private-use character no font here draws
    return all(ch.isspace() or _glyph(font_path, ch) != missing for ch in text)


def render_text(
    text: str, size: int, look: Look, scale: float = 1.0, offset: tuple[int, int] = (0, 0)
) -> np.ndarray:
    """``text`` drawn in ``look`` on a ``size`` x ``size`` canvas, [3, size, size] float32 in [0, 1].

    The font shrinks until the text fits the width with a 2-pixel margin each side.
    """
    im = Image.new("RGB", (size, size), look.bg)
    if text:
        draw = ImageDraw.Draw(im)
        px = max(6, int(look.scale * scale * size))
        font = _font(look.font, px)
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        if right - left > size - 4:
            font = _font(look.font, max(6, int(px * (size - 4) / (right - left))))
            left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x = size / 2 - (right - left) / 2 - left + offset[0]
        y = POSITIONS[look.position] * size - (bottom - top) / 2 - top + offset[1]
        draw.text((x, y), text, fill=look.fg, font=font)
    return np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0


def prompt_words(prompt: str) -> list[str]:
    """The words of a prompt to render: split on spaces, emoji selectors and joiners dropped."""
    text = "".join(ch for ch in unicodedata.normalize("NFC", prompt) if ch not in _IGNORED)
    return [w for w in text.split() if w]


def _pool(words: Sequence[str]) -> list[tuple[str, Look]]:
    pairs = [(w, look) for w in words for look in looks() if has_glyphs(look.font, w)]
    missing = [w for w in words if not any(p[0] == w for p in pairs)]
    if missing:
        raise ValueError(f"no available font draws {', '.join(map(repr, missing))}")
    return pairs


def render_words(
    words: Sequence[str], size: int, *, jitter_seed: int | None = None, count: int = JITTER_COUNT
) -> torch.Tensor:
    """Renders [R, 3, size, size] of ``words``: every (word, look) of the pool, or ``count`` jittered ones.

    With ``jitter_seed`` each render takes the next word in turn, a random look of the pool
    (among the fonts that draw the word), its size times U(0.8, 1.2) and a random shift,
    all drawn from ``numpy.random.default_rng(jitter_seed)``.
    """
    pool = _pool(words)
    if jitter_seed is None:
        return torch.from_numpy(np.stack([render_text(w, size, look) for w, look in pool]))
    rng = np.random.default_rng(jitter_seed)
    shift = max(1, round(JITTER_SHIFT * size))
    out = []
    for k in range(count):
        options = [look for w, look in pool if w == words[k % len(words)]]
        look = options[rng.integers(len(options))]
        offset = (int(rng.integers(-shift, shift + 1)), int(rng.integers(-shift, shift + 1)))
        out.append(render_text(words[k % len(words)], size, look, float(rng.uniform(0.8, 1.2)), offset))
    return torch.from_numpy(np.stack(out))


def plain_images(size: int) -> torch.Tensor:
    """Images with nothing written: the pool's backgrounds (one per colour pair) and the seeded noise."""
    blank = np.stack(
        [
            np.broadcast_to(np.asarray(bg, np.float32)[:, None, None] / 255.0, (3, size, size))
            for _, bg in COLOUR_PAIRS
        ]
    )
    return torch.cat([torch.from_numpy(blank.copy()), noise_images(size=size)])


@dataclass
class WrittenReference:
    """A model's embeddings of the renders of some words and the calibration of its score."""

    words: list[str]
    renders: torch.Tensor  # (R, D) unit embeddings of the pool renders of the words
    plain: torch.Tensor  # (K, D) unit embeddings of the plain images
    own_mean: float  # closeness of jittered renders of the words to the pool
    own_sd: float
    unrelated_mean: float  # closeness of jittered renders of unrelated words to the pool
    unrelated_sd: float

    @property
    def specificity(self) -> float:
        """How far the words' own renders stand above other words' renders, in SDs of the latter."""
        return (self.own_mean - self.unrelated_mean) / max(self.unrelated_sd, SD_FLOOR)

    def closeness(self, embeddings: torch.Tensor) -> np.ndarray:
        """Each image's cosine to its nearest render of the words, (N,)."""
        return (embeddings @ self.renders.T).max(dim=1).values.numpy().astype(np.float64)

    def score(self, embeddings: torch.Tensor) -> np.ndarray:
        """The written score of unit image embeddings, (N,); >= WRITTEN_THRESHOLD means written."""
        near = self.closeness(embeddings)
        plain = (embeddings @ self.plain.T).max(dim=1).values.numpy().astype(np.float64)
        sd = max(self.own_sd, SD_FLOOR)
        return np.minimum((near - self.own_mean) / sd + WRITTEN_Z, (near - plain) / sd + PLAIN_TOLERANCE)


def written_reference(
    model: ClipModel, words: Sequence[str], unrelated_words: Sequence[str] | None = None
) -> WrittenReference:
    """Embeddings of the words' renders (pool, jittered), unrelated words' (jittered) and plain images."""
    size = model.input_resolution
    words = list(words)
    unrelated = [w for w in (unrelated_words or DEFAULT_UNRELATED) if w not in words]
    renders = image_embeddings(model, render_words(words, size))

    def near(x: torch.Tensor) -> torch.Tensor:
        return (image_embeddings(model, x) @ renders.T).max(dim=1).values

    own = near(render_words(words, size, jitter_seed=OWN_SEED))
    other = near(render_words(unrelated, size, jitter_seed=UNRELATED_SEED))
    return WrittenReference(
        words=words,
        renders=renders,
        plain=image_embeddings(model, plain_images(size)),
        own_mean=float(own.mean()),
        own_sd=float(own.std()),
        unrelated_mean=float(other.mean()),
        unrelated_sd=float(other.std()),
    )


def written_score(
    model: ClipModel,
    image_embeddings: torch.Tensor,
    words: Sequence[str],
    unrelated_words: Sequence[str] | None = None,
    *,
    reference: WrittenReference | None = None,
) -> np.ndarray:
    """Per-image written score (N,) of unit image embeddings against renders of ``words``.

    Pass a ``reference`` from ``written_reference`` to score many batches against one set of renders.
    """
    ref = reference or written_reference(model, words, unrelated_words)
    return ref.score(torch.as_tensor(image_embeddings, dtype=torch.float32).cpu())


def is_written(scores: np.ndarray | float, threshold: float = WRITTEN_THRESHOLD) -> np.ndarray:
    """Whether each score says written (``scores >= threshold``)."""
    return np.asarray(scores) >= threshold
