"""Ground-truth checks: does ascent on the toy CLIP find what the toy world planted?

Questions with known answers. (1) Colour: ascending toward "blue" should turn the image
blue. Without augmentation the toy CLIP is satisfied by adversarial pixel
patterns instead: its own similarity is high while an independently trained judge
(``toy-b``) and the pixel statistics disagree. With cutouts, the colour is right. (2)
Multistability: "❤️" was planted to mean a red heart, a gold ring and a pink mouth; seeds
started from different hues reach more than one of them, as read from the pixels and as
confirmed by the judge. (3) The colour landscape: a prompt's similarity to flat colour
fields, which shows where in colour space ascent is pulled.

``python bench/ground_truth.py`` prints these figures; the tests assert them.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from clipxai.models.base import ClipModel
from clipxai.toy import world
from clipxai.toy.evaluate import image_features, text_features

# The colour check ascends the bare colour word, a caption the world gives every colour.
# ("a red square" names a combination the world never shows, red being the heart's alone;
# toy ascends it to an image the judge reads as cyan.)
COLOUR_PROMPT = "{colour}"


def zero_shot_colour(model: ClipModel, images: np.ndarray) -> list[str]:
    """Each image's colour by zero-shot classification over "a {colour} {shape}" prompts."""
    colours, shapes = list(world.COLOURS), list(world.SHAPES)
    img = image_features(model, images)
    txt = text_features(model, [f"a {c} {s}" for c in colours for s in shapes])
    logits = (img @ txt.t()).view(len(img), len(colours), len(shapes)) * model.logit_scale
    return [colours[i] for i in torch.logsumexp(logits, dim=2).argmax(dim=1).tolist()]


def zero_shot_concept(model: ClipModel, images: np.ndarray) -> list[str]:
    """Which planted meaning of "❤️" each image shows, by zero-shot over their descriptions."""
    names = list(world.PLANTED)
    txt = text_features(model, [world.PLANTED[n].description for n in names])
    return [names[i] for i in (image_features(model, images) @ txt.t()).argmax(dim=1).tolist()]


def _final_images(runs) -> np.ndarray:
    """The last recorded image of each run, clipped to [0, 1] (what a viewer sees)."""
    return np.stack([np.clip(r.images[-1].astype(np.float32), 0, 1) for r in runs])


def _ascend(prompt: str, model: ClipModel, out: Path, seeds: int, steps: int,
            snapshot_every: int | None = None, **options):
    from clipxai.ascent.run import ascend  # noqa: PLC0415

    with warnings.catch_warnings():  # two snapshots on purpose: only the last image is judged
        warnings.filterwarnings("ignore", message=".*the analysis needs at least 3")
        return ascend(prompt, model_obj=model, out=str(out), seeds=seeds, steps=steps,
                      snapshot_every=snapshot_every or max(1, steps - 1), activations="none",
                      record_gradients=False, quiet=True, **options)


@dataclass
class ColourCondition:
    """Ascent toward each colour (``COLOUR_PROMPT``) under one setting."""

    name: str
    self_similarity: float          # the ascended model's cosine to its prompt (mean)
    judge_agreement: float          # fraction of images whose judge colour is the target
    pixel_share: float              # mean fraction of pixels in the target colour
    pixel_agreement: float          # fraction of images whose dominant pixel colour is the target
    per_colour: dict = field(default_factory=dict)
    final_similarity: float = 0.0   # the ascended model's cosine of the final image to its prompt
    judge_similarity: float = 0.0   # the judge's cosine of the same image to the same prompt

    @property
    def adversarial_gap(self) -> float:
        """How much more the ascended model likes its final images than the judge does."""
        return self.final_similarity - self.judge_similarity


