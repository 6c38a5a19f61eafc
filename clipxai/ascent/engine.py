"""The ascent loop: parameterization -> image -> augment -> CLIP -> objective -> step.

The loop is only the loop. It never branches on the parameterization or on a term, and it
writes nothing: run folders, checkpoints, progress and stop criteria are callbacks
(``clipxai.ascent.recorder``), told of each step through five events. K seeds run batched in one
forward pass; each keeps its own generators and optimizer rows. ``clipxai.ascent.run`` builds an
engine from a config; ``state_dict()`` / ``load_state_dict()`` carry everything a resumed
run needs to continue bit for bit.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch

from clipxai.ascent.augment import Augment
from clipxai.ascent.schedule import LRSchedule
from clipxai.models.base import ClipModel
from clipxai.models.live import LiveActivations
from clipxai.params.base import Parameterization
from clipxai.prompts import EncodedPrompt
from clipxai.terms.base import Objective, Step

EVENTS = ("on_start", "on_forward", "on_backward", "on_step_end", "on_end")


class Callback:
    """Base class: override the events you need. ``engine`` is the running ``Engine``.

    ``on_forward``: the objective is computed, backward has not run (ask for gradients of
    non-leaf tensors here). ``on_backward``: gradients exist, parameters not yet updated.
    ``on_step_end``: the update is done. ``on_end(status)``: complete, interrupted or failed.
    """

    def on_start(self, engine: "Engine") -> None: ...
    def on_forward(self, engine: "Engine", step: Step) -> None: ...
    def on_backward(self, engine: "Engine", step: Step) -> None: ...
    def on_step_end(self, engine: "Engine", step: Step) -> None: ...
    def on_end(self, engine: "Engine", status: str) -> None: ...


@dataclass
class Member:
    """One CLIP of the ascent (an ensemble has several): its prompts, its views of the image, its encoder."""

    model: ClipModel
    prompts: list[EncodedPrompt]
    augment: Augment                # views at this model's input resolution, from its own generators
    encoder: Callable[[torch.Tensor], torch.Tensor] | None = None  # views -> features (default: encode_image)
    weight: float = 1.0             # its share of the objective's prompt terms
    name: str = ""


@dataclass
class Parts:
    """Everything one ascent is made of, built from a config by ``clipxai.ascent.run.build``."""

    members: list[Member]           # the first is "the" model (recorded activations, single-model runs)
    objective: Objective
    param: Parameterization
    optimizer: torch.optim.Optimizer
    schedule: LRSchedule
    seeds: list[int]
    steps: int
    normalize: bool = True
    cutout_batch: int = 0           # views per encoder pass (0: all at once)
    ablation: Any = None            # an ``Ablation`` (clipxai.ascent.ablation) held for the whole run, or None
    batch_invariant: bool = False   # encode each seed's views in its own pass: a seed's run is the same in any batch

    @property
    def model(self) -> ClipModel:
        return self.members[0].model

    @property
    def model_label(self) -> str:
        """``toy``, or an ensemble as ``toy + toy-b:0.5`` (a weight shown where it is not 1)."""
        return " + ".join(m.model.name + (f":{m.weight:g}" if m.weight != 1 else "") for m in self.members)

    @property
    def prompts(self) -> list[EncodedPrompt]:
        return self.members[0].prompts

    @property
    def augment(self) -> Augment:
        return self.members[0].augment

    @property
    def encoder(self):
        return self.members[0].encoder


class Engine:
    """One ascent of K seeds: ``run()`` steps from ``start_step`` to ``steps``, telling callbacks."""

    def __init__(self, parts: Parts, callbacks: Iterable[Callback] = ()):
        self.parts = parts
        self.model, self.prompts, self.param = parts.model, parts.prompts, parts.param
        self.objective, self.optimizer, self.schedule = parts.objective, parts.optimizer, parts.schedule
        self.augment, self.seeds, self.steps = parts.augment, parts.seeds, parts.steps
        self.callbacks = list(callbacks)
        self.state: dict = {"normalize": parts.normalize}   # the terms' memory across steps
        self.start_step = 0
        self.steps_done = 0
        self.stop_reason: str | None = None
        self.error: BaseException | None = None

    def request_stop(self, reason: str = "requested") -> None:
        """Finish the current step, then stop cleanly (status: interrupted)."""
        self.stop_reason = self.stop_reason or reason

    def emit(self, event: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(self, *args)

    def encode(self, views: torch.Tensor, member: int = 0) -> torch.Tensor:
        m = self.parts.members[member]
        if m.encoder is not None:
            return m.encoder(views)
        return m.model.encode_image(views, normalize=self.parts.normalize)

    def chunks(self, n_views: int) -> list[slice]:
        """The encoder passes of one step: all views at once, or ``cutout_batch`` at a time; batch-invariant,
        each seed's views apart (``cutout_batch`` at a time within them), so no pass mixes two seeds."""
        size = self.parts.cutout_batch or n_views
        if not self.parts.batch_invariant:
            return [slice(i, i + size) for i in range(0, n_views, size)]
        per_seed = n_views // len(self.seeds)
        size = min(size, per_seed)
        return [slice(s + i, s + min(i + size, per_seed)) for s in range(0, n_views, per_seed)
                for i in range(0, per_seed, size)]

    def chunked(self, n_views: int) -> bool:
        """Whether the views are encoded in several passes (batch-invariant runs always are, one seed
        included, so that a seed alone takes the very path it takes in a batch)."""
        return self.parts.batch_invariant or len(self.chunks(n_views)) > 1

    def forward(self, index: int, state: dict | None = None, max_views: int | None = None) -> Step:
        """The step's image, its augmented views and their CLIP embeddings (before the objective).

        With views in several chunks the features are computed without a graph here, and
        ``backward`` re-runs each chunk with its graph, so memory follows the chunk size.
        ``max_views`` keeps the first views of each image only (a cheap look, not a step).
        """
        image = self.param.image_fn()
        seen = [self._see(image, i, index, self.state if state is None else state, max_views)
                for i in range(len(self.parts.members))]
        seen[0].others = seen[1:]
        return seen[0]

    def _see(self, image: torch.Tensor, member: int, index: int, state: dict, max_views: int | None) -> Step:
        """The step as one model sees it: its views of the image and their embeddings."""
        m = self.parts.members[member]
        views = m.augment(image)
        if max_views and views.shape[0] > max_views * image.shape[0]:
            views = views.view(image.shape[0], -1, *views.shape[1:])[:, :max_views].reshape(-1, *views.shape[1:])
        chunks = self.chunks(views.shape[0])
        # Terms on hook points (neuron, channel, ...) read the live activations of the model they name.
        wanted = self.objective.hook_points(member, m.model)
        live = None
        if not self.chunked(views.shape[0]):
            with self._hooked(m, wanted) as live:
                feats = self.encode(views, member)
        else:
            # Chunk by chunk without a graph; features and activations become leaves whose
            # gradients ``backward`` carries into each chunk's encoder pass again.
            parts, seen = [], []
            with torch.no_grad():
                for c in chunks:
                    with self._hooked(m, wanted) as got:
                        parts.append(self.encode(views[c], member))
                    seen.append(got)
            feats = torch.cat(parts).requires_grad_(True)
            if any(wanted):
                live = LiveActivations.joined_leaves(seen)
        feats = feats.view(image.shape[0], -1, m.model.embed_dim)
        embeds = feats / feats.norm(dim=-1, keepdim=True)
        return Step(index=index, image=image, views=views, features=feats, embeds=embeds, prompts=m.prompts,
                    model=m.model, param=self.param, state=state, activations=live)

    @staticmethod
    def _hooked(member: Member, wanted: tuple[list[str], list[str]]):
        return member.model.hooked(*wanted) if any(wanted) else contextlib.nullcontext()

    def step(self, index: int) -> Step:
        """One optimization step; callbacks hear of it before backward, before and after the update."""
        lr = self.schedule.lr(index)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        step = self.forward(index)
        total, values = self.objective(step)
        step.total, step.values, step.lr = total.detach(), {k: v.detach() for k, v in values.items()}, lr
        self.emit("on_forward", step)
        self.backward(step, -total.sum())   # we ascend: the one negation
        self.emit("on_backward", step)
        self.optimizer.step()
        self.schedule.observe(step.total)
        self.steps_done = index + 1
        self.emit("on_step_end", step)
        return step

    def backward(self, step: Step, loss: torch.Tensor) -> None:
        """Gradients of ``loss`` on the parameters; chunk by chunk when the views were chunked.

        Chunked: d loss / d features (and d loss / d the hooked activations terms read) first,
        then each chunk's encoder pass and backward into the views, then one backward through
        the augmentation and the image-level terms. Equal to the one-pass gradient up to float
        summation order; memory follows the chunk, feature terms included.
        """
        seen = [step, *step.others]
        chunked = [i for i, s in enumerate(seen) if self.chunked(s.views.shape[0])]
        if not chunked:
            loss.backward()
            return
        # each chunked model's features and the activations its terms read, as leaves
        acts = [(i, key, t) for i in chunked if seen[i].activations is not None
                for key, t in seen[i].activations.tensors().items()]
        leaves = [seen[i].features for i in chunked] + [t for _, _, t in acts]
        grads = torch.autograd.grad(loss, leaves, retain_graph=True, allow_unused=True)
        d_acts: dict[int, dict] = {i: {} for i in chunked}
        for (i, key, _), d in zip(acts, grads[len(chunked):]):
            if d is not None:
                d_acts[i][key] = d
        roots, root_grads = [loss], [None]
        for i, d_feats in zip(chunked, grads):
            pulled = d_acts[i]
            wanted = self.objective.hook_points(i, self.parts.members[i].model)
            if d_feats is None and not pulled:  # no term looks at this model's views
                continue
            if d_feats is None:
                d_feats = torch.zeros_like(seen[i].features)
            d_feats = d_feats.reshape(-1, seen[i].features.shape[-1])
            views = seen[i].views.detach().requires_grad_(True)
            for c in self.chunks(views.shape[0]):
                with self._hooked(self.parts.members[i], wanted if pulled else ((), ())) as got:
                    out = self.encode(views[c], i)
                again = got.tensors() if pulled else {}
                torch.autograd.backward([out, *(again[key] for key in pulled)],
                                        [d_feats[c], *(d[c] for d in pulled.values())])
            roots.append(seen[i].views)
            root_grads.append(views.grad)
        torch.autograd.backward(roots, root_grads)

    def run(self) -> str:
        """Step until done or asked to stop; returns the status (complete or interrupted).

        Any exception is reported to callbacks as ``failed`` (``interrupted`` for Ctrl-C)
        before it propagates, so run folders always end with a status. Components the parts
        ablate stay ablated from the first event to the last (snapshots record the ablated CLIP).
        """
        ablation = self.parts.ablation
        with ablation.applied() if ablation is not None else contextlib.nullcontext():
            return self._run()

    def _run(self) -> str:
        self.steps_done = self.start_step
        self.emit("on_start")
        try:
            for index in range(self.start_step, self.steps):
                if self.stop_reason:
                    break
                self.step(index)
        except BaseException as err:
            self.error = err
            self.emit("on_end", "interrupted" if isinstance(err, KeyboardInterrupt) else "failed")
            raise
        status = "complete" if self.steps_done >= self.steps else "interrupted"
        self.emit("on_end", status)
        return status

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue the batch bit-identically (batched: one row per seed)."""
        return {
            "next_step": self.steps_done,
            "params": [p.detach().clone() for p in self.param.params],
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "augment_generators": [g.get_state() for g in self.augment.generators],
            "ensemble_augment_generators": [[g.get_state() for g in m.augment.generators]
                                            for m in self.parts.members[1:]],
            "objective_state": {k: v for k, v in self.state.items() if torch.is_tensor(v) and not k.startswith("_")},
            "param_buffers": {k: v.detach().clone() for k, v in self.param.buffers.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for p, saved in zip(self.param.params, state["params"]):
                p.copy_(saved.to(p.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        for g, s in zip(self.augment.generators, state["augment_generators"]):
            g.set_state(s)
        for m, states in zip(self.parts.members[1:], state.get("ensemble_augment_generators", [])):
            for g, s in zip(m.augment.generators, states):
                g.set_state(s)
        self.state.update({k: v.to(self.model.device) for k, v in state["objective_state"].items()})
        with torch.no_grad():  # the parameterization's own state (MACO's importance), where it keeps one
            for k, saved in state.get("param_buffers", {}).items():
                if k in self.param.buffers:
                    self.param.buffers[k].copy_(saved.to(self.param.buffers[k].device))
        self.start_step = self.steps_done = int(state["next_step"])
