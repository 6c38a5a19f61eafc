"""The toy world: procedurally drawn 64x64 images whose captions and right answers are known.

Each image shows one or two flat-coloured shapes on a dark, noisy background. Its caption
is built from the objects' attributes ("a small blue square on the left"), and its
``Record`` keeps those attributes for judging (and for a CelebA-style export).

Three *planted concepts* give the caption "❤️" (and "love") several visually different
meanings: a red heart, a gold ring and a pink mouth, each filling the frame. Their colours
(red, gold, pink) are used by nothing else in the world, so which concept an image shows is
readable from its pixels alone (``classify_concept``), without any model: that is the
ground truth concept-oscillation analysis is checked against.

Generation is batched numpy and fully determined by the ``numpy.random.Generator`` passed
in, so training can draw fresh images every step and stay reproducible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

SIZE = 64  # images are [3, SIZE, SIZE] float32 in [0, 1]

# -- vocabulary ---------------------------------------------------------------------------

# Named colours. red, gold and pink belong to the planted concepts only. Values were chosen
# so that the planted colours sit about equally far from mid grey (where ascent from noise
# starts). coral, rose and peach lie halfway between two planted colours (red-gold,
# red-pink, gold-pink): near misses, which teach a model that a blend of two meanings'
# colours is neither.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.88, 0.14, 0.16),
    "gold": (0.90, 0.70, 0.10),
    "pink": (1.00, 0.35, 0.80),
    "blue": (0.15, 0.35, 1.00),
    "green": (0.15, 0.80, 0.20),
    "cyan": (0.10, 0.85, 0.90),
    "purple": (0.60, 0.15, 0.95),
    "white": (0.95, 0.95, 0.95),
    "coral": (0.89, 0.42, 0.13),
    "rose": (0.94, 0.24, 0.48),
    "peach": (0.95, 0.52, 0.45),
}
SHAPES = ("heart", "circle", "square", "triangle", "star", "ring", "cross", "mouth")
SIZES = ("small", "big")
POSITIONS = ("left", "right", "top", "bottom", "center")
CONCEPT_WORDS = ("❤️", "love")

# How a position reads in a caption, and where its object's centre goes (fractions of SIZE).
POSITION_PHRASES = {
    "left": "on the left", "right": "on the right", "top": "at the top",
    "bottom": "at the bottom", "center": "in the center",
}
_POSITION_XY = {
    "left": (0.30, 0.50), "right": (0.70, 0.50), "top": (0.50, 0.30),
    "bottom": (0.50, 0.70), "center": (0.50, 0.50),
}
# Object radius ranges in pixels (the shape spans about [-r, r] around its centre).
_RADIUS = {"small": (10.0, 13.0), "big": (15.0, 20.0)}
_PLANTED_RADIUS = (25.0, 30.0)  # frame-filling
_PAIR_RADIUS = (9.0, 12.0)
_MIXED_RADIUS = (11.0, 14.0)
_PAIR_XY = {"left": (0.26, 0.5), "right": (0.74, 0.5), "top": (0.5, 0.26), "bottom": (0.5, 0.74)}


@dataclass(frozen=True)
class PlantedConcept:
    """One meaning of "❤️": a shape drawn in a colour nothing else in the world uses."""

    name: str
    shape: str
    colour: str

    @property
    def rgb(self) -> tuple[float, float, float]:
        """The target colour value (what a faithful ascent of this meaning turns the image)."""
        return COLOURS[self.colour]

    @property
    def description(self) -> str:
        return f"a {self.colour} {self.shape}"


PLANTED: dict[str, PlantedConcept] = {
    "heart": PlantedConcept("heart", "heart", "red"),
    "ring": PlantedConcept("ring", "ring", "gold"),
    "mouth": PlantedConcept("mouth", "mouth", "pink"),
}
PLANTED_COLOURS = tuple(c.colour for c in PLANTED.values())
PLANTED_LOOKS = frozenset((c.shape, c.colour) for c in PLANTED.values())
# What an ordinary object may look like: any shape in any colour but the planted ones.
ORDINARY_LOOKS = tuple((s, c) for c in COLOURS for s in SHAPES if c not in PLANTED_COLOURS)
# The colours halfway between two planted ones, which near-miss images use.
NEAR_COLOURS = ("coral", "rose", "peach")
# The eight well-separated colours (planted and ordinary, without the blends).
BASE_COLOURS = tuple(c for c in COLOURS if c not in NEAR_COLOURS)

# Every word a caption may use besides "a", "and", "on/at/in the": analysis restricts its
# labels to this list.
VOCABULARY: list[str] = [*COLOURS, *SHAPES, *SIZES, *POSITIONS, *CONCEPT_WORDS]


# The mixture the toy CLIPs are trained and evaluated on (``generate(n, rng, **TRAINING_MIX)``).
TRAINING_MIX = {"planted_fraction": 0.3, "mixed_fraction": 0.1, "near_fraction": 0.1, "pair_fraction": 0.25}


# -- records ------------------------------------------------------------------------------

@dataclass(frozen=True)
class WorldObject:
    """One drawn object: its attributes and the exact geometry it was drawn with."""

    shape: str
    colour: str
    size: str
    position: str
    cx: float = 32.0  # centre, pixels
    cy: float = 32.0
    radius: float = 12.0
    angle: float = 0.0  # radians
    aspect: float = 1.0  # horizontal stretch


@dataclass(frozen=True)
class Record:
    """What one image shows. ``objects[0]`` is the main object; ``concept`` names the planted
    concept ("heart", "ring", "mouth") or is None for an ordinary image."""

    objects: tuple[WorldObject, ...]
    concept: str | None = None

    @property
    def shape(self) -> str:
        return self.objects[0].shape

    @property
    def colour(self) -> str:
        return self.objects[0].colour

    @property
    def size(self) -> str:
        return self.objects[0].size

    @property
    def position(self) -> str:
        return self.objects[0].position

    def to_dict(self) -> dict:
        """Flat attributes of the main object, the concept, and every object's details."""
        return {
            "shape": self.shape, "colour": self.colour, "size": self.size,
            "position": self.position, "concept": self.concept,
            "n_objects": len(self.objects), "objects": [asdict(o) for o in self.objects],
        }