# The two conditions every colour check compares; ``colour_check(conditions=...)`` adds more.
COLOUR_CONDITIONS = {"no augmentation": dict(cutouts=0, aug_noise=0.0, jitter=0.0), "cutouts": {}}
# Direct Ascent Synthesis: the das preset as it is (pyramid, 32 views, noise), whatever the shared options say.
PYRAMID_CONDITION = {"pyramid (das)": dict(preset="das")}


def prompt_similarity(model: ClipModel, images: np.ndarray, text: str) -> np.ndarray:
    """(N,) cosine of each image to ``text`` by ``model``."""
    return (image_features(model, images) @ text_features(model, [text]).t()).numpy()[:, 0]


def colour_check(model: ClipModel, judge: ClipModel, *, steps: int = 100, seeds: int = 2,
                 colours: tuple[str, ...] | None = None, out: str | Path | None = None,
                 prompt: str = COLOUR_PROMPT, conditions: dict[str, dict] | None = None,
                 **options) -> list[ColourCondition]:
    """Ascend each colour with and without augmentation; judge the results three ways.

    ``colours`` defaults to the eight base colours; the near-miss blends (coral, rose, peach)
    sit between two planted colours by design, and the judge reads their ascents as a
    neighbour. ``prompt`` is a template with ``{colour}``. ``options`` (engine keywords such
    as ``lr``) apply to every condition unless the condition sets them or names a preset (whose
    values it then keeps). ``conditions`` maps a name to its engine keywords (default
    ``COLOUR_CONDITIONS``; ``PYRAMID_CONDITION`` is the das preset's).
    """
    colours = colours or world.BASE_COLOURS
    conditions = COLOUR_CONDITIONS if conditions is None else conditions
    results = []
    with tempfile.TemporaryDirectory(prefix="clipxai-gt-") as tmp:
        root = Path(out or tmp)
        extra = options
        for name, condition in conditions.items():
            per = {}
            for colour in colours:
                text = prompt.format(colour=colour)
                keywords = dict(condition) if "preset" in condition else {**extra, **condition}
                runs = _ascend(text, model, root / _slug(name), seeds, steps, **keywords)
                images = _final_images(runs)
                sims = [r.metrics()[-1][f"sim/{text}"] for r in runs]
                fractions = world.colour_fractions(images)[:, list(world.COLOURS).index(colour)]
                dominant = world.classify_colour(images)
                judged = zero_shot_colour(judge, images)
                per[colour] = {
                    "self_similarity": float(np.mean(sims)),
                    "judge_agreement": float(np.mean([j == colour for j in judged])),
                    "pixel_share": float(fractions.mean()),
                    "pixel_agreement": float(np.mean([d == colour for d in dominant])),
                    "final_similarity": float(prompt_similarity(model, images, text).mean()),
                    "judge_similarity": float(prompt_similarity(judge, images, text).mean()),
                }
            results.append(ColourCondition(
                name=name, per_colour=per,
                **{k: float(np.mean([v[k] for v in per.values()]))
                   for k in ("self_similarity", "judge_agreement", "pixel_share", "pixel_agreement",
                             "final_similarity", "judge_similarity")}))
    return results


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-")


@dataclass
class HeartCheck:
    """Where "❤️" ascent ends, seed by seed, read from pixels and by the judge."""

    seeds: int
    pixel_concepts: list            # per seed: planted concept by colour signature, or None
    judge_concepts: list            # per seed: the judge's zero-shot planted concept
    reached: list                   # concepts where pixels and judge agree, distinct
    run_paths: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# How the multistability check ascends: seeds start from different hues (a per-seed colour
# offset), and a total-variation penalty keeps the image in flat colour regions, which is
# what the world's objects are made of.
HEART_OPTIONS = dict(cutouts=4, lr=0.1, tv=1.0, init_tint=0.2)


