"""Exceptions that reach the user as one sentence.

Anything raised as a ``ClipxaiError`` is a problem with the user's input or environment
(a missing file, a bad prompt, a model that cannot be downloaded); the CLI prints its
message and exits non-zero. Anything else is a bug and keeps its traceback under --debug.
"""


class ClipxaiError(Exception):
    """A user-facing error; ``str(err)`` is one complete sentence."""

    exit_code = 2


class ModelLoadError(ClipxaiError):
    """A CLIP or generator model could not be found, downloaded or read."""


class PromptError(ClipxaiError):
    """A prompt string or prompt file is malformed."""


class LossError(ClipxaiError):
    """A user loss could not be imported, or returned something unusable."""


class RunError(ClipxaiError):
    """A run directory is missing, corrupt, not writable or already holds results."""


class NonFiniteLossError(ClipxaiError):
    """The objective became NaN or infinite; the run stopped and kept its snapshots."""

    def __init__(self, step: int, value: float):
        self.step = step
        self.value = value
        super().__init__(
            f"The loss became {value} at step {step}; the run stopped there and its "
            f"snapshots up to that step are kept (try a lower learning rate)."
        )