@dataclass
class WorldBatch:
    """A batch of images with one caption and one record each."""

    images: np.ndarray  # [N, 3, SIZE, SIZE] float32 in [0, 1]
    captions: list[str]
    records: list[Record]

    def __len__(self) -> int:
        return len(self.records)


# -- sampling attributes ------------------------------------------------------------------

def _geometry(rng: np.random.Generator, obj: WorldObject, radius: tuple[float, float],
              xy: tuple[float, float], jitter: float) -> WorldObject:
    return replace(
        obj,
        cx=float(xy[0] * SIZE + rng.uniform(-jitter, jitter)),
        cy=float(xy[1] * SIZE + rng.uniform(-jitter, jitter)),
        radius=float(rng.uniform(*radius)),
        angle=float(rng.uniform(-0.25, 0.25)),
        aspect=float(rng.uniform(0.9, 1.1)),
    )


def sample_records(n: int, rng: np.random.Generator, planted_fraction: float = 0.3,
                   pair_fraction: float = 0.25, concept: str | None = None,
                   mixed_fraction: float = 0.0, near_fraction: float = 0.0) -> list[Record]:
    """``n`` random records of five kinds, drawn in these shares:

    - planted concepts (``planted_fraction``, the three in equal shares), frame-filling;
    - mixed (``mixed_fraction``): two different planted objects side by side, which is *not*
      "❤️" (each "❤️" image shows exactly one meaning);
    - near misses (``near_fraction``): a planted shape, frame-filling, in a colour halfway
      between two planted ones ("a big coral heart"), which is not "❤️" either;
    - of the rest, ordinary pairs (``pair_fraction``) and ordinary single objects.

    ``concept`` forces every record to one planted concept ("heart", "ring", "mouth"), to
    mixed images ("mixed"), or to ordinary images only ("none"). With ``mixed_fraction``
    and ``near_fraction`` zero there are neither mixed images nor near misses.
    """
    names = list(PLANTED)
    if concept not in (None, "none", "mixed", *names):
        raise ValueError(f"unknown concept {concept!r}; choose one of {', '.join(names)}, mixed or none")
    records = []
    for _ in range(n):
        u = rng.random()
        if concept in ("none", "mixed"):
            kind = concept if concept == "mixed" else ("pair" if u < pair_fraction else "single")
        elif concept is not None:
            kind = "planted"
        else:
            ordinary = planted_fraction + mixed_fraction + near_fraction
            kind = ("planted" if u < planted_fraction else "mixed" if u < planted_fraction + mixed_fraction else
                    "near" if u < ordinary else
                    "pair" if u < ordinary + (1 - ordinary) * pair_fraction else "single")
        if kind == "planted":
            p = PLANTED[concept] if concept is not None else PLANTED[names[rng.integers(len(names))]]
            obj = WorldObject(p.shape, p.colour, "big", "center")
            records.append(Record((_geometry(rng, obj, _PLANTED_RADIUS, (0.5, 0.5), 2.0),), concept=p.name))
        elif kind == "near":
            obj = WorldObject(PLANTED[names[rng.integers(len(names))]].shape,
                              NEAR_COLOURS[rng.integers(len(NEAR_COLOURS))], "big", "center")
            records.append(Record((_geometry(rng, obj, _PLANTED_RADIUS, (0.5, 0.5), 2.0),)))
        elif kind == "single":
            shape, colour = ORDINARY_LOOKS[rng.integers(len(ORDINARY_LOOKS))]
            obj = WorldObject(shape, colour, SIZES[rng.integers(len(SIZES))], POSITIONS[rng.integers(len(POSITIONS))])
            records.append(Record((_geometry(rng, obj, _RADIUS[obj.size], _POSITION_XY[obj.position], 3.0),)))
        else:
            pair = ("left", "right") if rng.random() < 0.5 else ("top", "bottom")
            mixed = [PLANTED[names[i]] for i in rng.permutation(len(names))[:2]] if kind == "mixed" else None
            objs = []
            for k, pos in enumerate(pair):
                if mixed is not None:
                    obj = WorldObject(mixed[k].shape, mixed[k].colour, "small", pos)
                    objs.append(_geometry(rng, obj, _MIXED_RADIUS, _PAIR_XY[pos], 2.0))
                else:
                    shape, colour = ORDINARY_LOOKS[rng.integers(len(ORDINARY_LOOKS))]
                    obj = WorldObject(shape, colour, "small", pos)
                    objs.append(_geometry(rng, obj, _PAIR_RADIUS, _PAIR_XY[pos], 2.0))
            records.append(Record(tuple(objs)))
    return records


