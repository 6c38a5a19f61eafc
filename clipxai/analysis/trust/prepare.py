"""Everything an evaluation needs, checked before any work: the run, the labels, the reference, the judges, the model.

``clipxai evaluate`` and ``clipxai analyze --evaluate`` both start here, so a mistake (an unknown judge,
a reference that is not a folder of images, bad labels) is one sentence before anything is computed or
written, the same way for both.
"""

from __future__ import annotations

from dataclasses import dataclass

from clipxai.analysis.trust.run import (
    PER_STATE,
    EvaluateOptions,
    check_run,
    default_judges,
    load_judges,
    load_model,
    load_reference,
    parse_labels,
)
from clipxai.errors import ClipxaiError


@dataclass
class Prepared:
    """What ``evaluate_run`` takes: the options as given, the loaded judges and model, the reference images."""

    options: EvaluateOptions
    judges: list
    model: object
    reference: object  # torch.Tensor [N, 3, H, W] or None


def prepare(run, *, judges=None, reference=None, labels=None, per_state: int = PER_STATE, model=None,
            device: str = "auto") -> Prepared:
    """Check every input of an evaluation of ``run`` and load what it needs.

    ``judges``: names (any ``--model`` form) or loaded models; None: ``default_judges``. ``model``: the
    ascending model, loaded or a name; None: the run's own. ``labels``: a list or ``"a,b,c"``.
    """
    check_run(run)
    label_list = parse_labels(labels) if isinstance(labels, str) else tuple(labels or ())
    if labels is not None and not isinstance(labels, str):
        parse_labels(",".join(label_list))
    if isinstance(per_state, bool) or not isinstance(per_state, int) or per_state < 1:
        raise ClipxaiError(f"The snapshots measured per state must be a whole number of at least 1, not {per_state!r}.")
    reference_images = load_reference(None if reference is None else str(reference), tuple(run.images.shape[-2:]))
    judge_models = load_judges(default_judges(run) if judges is None else list(judges), device)
    names = tuple(j if isinstance(j, str) else j.name for j in (judges or [m.name for m in judge_models]))
    opts = EvaluateOptions(judges=names, reference=None if reference is None else str(reference),
                           labels=label_list, per_state=per_state)
    if isinstance(model, str):
        from clipxai.models.load import load_clip  # noqa: PLC0415
        model = load_clip(model, device=device)
    return Prepared(options=opts, judges=judge_models, model=model if model is not None else load_model(run, device),
                    reference=reference_images)
