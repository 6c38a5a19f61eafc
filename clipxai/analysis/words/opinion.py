"""CLIP's opinion of an image: a few text tokens ascended until their embedding matches it.

The nearest single words (``clipxai.analysis.words.label``) rank a fixed list; here the text is
optimized. zer0int's CLIP-gradient-ascent-embeddings (the "opinion" of CLIP-XAI-GUI) keeps a
distribution over the vocabulary for each of a few token positions, draws tokens from it with
the Gumbel-softmax trick, and ascends the cosine between the drawn text's embedding and the
image's. We do the same through ``ClipModel.encode_token_embeddings``: each step draws one
token per position (straight-through: the text encoded is made of real tokens, the gradient
flows through the softmax), several restarts run batched, and the best text ever drawn is
the opinion. The candidates are the model's whole-word tokens (or a given word list) whose
embedding is not zero (the toy models zero the rows their captions never use).

    from clipxai.opinion import opinion
    op = opinion(model, image_embedding, tokens=4, seed=0)
    op.tokens, op.similarity                     # ["gold", "ring", "ring", "big"], 0.71

Seeded and reproducible: one ``torch.Generator`` draws the start and every Gumbel sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from clipxai.errors import ClipxaiError

DEFAULTS = dict(tokens=4, steps=150, restarts=8, lr=0.5, temperature=1.0)


@dataclass
class Opinion:
    """The text found for one image embedding, and the runners-up of the other restarts."""

    tokens: list[str]
    similarity: float                    # cosine of the tokens' text embedding to the target
    others: list[tuple[list[str], float]] = field(default_factory=list)  # other restarts' best, best first
    seed: int = 0
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    def to_dict(self) -> dict:
        return {"tokens": self.tokens, "text": self.text, "similarity": round(self.similarity, 4),
                "others": [{"text": " ".join(t), "similarity": round(s, 4)} for t, s in self.others],
                "seed": self.seed}


_CANDIDATES: dict = {}


def candidates(model, words: list[str] | None = None) -> tuple[torch.Tensor, list[str]]:
    """(token ids, words) of the single-token words the text may use, non-zero embeddings only."""
    key = (id(model.module), model.sha256, None if words is None else tuple(words))
    if key not in _CANDIDATES:
        words = list(dict.fromkeys(words if words is not None else model.vocabulary()))
        ids = _single_token_ids(model, words)
        table = model.token_embeddings().detach()
        keep = [(i, w) for w, i in zip(words, ids) if i is not None and bool(table[i].abs().sum() > 0)]
        if not keep:
            raise ClipxaiError(f"None of the {len(words)} candidate words is a single token with a learned embedding "
                               f"in {model.name}; give words the model knows.")
        _CANDIDATES.clear()  # one model at a time: the vocabulary of a real CLIP is large
        _CANDIDATES[key] = (torch.tensor([i for i, _ in keep]), [w for _, w in keep])
    return _CANDIDATES[key]


def _single_token_ids(model, words: list[str]) -> list[int | None]:
    """Each word's token id when the word is one token; the tokenizer's table when it has one."""
    table = _token_table(model.tokenizer)
    if table is not None:
        return [next((table[k] for k in (w + "</w>", "Ġ" + w, "▁" + w) if k in table), None) for w in words]
    ids = model.tokenize(words)
    lengths = model.tokenizer.lengths(ids)
    return [int(row[1]) if n == 3 else None for row, n in zip(ids.tolist(), lengths.tolist())]


def _token_table(tokenizer) -> dict | None:
    inner = getattr(tokenizer, "tok", None)
    if getattr(tokenizer, "name", "") == "clip-bpe" and inner is None:  # OpenAI's BPE through clip
        from clipxai.models.tokenizers import _import_clip  # noqa: PLC0415
        _import_clip()
        from clip.simple_tokenizer import SimpleTokenizer  # noqa: PLC0415
        return _simple_encoder(SimpleTokenizer)
    if hasattr(inner, "encoder") and isinstance(inner.encoder, dict):
        return inner.encoder
    get_vocab = getattr(getattr(inner, "tokenizer", inner), "get_vocab", None)
    return get_vocab() if callable(get_vocab) else None


_ENCODER: dict = {}


def _simple_encoder(cls) -> dict:
    if "bpe" not in _ENCODER:
        _ENCODER["bpe"] = cls().encoder
    return _ENCODER["bpe"]


def _special_ids(model) -> tuple[int, int]:
    """(start, end) token ids, read from the tokenization of an empty text."""
    row = model.tokenize([""])[0]
    return int(row[0]), int(row[model.tokenizer.lengths(row[None])[0] - 1])


def opinion(model, target, *, tokens: int = 4, steps: int = 150, restarts: int = 8, lr: float = 0.5,
            temperature: float = 1.0, seed: int = 0, words: list[str] | None = None) -> Opinion:
    """The ``tokens`` words whose text embedding best matches ``target`` (an image embedding).

    ``restarts`` texts are ascended at once for ``steps`` steps (Adam, ``lr``, Gumbel-softmax
    at ``temperature``); the best text any of them drew is returned with its cosine.
    """
    start_time = time.perf_counter()
    if not 1 <= tokens <= model.context_length - 2:
        raise ClipxaiError(f"The opinion takes 1 to {model.context_length - 2} tokens for {model.name} (got {tokens}).")
    if steps < 1 or restarts < 1:
        raise ClipxaiError("The opinion needs at least one step and one restart.")
    target = torch.tensor(np.array(target, dtype=np.float32)).reshape(-1).to(model.device)
    if target.shape[0] != model.embed_dim or not torch.isfinite(target).all() or not target.any():
        raise ClipxaiError(f"The target is not a usable {model.embed_dim}-dimensional embedding of {model.name}.")
    target = target / target.norm()
    table = model.token_embeddings().detach()   # first: a backend without soft tokens says so here
    ids, names = candidates(model, words)
    vocab = table[ids.to(table.device)]                               # (C, width)
    sot, eot = _special_ids(model)
    start = table[sot].expand(restarts, 1, -1)
    end = table[eot].expand(restarts, 1, -1)
    eot_pos = torch.full((restarts,), tokens + 1, device=model.device)
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(restarts, tokens, len(names), generator=g).to(model.device).requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=lr)
    best = torch.full((restarts,), -2.0)
    best_ids = torch.zeros(restarts, tokens, dtype=torch.long)
    with torch.enable_grad():
        for _ in range(steps):
            u = torch.rand(logits.shape, generator=g).clamp_(1e-9, 1 - 1e-9).to(model.device)
            soft = F.softmax((logits - torch.log(-torch.log(u))) / temperature, dim=-1)
            hard = F.one_hot(soft.argmax(dim=-1), len(names)).to(soft.dtype)
            mix = hard + soft - soft.detach()                          # straight-through: real tokens forward
            embeds = torch.cat([start, mix @ vocab.to(mix.dtype), end], dim=1)
            feats = model.encode_token_embeddings(embeds, eot_pos)
            sims = F.normalize(feats, dim=-1) @ target
            with torch.no_grad():
                better = sims.detach().cpu() > best
                best = torch.where(better, sims.detach().cpu(), best)
                best_ids[better] = soft.argmax(dim=-1).cpu()[better]
            opt.zero_grad()
            (-sims.sum()).backward()
            opt.step()
    found, seen = [], set()
    for r in torch.argsort(best, descending=True).tolist():
        words_found = [names[i] for i in best_ids[r].tolist()]
        if tuple(words_found) not in seen:  # restarts that found the same text count once
            seen.add(tuple(words_found))
            found.append((words_found, float(best[r])))
    return Opinion(tokens=found[0][0], similarity=found[0][1], others=found[1:], seed=seed,
                   seconds=time.perf_counter() - start_time)


def opinions(model, targets, **options) -> list[Opinion]:
    """``opinion`` of each row of ``targets`` (the same options and seed for each)."""
    return [opinion(model, t, **options) for t in np.asarray(targets, dtype=np.float32)]


def state_opinions(model, embeddings: np.ndarray, states: np.ndarray, **options) -> dict[int, Opinion]:
    """The opinion of each state's mean unit embedding (the query its nearest words answer)."""
    from clipxai.analysis.words.label import state_queries  # noqa: PLC0415

    queries = state_queries(embeddings, np.asarray(states))
    return {s: opinion(model, q, **options) for s, q in enumerate(queries) if np.isfinite(q).all() and q.any()}


