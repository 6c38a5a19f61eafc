"""The learning rate over the steps: constant, cosine decay, or halved on a plateau."""

from __future__ import annotations

import math

import torch


class LRSchedule:
    """constant, cosine (to ``lr_final * lr``) or plateau (drop by a factor when stuck)."""

    def __init__(self, kind: str, lr: float, steps: int, lr_final: float = 0.1,
                 patience: int = 50, factor: float = 0.5):
        self.kind, self.base, self.steps, self.lr_final = kind, lr, steps, lr_final
        self.patience, self.drop = patience, factor
        self.factor, self.best, self.bad = 1.0, -math.inf, 0

    def lr(self, step: int) -> float:
        if self.kind == "cosine":
            t = step / max(self.steps - 1, 1)
            return self.base * (self.lr_final + (1 - self.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))
        return self.base * self.factor

    def observe(self, total: torch.Tensor) -> None:
        """Plateau only (the one schedule that reads the objective, so the one that syncs)."""
        if self.kind != "plateau":
            return
        objective = float(total.mean())
        if objective > self.best + 1e-4:
            self.best, self.bad = objective, 0
        else:
            self.bad += 1
            if self.bad >= self.patience:
                self.factor *= self.drop
                self.bad = 0

    def state_dict(self) -> dict:
        return {"factor": self.factor, "best": self.best, "bad": self.bad}

    def load_state_dict(self, state: dict) -> None:
        self.factor, self.best, self.bad = state["factor"], state["best"], state["bad"]
