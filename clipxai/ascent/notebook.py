"""Watching an ascent in a notebook: the current image and similarity, updated in place."""

from __future__ import annotations

import io

from clipxai.ascent.engine import Callback, Engine
from clipxai.errors import ClipxaiError
from clipxai.terms.base import Step


def in_notebook() -> bool:
    """Whether this process runs under an IPython kernel (Jupyter, VS Code, Colab), which can show images."""
    try:
        from IPython import get_ipython  # noqa: PLC0415
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def notebook_display(every: int, size: int = 192) -> NotebookDisplay | None:
    """The in-place display in a notebook; None elsewhere, where the text progress line shows the run."""
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ClipxaiError(f"display_every must be a positive number of steps (got {every!r}).")
    return NotebookDisplay(every, size) if in_notebook() else None


class NotebookDisplay(Callback):
    """Every ``every`` steps, replace one output cell's picture (a row of the seeds' images) and caption.

    ``clipxai.ascend(..., display_every=N)`` adds it in a notebook (``notebook_display``).
    """

    def __init__(self, every: int, size: int = 192):
        try:
            from IPython.display import HTML, Image, display  # noqa: PLC0415
        except ImportError as err:
            raise ClipxaiError("display_every shows images in a notebook and needs IPython; "
                               "pip install ipython (or run in Jupyter).") from err
        if every < 1:
            raise ClipxaiError(f"display_every must be a positive number of steps (got {every}).")
        self.every, self.size = every, size
        self._image, self._html, self._display = Image, HTML, display
        self.handles = None

    def _show(self, engine: Engine, step: Step) -> None:
        import numpy as np  # noqa: PLC0415
        from PIL import Image  # noqa: PLC0415

        from clipxai.runs.reader import to_uint8  # noqa: PLC0415
        images = step.image.detach().float().cpu().numpy()
        row = np.concatenate([to_uint8(im) for im in images], axis=1)
        picture = Image.fromarray(row)
        scale = max(1, self.size // picture.height)
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
        buf = io.BytesIO()
        picture.save(buf, format="PNG")
        sims = step.prompt_similarities.tolist()
        caption = " · ".join(f"{p.text}: " + ", ".join(f"{row[j]:.3f}" for row in sims)
                             for j, p in enumerate(engine.prompts))
        content = (self._image(data=buf.getvalue()), self._html(f"step {step.index + 1}/{engine.steps} — {caption}"))
        if self.handles is None:
            self.handles = [self._display(c, display_id=True) for c in content]
        else:
            for handle, c in zip(self.handles, content):
                handle.update(c)

    def on_step_end(self, engine: Engine, step: Step) -> None:
        if (step.index + 1) % self.every == 0 or step.index == engine.steps - 1:
            self._show(engine, step)