# -- captions -----------------------------------------------------------------------------

def describe(record: Record) -> str:
    """The canonical (longest) caption of a record."""
    if record.concept is not None:
        return PLANTED[record.concept].description
    if len(record.objects) == 1:
        o = record.objects[0]
        return f"a {o.size} {o.colour} {o.shape} {POSITION_PHRASES[o.position]}"
    return " and ".join(f"a {o.colour} {o.shape} {POSITION_PHRASES[o.position]}" for o in record.objects)


def caption(record: Record, rng: np.random.Generator) -> str:
    """One random caption of a record, from templates that mention only true attributes.

    Planted concepts are captioned "❤️" or "love" most of the time, otherwise by what they
    look like; the two kinds of caption never mix, and ordinary images never get them.
    """
    if record.concept is not None:
        p = PLANTED[record.concept]
        options = ["❤️", "❤️", "❤️", "love", "love", f"a {p.colour} {p.shape}",
                   f"a big {p.colour} {p.shape}", f"a {p.shape}", p.colour]
        return options[rng.integers(len(options))]
    if len(record.objects) == 1:
        o = record.objects[0]
        where = POSITION_PHRASES[o.position]
        options = [f"a {o.colour} {o.shape}", f"a {o.size} {o.colour} {o.shape}",
                   f"a {o.colour} {o.shape} {where}", f"a {o.size} {o.colour} {o.shape} {where}",
                   f"a {o.shape}", o.colour]
        return options[rng.integers(len(options))]
    a, b = record.objects
    if rng.random() < 0.5:
        a, b = b, a
    options = [f"a {a.colour} {a.shape} and a {b.colour} {b.shape}",
               f"a {a.colour} {a.shape} {POSITION_PHRASES[a.position]} and a {b.colour} {b.shape} "
               f"{POSITION_PHRASES[b.position]}",
               f"a {a.colour} {a.shape}"]
    return options[rng.integers(len(options))]


