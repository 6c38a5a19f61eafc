"""How a running ascent shows itself: a progress bar on a terminal, log lines elsewhere.

On a terminal, a tqdm bar with elapsed time, ETA and steps per second, and each prompt's
current and best similarity (per seed when several run together). When standard error is not a
terminal (batch jobs, nohup, notebooks' logs) the same figures come as one line every
``every`` seconds. Both end with a line saying where the run ended and what to run next.
"""

from __future__ import annotations

import sys
import time

import torch

from clipxai.ascent.engine import Callback, Engine
from clipxai.terms.base import Step


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress(Callback):
    """Progress of the steps and of each prompt's similarity (``--quiet`` leaves it out)."""

    def __init__(self, stream=None, every: float = 10.0, label: str = "", next_command: str | None = None):
        self.stream = stream or sys.stderr
        self.every = every                  # seconds between log lines when not on a terminal
        self.label = label
        self.next_command = next_command
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = None
        self._t0 = self._last = 0.0
        self._first = 0
        self.best: list[list[float]] | None = None   # [seed][prompt], as last shown
        self.current: list[list[float]] | None = None
        self.terms: dict[str, float] = {}            # each term's value (mean over seeds), as last shown
        self._best: torch.Tensor | None = None       # (K, P) best so far, on the device: no sync per step

    # -- figures ---------------------------------------------------------------------------------
    def _track_best(self, step: Step) -> None:
        """The best similarity of every step, not only of the steps that print a line."""
        sims = step.prompt_similarities
        self._best = sims.clone() if self._best is None else torch.maximum(self._best, sims)

    def _observe(self, step: Step) -> None:
        self.current = step.prompt_similarities.tolist()
        self.best = self._best.tolist()
        self.terms = {name: float(value.float().mean()) for name, value in step.values.items()}

    def term_values(self) -> str:
        """``tv 0.0123, saturation 0.5`` for the terms that are not a prompt's similarity."""
        shown = [(n, v) for n, v in self.terms.items() if not n.startswith(("cosine(", "spherical(", "logexp_cosine("))]
        return ", ".join(f"{n} {v:.4g}" for n, v in shown)

    def similarities(self, engine: Engine) -> str:
        """``❤️ 0.452 (best 0.460)`` per prompt; per seed (``0.45 0.47 ...``) when several seeds run."""
        if self.current is None:
            return ""
        parts = []
        for j, p in enumerate(engine.prompts):
            text = p.text if len(p.text) <= 24 else p.text[:23] + "…"
            now = [row[j] for row in self.current]
            best = [row[j] for row in self.best]
            if len(now) == 1:
                parts.append(f"{text} {now[0]:.3f} (best {best[0]:.3f})")
            else:
                parts.append(f"{text} " + " ".join(f"{v:.2f}" for v in now) + f" (best {max(best):.3f})")
        return " | ".join(parts)

    # -- events ----------------------------------------------------------------------------------
    def on_start(self, engine: Engine) -> None:
        self._t0 = self._last = time.perf_counter()
        self._first = engine.start_step
        if self.tty:
            from tqdm import tqdm  # noqa: PLC0415
            self.bar = tqdm(total=engine.steps, initial=engine.start_step, file=self.stream, dynamic_ncols=True,
                            desc=self.label or None, unit="step", leave=True, mininterval=0.25,
                            bar_format="{desc}{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                       "[{elapsed}<{remaining}, {rate_fmt}]{postfix}")
        else:
            seeds = len(engine.seeds)
            self._line(f"{self.label + ': ' if self.label else ''}{engine.steps - engine.start_step} steps"
                       f"{f' of {seeds} seeds' if seeds > 1 else ''} to go")

    def on_step_end(self, engine: Engine, step: Step) -> None:
        self._track_best(step)
        now = time.perf_counter()
        last = step.index == engine.steps - 1
        due = (now - self._last >= (0.25 if self.tty else self.every)) or last
        if not due:
            if self.bar is not None:
                self.bar.update(1)
            return
        self._last = now
        self._observe(step)
        if self.bar is not None:
            self.bar.set_postfix_str(self.similarities(engine), refresh=False)
            self.bar.update(1)
            return
        done = step.index + 1
        rate = (done - self._first) / max(now - self._t0, 1e-9)
        eta = (engine.steps - done) / max(rate, 1e-9)
        self._line(f"step {done}/{engine.steps} ({100 * done / engine.steps:.0f}%) {rate:.2f} steps/s, "
                   f"elapsed {_clock(now - self._t0)}, ETA {_clock(eta)} | {self.similarities(engine)}")

    def on_end(self, engine: Engine, status: str) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elapsed = _clock(time.perf_counter() - self._t0)
        figures = " | ".join(f for f in (self.similarities(engine), self.term_values()) if f)
        if status == "complete":
            tail = f"; next: {self.next_command}" if self.next_command else ""
            self._line(f"done: {engine.steps_done} steps in {elapsed}" + (f" | {figures}" if figures else "") + tail)
        else:
            self._line(f"{status} at step {engine.steps_done} after {elapsed}" + (f" | {figures}" if figures else ""))

    def _line(self, text: str) -> None:
        self.stream.write(text.rstrip(" |") + "\n")
        self.stream.flush()
