"""Do the trust checks tell a picture from an adversarial pattern? Scores on the toy world's ground truth.

    python bench/validate_trust.py [--n 40] [--timing 300] [--seed 0]

Planted truth: world images of the three planted meanings of "❤️" (a red heart, a gold ring,
a pink mouth) must be called trusted by ``clipxai.analysis.trust`` (seen by the judge
``toy-b``, robust, natural pathway) in >= 95% of images; ordinary world images pushed by
signed-gradient steps (L-inf 32/255, steps of 2/255) until ``toy`` alone reads a planted
meaning and scores "❤️" like a planted image must be flagged (no transfer, or collapse under
a perturbation) in >= 95%. Ordinary world images (the prompt not there at all) are reported.
Written words: jittered renders of "love" and of "❤" must be flagged written in >= 90%, world
images of the meanings in <= 5%. Sparse reading of planted images over the world's
vocabulary: mean fidelity >= 0.8 with <= 10 words; how often the first word is the meaning's
shape or colour is reported. Timing: ``evaluate_each`` on ``--timing`` world images with two
judges against encoding them once per model. Exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from clipxai.analysis.trust.control import adversarial_reading  # noqa: E402
from clipxai.analysis.trust.evaluate import entry, measure  # noqa: E402
from clipxai.analysis.trust.judges import image_embeddings, noise_images  # noqa: E402
from clipxai.analysis.trust.written import render_words, written_reference  # noqa: E402
from clipxai.models import load_clip  # noqa: E402
from clipxai.toy import world  # noqa: E402

PROMPT = "❤️"
LABELS = [c.description for c in world.PLANTED.values()] + [
    f"a {c} {s}" for c in ("blue", "green", "cyan", "purple", "white") for s in ("circle", "square", "star")
]
PLANTED_COSINE = 0.45  # the attack's stop: toy's cosine to "❤️" (planted images: ~0.52, noise: ~0.28)


def world_sets(n: int, seed: int = 0) -> dict:
    """Reference (ordinary), natural (training mixture), planted (with records), ordinary start images."""
    planted = world.generate(n, seed + 101, planted_fraction=1.0)
    return {
        "reference": world.generate(64, seed + 100, concept="none").images,
        "natural": world.generate(64, seed + 103, **world.TRAINING_MIX).images,
        "planted": planted.images,
        "planted_records": planted.records,
        "ordinary": world.generate(n, seed + 102, concept="none").images,
    }


def adversarial(model, start: np.ndarray) -> torch.Tensor:
    """Each start image pushed until ``model`` reads one planted meaning (in turn) and likes "❤️"."""
    out = torch.empty(len(start), 3, world.SIZE, world.SIZE)
    targets = [c.description for c in world.PLANTED.values()]
    for k, target in enumerate(targets):
        idx = list(range(k, len(start), len(targets)))
        out[idx] = adversarial_reading(
            model, torch.from_numpy(start[idx]), PROMPT, target, LABELS, min_cosine=PLANTED_COSINE
        )
    return out


def reported_sets(size: int, n: int) -> dict[str, torch.Tensor]:
    """What the written check is not held to on toy (rates printed): noise, other words, flat fields."""
    rng = np.random.default_rng(5)
    flat = np.broadcast_to(rng.uniform(0, 1, (n, 3, 1, 1)), (n, 3, size, size)).astype(np.float32)
    return {
        "noise images": noise_images(n, size, seed=5),
        "renders of other words": render_words(["king", "bird", "sun"], size, jitter_seed=3, count=n),
        "flat colour fields": torch.from_numpy(flat.copy()),
    }


def rates(entries: list[dict]) -> dict[str, float]:
    flags = ("not seen by the model", "no transfer", "fragile", "unusual pathway", "written")
    out = {"trusted": float(np.mean([e["trusted"] for e in entries]))}
    out.update({f: float(np.mean([f in e["flags"] for e in entries])) for f in flags})
    return out


def check(name: str, value: float, ok: bool, target: str, failures: list) -> None:
    print(f"  {name:58s} {value:7.3f}   target {target}  {'ok' if ok else 'MISSED'}")
    if not ok:
        failures.append(name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--timing", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0, help="offsets every world seed (the attack has none)")
    args = ap.parse_args(argv)
    from clipxai.util.cpu import describe_cpu
    print(describe_cpu(), flush=True)
    torch.set_num_threads(1)
    toy, judge = load_clip("toy", "cpu"), load_clip("toy-b", "cpu")
    sets = world_sets(args.n, args.seed)
    failures: list[str] = []
    options = dict(
        judges=[judge],
        reference=sets["reference"],
        natural=sets["natural"],
        labels=LABELS,
        vocab=world.VOCABULARY,
    )
    t = time.perf_counter()
    adv = adversarial(toy, sets["ordinary"])
    print(f"adversarial images: {time.perf_counter() - t:.1f} s for {args.n}")
    results = {}
    for name, images in (("planted", sets["planted"]), ("adversarial", adv), ("ordinary", sets["ordinary"])):
        m = measure(toy, images, PROMPT, **options)
        results[name] = [entry(m, [i]) for i in range(len(m))]
        print(f"{name:12s}", ", ".join(f"{k} {v:.2f}" for k, v in rates(results[name]).items()))
        print(f"{'':12s} e.g. {results[name][0]['verdict']}")
    calls(results, failures)
    written_words(toy, sets["planted"], args.n, failures)
    sparse(results["planted"], sets["planted_records"], failures)
    timing(toy, judge, args.timing, options)
    print("all targets met" if not failures else f"MISSED: {', '.join(failures)}")
    return 1 if failures else 0


def calls(results: dict[str, list[dict]], failures: list) -> None:
    """The trusted / flagged rates of the planted, adversarial and ordinary sets."""
    print("calls (one entry per image):")
    trusted = rates(results["planted"])["trusted"]
    check("planted images called trusted", trusted, trusted >= 0.95, ">= 0.95", failures)
    adv = results["adversarial"]
    flagged = float(np.mean([bool({"no transfer", "fragile"} & set(e["flags"])) for e in adv]))
    check(
        "adversarial images flagged (no transfer and/or fragile)",
        flagged,
        flagged >= 0.95,
        ">= 0.95",
        failures,
    )
    fooled = np.mean([e["model"]["reading"] == LABELS[k % 3] for k, e in enumerate(adv)])
    print(f"  {'adversarial images toy reads as their target (reported)':58s} {fooled:7.3f}")
    print(
        f"  {'adversarial images the judge reads alike (reported)':58s} "
        f"{np.mean([e['agreement'] for e in adv]):7.3f}"
    )
    print(f"  {'ordinary images called trusted (reported)':58s} {rates(results['ordinary'])['trusted']:7.3f}")
    for name in ("planted", "adversarial"):  # the pathway is reported beside the call, not in it
        rate = rates(results[name])["unusual pathway"]
        print(f"  {name + ' images with an unusual pathway (reported)':58s} {rate:7.3f}")


def written_words(toy, planted: np.ndarray, n: int, failures: list) -> None:
    """Renders of "love" and of the heart glyph against world images of the meanings; the rest reported."""
    print("written words:")
    for words in (["love"], ["❤"]):
        ref = written_reference(toy, words)
        renders = render_words(words, toy.input_resolution, jitter_seed=99, count=n)
        hit = float(np.mean(ref.score(image_embeddings(toy, renders)) >= 0))
        miss = float(np.mean(ref.score(image_embeddings(toy, planted)) >= 0))
        check(f"renders of {words[0]!r} flagged written", hit, hit >= 0.9, ">= 0.90", failures)
        check(
            f"planted-meaning images flagged written ({words[0]!r})", miss, miss <= 0.05, "<= 0.05", failures
        )
        print(f"  {'specificity (own vs other words, SDs; 0 = cannot read)':58s} {ref.specificity:7.3f}")
        for what, x in reported_sets(toy.input_resolution, n).items():
            rate = float(np.mean(ref.score(image_embeddings(toy, x)) >= 0))
            print(f"  {what + ' flagged written (reported)':58s} {rate:7.3f}")


def sparse(entries: list[dict], records: list, failures: list) -> None:
    """Fidelity and first word of the sparse readings of planted images."""
    print("sparse reading of planted images (one per image):")
    readings = [e["sparse_reading"] for e in entries]
    fid = np.array([r["fidelity"] for r in readings])
    words = max(len(r["words"]) for r in readings)
    check(
        "mean fidelity",
        float(fid.mean()),
        fid.mean() >= 0.8 and words <= 10,
        ">= 0.80, <= 10 words",
        failures,
    )
    print(f"  {'share of images with fidelity >= 0.8':58s} {float((fid >= 0.8).mean()):7.3f}")
    first = np.mean(
        [
            r["words"][0] in (world.PLANTED[c.concept].shape, world.PLANTED[c.concept].colour)
            for r, c in zip(readings, records)
        ]
    )
    print(f"  {'first word is the meaning shape or colour (reported)':58s} {first:7.3f}")


def timing(toy, judge, n: int, options: dict) -> None:
    """Seconds to evaluate ``n`` images one entry each, with two judges, against one encoding per model."""
    if n <= 0:
        return
    tiny = load_clip("random:tiny", "cpu")
    images = world.generate(n, 7, **world.TRAINING_MIX).images
    t = time.perf_counter()
    for model in (toy, judge, tiny):
        image_embeddings(model, images)
    encode = time.perf_counter() - t
    t = time.perf_counter()
    m = measure(toy, images, PROMPT, **{**options, "judges": [judge, tiny]})
    measured = time.perf_counter() - t
    entries = [entry(m, [i]) for i in range(n)]
    total = time.perf_counter() - t
    print(f"timing ({n} images, judges toy-b and random:tiny, one thread):")
    print(f"  encoding once per model (toy, toy-b, random:tiny)  {encode:6.2f} s")
    print(
        f"  evaluate: measure {measured:6.2f} s, {n} entries {total - measured:5.2f} s, total {total:6.2f} s "
        f"({total / encode:.1f}x the encoding)"
    )
    assert len(entries) == n


if __name__ == "__main__":
    sys.exit(main())