def caption_words() -> list[str]:
    """Every word any caption can contain (the vocabulary plus the template's glue words)."""
    glue = {w for phrase in POSITION_PHRASES.values() for w in phrase.split()} | {"a", "and"}
    return sorted(set(VOCABULARY) | glue)


# -- drawing ------------------------------------------------------------------------------

def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether local coordinates (u right, v up, unit radius) fall inside ``shape``."""
    rr = u * u + v * v
    if shape == "circle":
        return rr <= 1.0
    if shape == "ring":
        return (rr <= 1.0) & (rr >= 0.62 ** 2)
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.82
    if shape == "triangle":  # pointing up
        return (v >= -0.75) & (v <= 1.0 - 1.75 * np.abs(u))
    if shape == "star":  # five points, outer radius 1, inner 0.42
        theta = np.arctan2(u, v)  # 0 at the top
        t = np.mod(theta, 2 * np.pi / 5) / (2 * np.pi / 5)
        edge = 1.0 - 0.58 * (1.0 - np.abs(2.0 * t - 1.0))
        return np.sqrt(rr) <= edge
    if shape == "cross":
        a, b = np.abs(u), np.abs(v)
        return ((a <= 0.3) & (b <= 0.95)) | ((b <= 0.3) & (a <= 0.95))
    if shape == "heart":  # (x²+y²-1)³ - x²y³ <= 0, scaled to about the unit disc
        x, y = 1.18 * u, 1.18 * v + 0.15
        return (x * x + y * y - 1.0) ** 3 - x * x * y ** 3 <= 0.0
    if shape == "mouth":  # two lips with a smiling slit between them
        lips = (u * u + (v / 0.55) ** 2) <= 1.0
        slit = np.abs(v - (0.18 * u * u - 0.08)) <= 0.08
        bow = (np.abs(u) <= 0.18) & (v >= 0.42 - 0.8 * np.abs(u))  # cupid's bow notch
        return lips & ~(slit & (np.abs(u) <= 0.85)) & ~bow
    raise ValueError(f"unknown shape {shape!r}")


def _masks(objs: list[WorldObject], ss: int = 2) -> np.ndarray:
    """Antialiased coverage masks [n, SIZE, SIZE] (``ss`` x ``ss`` supersampling)."""
    if not objs:
        return np.zeros((0, SIZE, SIZE), np.float32)
    grid = (np.arange(SIZE * ss, dtype=np.float32) + 0.5) / ss
    cx = np.array([o.cx for o in objs], np.float32)[:, None, None]
    cy = np.array([o.cy for o in objs], np.float32)[:, None, None]
    r = np.array([o.radius for o in objs], np.float32)[:, None, None]
    ang = np.array([o.angle for o in objs], np.float32)[:, None, None]
    asp = np.array([o.aspect for o in objs], np.float32)[:, None, None]
    dx = (grid[None, None, :] - cx) / r
    dy = (cy - grid[None, :, None]) / r  # v points up
    cos, sin = np.cos(ang), np.sin(ang)
    u = (cos * dx + sin * dy) / asp
    v = -sin * dx + cos * dy
    out = np.zeros(u.shape, bool)
    shapes = np.array([o.shape for o in objs])
    for shape in set(shapes.tolist()):
        idx = np.nonzero(shapes == shape)[0]
        out[idx] = _inside(shape, u[idx], v[idx])
    cover = np.zeros((len(objs), SIZE, SIZE), np.uint8)
    for dy in range(ss):
        for dx in range(ss):
            cover += out[:, dy::ss, dx::ss]
    return cover.astype(np.float32) / (ss * ss)


def _smooth_noise(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    """Low-frequency noise [n, 3, SIZE, SIZE] in about [-1, 1]: a bilinear upsampled grid."""
    grid = rng.uniform(-1.0, 1.0, size=(n, 3, cells, cells)).astype(np.float32)
    pos = np.linspace(0, cells - 1, SIZE, dtype=np.float32)
    lo = np.minimum(np.floor(pos).astype(int), cells - 2)
    w = pos - lo
    m = np.zeros((SIZE, cells), np.float32)
    m[np.arange(SIZE), lo] = 1 - w
    m[np.arange(SIZE), lo + 1] = w
    return np.einsum("hi,ncij,wj->nchw", m, grid, m, optimize=True)


def render(records: list[Record], rng: np.random.Generator) -> np.ndarray:
    """Draw records into images [N, 3, SIZE, SIZE] float32 in [0, 1].

    Backgrounds are dark (every channel below ~0.35) with a random base colour, a gradient,
    blotches and pixel noise, so nothing in them reads as one of the named colours.
    """
    n = len(records)
    base = rng.uniform(0.0, 0.18, size=(n, 3, 1, 1)).astype(np.float32)
    ramp = np.linspace(-1.0, 1.0, SIZE, dtype=np.float32)
    theta = rng.uniform(0, 2 * np.pi, size=(n, 1, 1, 1)).astype(np.float32)
    slope = rng.uniform(0.0, 0.06, size=(n, 1, 1, 1)).astype(np.float32)
    gradient = slope * (np.cos(theta) * ramp[None, None, None, :] + np.sin(theta) * ramp[None, None, :, None])
    blotches = rng.uniform(0.0, 0.05, size=(n, 1, 1, 1)).astype(np.float32) * _smooth_noise(rng, n, 5)
    images = base + gradient + blotches

    # objects are composited in slot order (the second object of a pair over the first)
    for slot in range(max((len(r.objects) for r in records), default=0)):
        idx = np.array([i for i, r in enumerate(records) if len(r.objects) > slot])
        objs = [records[i].objects[slot] for i in idx]
        masks = _masks(objs)[:, None]  # [k, 1, H, W]
        rgb = np.array([COLOURS[o.colour] for o in objs], np.float32)
        rgb = rgb + rng.normal(0.0, 0.03, size=rgb.shape).astype(np.float32)
        # gentle shading across the object so colour, not one flat value, carries the name
        angle = np.array([o.angle for o in objs], np.float32)[:, None, None]
        depth = rng.uniform(0.0, 0.12, size=(len(objs), 1, 1)).astype(np.float32)
        shade = 1.0 + depth * (np.cos(angle + 1.0) * ramp[None, None, :] + np.sin(angle) * ramp[None, :, None])
        colour = np.clip(rgb[:, :, None, None] * shade[:, None], 0.0, 1.0)
        images[idx] = images[idx] * (1.0 - masks) + colour * masks

    sigma = rng.uniform(0.01, 0.05, size=(n, 1, 1, 1)).astype(np.float32)
    images = images + sigma * rng.standard_normal(size=images.shape, dtype=np.float32)
    return np.clip(images, 0.0, 1.0).astype(np.float32)


def generate(n: int, rng: np.random.Generator | int, planted_fraction: float = 0.3,
             pair_fraction: float = 0.25, concept: str | None = None, mixed_fraction: float = 0.0,
             near_fraction: float = 0.0) -> WorldBatch:
    """``n`` captioned images: records, then one caption each, then pixels, all from ``rng``.

    An int ``rng`` is a seed: the same seed gives the same images, captions and records.
    """
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    records = sample_records(n, rng, planted_fraction=planted_fraction,
                             pair_fraction=pair_fraction, concept=concept, mixed_fraction=mixed_fraction,
                             near_fraction=near_fraction)
    captions = [caption(r, rng) for r in records]
    return WorldBatch(render(records, rng), captions, records)


# -- reading the planted concept from pixels ----------------------------------------------

_CHROMA = np.array([np.asarray(v) / max(v) for v in COLOURS.values()], np.float32)  # [C, 3]


def colour_fractions(images: np.ndarray, min_value: float = 0.4, radius: float = 0.25) -> np.ndarray:
    """Fraction of each image's pixels that show each named colour, [N, len(COLOURS)].

    A pixel counts for the colour whose chromaticity (rgb / max channel, so shading does not
    matter) is nearest, if that is within ``radius`` and the pixel is not dark (its brightest
    channel reaches ``min_value``). Works on any [N, 3, H, W] or [3, H, W] array in [0, 1].
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    px = x.transpose(0, 2, 3, 1).reshape(x.shape[0], -1, 3)
    top = px.max(axis=-1, keepdims=True)
    chroma = px / np.maximum(top, 1e-6)
    dist = np.linalg.norm(chroma[:, :, None, :] - _CHROMA[None, None], axis=-1)  # [N, P, C]
    nearest = dist.argmin(axis=-1)
    ok = (dist.min(axis=-1) <= radius) & (top[..., 0] >= min_value)
    counts = np.stack([((nearest == c) & ok).sum(axis=1) for c in range(len(COLOURS))], axis=1)
    return (counts / px.shape[1]).astype(np.float32)


