"""Exceptions that reach the user as one sentence.

Anything raised as a ``ClipxaiError`` is a problem with the user's input or environment
(a missing file, a bad prompt, a model that cannot be downloaded); the CLI prints its
message and exits non-zero. Anything else is a bug and keeps its traceback under --debug.

Every exit code of every command is named here, once.
"""

EXIT_OK = 0
EXIT_FAILED = 1         # a bug, or a sweep in which some run failed
EXIT_BAD_INPUT = 2      # a ClipxaiError: bad input or environment, one sentence
EXIT_NON_FINITE = 3     # the objective became NaN or infinite
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM; the run can be resumed


class ClipxaiError(Exception):
    """A user-facing error; ``str(err)`` is one complete sentence."""

    exit_code = EXIT_BAD_INPUT


class ModelLoadError(ClipxaiError):
    """A CLIP or generator model could not be found, downloaded or read."""


class PromptError(ClipxaiError):
    """A prompt string or prompt file is malformed."""


class TermError(ClipxaiError):
    """An objective term could not be imported, or returned something unusable."""


LossError = TermError  # its first name


class RunError(ClipxaiError):
    """A run directory is missing, corrupt, not writable or already holds results."""


class DiskFullError(RunError):
    """The disk, the quota or the file-size limit ran out while results were written; what was
    half written is gone and what was there before is as it was."""


class TrainError(ClipxaiError):
    """A training (toy CLIP, toy VQGAN, CVAE, attribute classifier) cannot start or continue:
    results already in its folder, a resume that does not match, hyperparameters out of range."""


class NonFiniteLossError(ClipxaiError):
    """The objective became NaN or infinite; the run stopped before that step's update."""

    exit_code = EXIT_NON_FINITE

    def __init__(self, step: int, value: float, term: str | None = None, kept: int | None = None):
        self.step, self.value, self.term, self.kept = step, value, term, kept
        cause = f" (the term '{term}' was not finite)" if term else ""
        if kept is None:
            rows = "its snapshots up to that step are kept"
        elif kept == 0:
            rows = "no snapshot was recorded before it"
        else:
            rows = f"the {kept} snapshot{'s' if kept != 1 else ''} recorded before it {'are' if kept != 1 else 'is'} kept"
        advice = ("check that term" if term and not term.startswith(("cosine", "spherical", "logexp"))
                  else "try a lower learning rate")
        super().__init__(f"The objective became {value} at step {step}{cause}; the run stopped there, "
                         f"{rows} ({advice}).")