def heart_check(model: ClipModel, judge: ClipModel, *, seeds: int = 16, steps: int = 100,
                out: str | Path | None = None, snapshot_every: int = 5, **options) -> HeartCheck:
    """Ascend "❤️" from ``seeds`` seeds (batched) and name the planted concept each reaches.

    ``options`` are engine keywords that override ``HEART_OPTIONS``.
    """
    with tempfile.TemporaryDirectory(prefix="clipxai-gt-") as tmp:
        runs = _ascend("❤️", model, Path(out or tmp), seeds, steps, snapshot_every=snapshot_every,
                       **{**HEART_OPTIONS, **options})
        images = _final_images(runs)
        pixel = world.classify_concept(images)
        judged = zero_shot_concept(judge, images)
        reached = sorted({p for p, j in zip(pixel, judged) if p is not None and p == j})
        return HeartCheck(seeds=seeds, pixel_concepts=pixel, judge_concepts=judged, reached=reached,
                          run_paths=[str(r.path) for r in runs] if out else [])


@dataclass
class ColourLandscape:
    """A prompt's similarity to flat colour fields over a grid of RGB values.

    A coarse view of where in colour space ascent is pulled, since ascent reproduces colour
    long before shape. The first toy models (without near misses) peaked for "❤️" at the
    blend of its three meanings' colours, and every seed's ascent ended on that blend.
    Ascent paints textures, not flat fields, so read the peaks as a hint, not a forecast.
    """

    prompt: str
    colours: np.ndarray             # [N, 3] RGB of each field
    similarity: np.ndarray          # [N] cosine of each field to the prompt
    grid: int                       # values per channel

    def peaks(self, min_value: float = 0.4) -> list[tuple[tuple[float, float, float], float, str | None]]:
        """Local maxima of the landscape (26-neighbourhood on the grid), best first, each with
        the world colour its field reads as (None if no named colour). Fields darker than
        ``min_value`` in every channel are skipped: they read as background, not colour."""
        g = self.grid
        sim = self.similarity.reshape(g, g, g)
        padded = np.pad(sim, 1, constant_values=-np.inf)
        neighbours = np.stack([padded[1 + dr:g + 1 + dr, 1 + dg:g + 1 + dg, 1 + db:g + 1 + db]
                               for dr in (-1, 0, 1) for dg in (-1, 0, 1) for db in (-1, 0, 1)
                               if (dr, dg, db) != (0, 0, 0)])
        is_peak = (sim >= neighbours.max(axis=0)).reshape(-1) & (self.colours.max(axis=1) >= min_value)
        index = np.flatnonzero(is_peak)
        index = index[np.argsort(-self.similarity[index])]
        fields = np.broadcast_to(self.colours[index][:, :, None, None], (len(index), 3, 4, 4))
        names = world.classify_colour(fields) if len(index) else []
        return [(tuple(float(v) for v in self.colours[i]), float(self.similarity[i]), n)
                for i, n in zip(index, names)]


def colour_landscape(model: ClipModel, prompt: str = "❤️", grid: int = 11, noise: float = 0.03,
                     seed: int = 0) -> ColourLandscape:
    """Similarity of ``prompt`` to every flat colour field on a ``grid``^3 RGB lattice
    (with a little pixel noise, as in the world's images)."""
    values = np.linspace(0.0, 1.0, grid, dtype=np.float32)
    colours = np.stack(np.meshgrid(values, values, values, indexing="ij"), axis=-1).reshape(-1, 3)
    rng = np.random.default_rng(seed)
    sims = []
    txt = text_features(model, [prompt])
    for chunk in np.array_split(colours, max(1, len(colours) // 256)):
        fields = np.broadcast_to(chunk[:, :, None, None], (len(chunk), 3, world.SIZE, world.SIZE))
        fields = np.clip(fields + rng.normal(0.0, noise, fields.shape).astype(np.float32), 0.0, 1.0)
        sims.append((image_features(model, fields) @ txt.t()).numpy()[:, 0])
    return ColourLandscape(prompt=prompt, colours=colours, similarity=np.concatenate(sims), grid=grid)