# ---------------------------------------------------------------------------------------
# A run's snapshot or state

def run_target(run, model, step: int | None = None, state: int | None = None) -> tuple[np.ndarray, str]:
    """(image embedding, what it is) of a run: a recorded step, a state's mean, or the last snapshot."""
    if step is not None and state is not None:
        raise ClipxaiError("Give either --step or --state, not both.")
    steps = np.asarray(run.steps)
    if state is not None:
        from clipxai.analysis.words.label import state_queries  # noqa: PLC0415
        from clipxai.runs.summary import read_summary  # noqa: PLC0415

        summary = read_summary(run)
        if summary is None:
            raise ClipxaiError(f"{run.path} has not been analysed, so it has no states; run `clipxai analyze {run.path}` "
                               f"first.")
        path = np.asarray(summary.get("states", []))
        if len(path) != len(steps):
            raise ClipxaiError(f"The analysis of {run.path} is older than its snapshots; run `clipxai analyze` again.")
        if state not in set(path.tolist()):
            raise ClipxaiError(f"{run.path} has no state {state}; its states are {', '.join(map(str, sorted(set(path.tolist()))))}.")
        return state_queries(_embeddings(run, model), path)[state], f"state {state}"
    if step is None:
        row = len(steps) - 1
    else:
        rows = np.flatnonzero(steps == step)
        if not len(rows):
            every = int(steps[1] - steps[0]) if len(steps) > 1 else 0
            recorded = f"{steps[0]} to {steps[-1]}" + (f", every {every}" if every else "")
            raise ClipxaiError(f"Step {step} was not recorded in {run.path}; its snapshots are steps {recorded}.")
        row = int(rows[0])
    return _embeddings(run, model, rows=[row])[0], f"step {int(steps[row])}"


def _embeddings(run, model, rows=None) -> np.ndarray:
    """The run's recorded image embeddings (or the model's, from its images, when it has none)."""
    if "embeddings" in run.array_names():
        e = np.asarray(run.embeddings, dtype=np.float32)
        return e if rows is None else e[rows]
    from clipxai.analysis.states.features import model_embeddings  # noqa: PLC0415
    e = model_embeddings(run, model)
    return e if rows is None else e[rows]


def run_opinion(run, model=None, *, step: int | None = None, state: int | None = None, device: str = "auto",
                **options) -> tuple[Opinion, str]:
    """(opinion, what it is of) for a run's last snapshot, a recorded ``step`` or an analysed ``state``."""
    from clipxai.runs.load import load_run  # noqa: PLC0415

    run = load_run(run) if not hasattr(run, "steps") else run
    if model is None:
        from clipxai.models.load import load_clip  # noqa: PLC0415
        if not run.model_name:
            raise ClipxaiError("This run does not say which CLIP made it; pass --model.")
        model = load_clip(run.model_name, device=device)
    target, what = run_target(run, model, step=step, state=state)
    return opinion(model, target, **options), what