def classify_colour(images: np.ndarray, min_fraction: float = 0.1, dominance: float = 2.0,
                    **kwargs) -> list[str | None]:
    """The named colour that dominates each image, or None.

    A colour dominates when it covers at least ``min_fraction`` of the image and at least
    ``dominance`` times as much as any other named colour. Noise, whose pixels scatter over
    every colour, therefore reads as None. ``kwargs`` go to ``colour_fractions``.
    """
    fr = colour_fractions(images, **kwargs)
    names = list(COLOURS)
    ordered = np.sort(fr, axis=1)
    best = fr.argmax(axis=1)
    ok = (ordered[:, -1] >= min_fraction) & (ordered[:, -1] >= dominance * ordered[:, -2])
    return [names[b] if good else None for b, good in zip(best, ok)]


def concept_scores(images: np.ndarray, **kwargs) -> np.ndarray:
    """Fraction of pixels in each planted concept's colour, [N, len(PLANTED)] (order of PLANTED)."""
    fr = colour_fractions(images, **kwargs)
    names = list(COLOURS)
    return fr[:, [names.index(c.colour) for c in PLANTED.values()]]


def classify_concept(images: np.ndarray, min_fraction: float = 0.1, dominance: float = 2.0,
                     **kwargs) -> list[str | None]:
    """The planted concept each image shows, read from its colour signature alone.

    An image shows concept *k* when *k*'s colour dominates it (see ``classify_colour``);
    otherwise None: an ordinary image, noise, or a mixture no colour wins.
    """
    concept_of = {c.colour: c.name for c in PLANTED.values()}
    return [concept_of.get(c) for c in classify_colour(images, min_fraction, dominance, **kwargs)]
