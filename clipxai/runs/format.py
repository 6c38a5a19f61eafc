"""The run folder's format in one place: its file and folder names, its version, its arrays and rows.

Everything that writes or reads a run folder (the recorder, the writer, the reader, the
listing, the viewer, the sweep, the atlas, the analysis) takes these names from here, so a
change of the format is a change of this module. It imports nothing of clipxai (nor numpy),
so the fast readers (``clipxai runs``) stay fast. docs/run-format.md describes the same folder in words.
"""

from __future__ import annotations

import math

FORMAT_VERSION = 2               # what this clipxai writes
READABLE_FORMATS = (1, 2)        # what it reads (format 1: the config was flat)

# -- file and folder names, relative to the run folder --------------------------------------------
RUN_FILE = "run.json"            # the manifest
METRICS_FILE = "metrics.jsonl"   # one JSON object per logged step
CHECKPOINT_FILE = "checkpoint.pt"  # the latest resumable state
FINAL_IMAGE = "final.png"        # the image after the last step of a complete run
LOCK_FILE = ".lock"              # held (flock) by the process writing the run
ROOM_FILE = ".room"              # while a run is written: room kept for its manifest, freed on a full disk
SNAPSHOTS_DIR = "snapshots"      # the arrays, one .npy per array name
FRAMES_DIR = "frames"            # with --frames: frames/step_<k>.png
ANALYSIS_DIR = "analysis"        # written by clipxai analyze, never by the engine
SUMMARY_FILE = "summary.json"    # inside ANALYSIS_DIR: what the analysis found

# -- arrays: every array's first axis is the snapshot row --------------------------------------------
ACTIVATIONS_PREFIX = "activations/"   # activations/<hook point>
MEMBER_EMBEDDINGS_PREFIX = "embeddings/"  # embeddings/<model>: each other model of an ensemble
SNAPSHOT_SEMANTICS = "row i is step steps[i]: the image CLIP saw, before that step's update"
ARRAYS = {  # name -> what one row holds (the manifest's "meaning")
    "steps": "optimization step of each snapshot",
    "images": "image as given to CLIP, before normalization, raw values",
    "embeddings": "CLIP image features of the un-augmented image (not unit length)",
    "latents": "state of the {param} parameterization",
    "gradients": "d objective / d image",
    "importance": "MACO importance: |d objective / d image| summed over the steps so far, mean over colour channels",
}


def array_file(name: str) -> str:
    """Where an array lies in the run folder (``snapshots/<name>.npy``; names may hold '/')."""
    return f"{SNAPSHOTS_DIR}/{name}.npy"


def latents_meaning(param: str) -> str:
    """The meaning of ``latents``: the named parameterization's own state."""
    return ARRAYS["latents"].format(param=param)


def buffer_meaning(name: str, param: str) -> str:
    """The meaning of an array a parameterization keeps beside its latent (``importance`` for maco)."""
    return ARRAYS.get(name, f"state '{name}' kept by the {param} parameterization")


def member_embeddings_meaning(model: str) -> str:
    """The meaning of ``embeddings/<model>``: the ``embeddings`` row as another model of an ensemble saw it."""
    return f"CLIP image features of the un-augmented image under {model} (not unit length)"


def activations_meaning(hook: str, full: bool) -> str:
    """The meaning of ``activations/<hook>``: pooled over tokens, or every token with ``--activations full``."""
    return f"output of {hook} on the un-augmented image, {'all tokens' if full else 'mean over tokens'}"


def frame_file(step: int) -> str:
    """Where ``--frames`` puts the picture of the snapshot at ``step``."""
    return f"{FRAMES_DIR}/step_{step}.png"


# -- rows ----------------------------------------------------------------------------------------------

MIN_SNAPSHOTS = 3   # the fewest rows a run needs to be analyzed (clipxai.analysis.analyze refuses fewer)


def rows_for(steps: int, every: int) -> int:
    """How many snapshot rows ``steps`` steps make (a snapshot at step 0, every, 2*every, ...)."""
    return (steps + every - 1) // every


def row_of(step: int, every: int) -> int:
    """The snapshot row of a snapshot step."""
    return step // every


# -- what a manifest must hold to be read ------------------------------------------------------------

def _count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


MANIFEST_FIELDS = {  # field -> (check, what it must be); a field that is absent is not checked
    "status": (lambda v: isinstance(v, str), "a word"),
    "n_snapshots": (_count, "a whole number that is not negative"),
    "steps_done": (_count, "a whole number that is not negative"),
    "steps_total": (lambda v: v is None or _count(v), "a whole number that is not negative"),
    "prompt": (lambda v: isinstance(v, str), "text"),
    "prompts": (lambda v: isinstance(v, list) and all(isinstance(p, dict) for p in v), "a list of prompts"),
    "model": (lambda v: isinstance(v, (dict, str)), "a model's description"),
    "models": (lambda v: isinstance(v, list) and all(isinstance(m, dict) for m in v), "a list of models"),
    "config": (lambda v: v is None or isinstance(v, dict), "an object"),
    "arrays": (lambda v: isinstance(v, dict) and all(isinstance(a, dict) and isinstance(a.get("file"), str)
                                                      for a in v.values()), "an inventory of array files"),
    "seed": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)), "a whole number"),
}


def manifest_problem(manifest) -> str | None:
    """Why a parsed run.json cannot be read as a manifest (None when it can): the fields readers
    compute with must have their types, so a hand-edited or damaged file is named, not a traceback."""
    if not isinstance(manifest, dict):
        return f"it holds {type(manifest).__name__}, not an object"
    if "format_version" not in manifest:
        return "it has no format_version"
    version = manifest["format_version"]
    if version not in READABLE_FORMATS or isinstance(version, bool):
        return (f"it uses run format {str(version)[:40]}; this clipxai reads formats "
                f"{', '.join(map(str, READABLE_FORMATS))} (a newer clipxai wrote it)")
    for key, (check, what) in MANIFEST_FIELDS.items():
        if key in manifest and not check(manifest[key]):
            value = manifest[key]
            shown = "NaN" if isinstance(value, float) and math.isnan(value) else repr(value)[:40]
            return f"its {key} is {shown}, not {what}"
    done, total = manifest.get("steps_done"), manifest.get("steps_total")
    if _count(done) and _count(total) and done > total:
        return f"its steps_done ({done}) is larger than its steps_total ({total})"
    return None


RUN_FIELDS = ("status", "steps_done", "n_snapshots", "arrays")   # every run.json the run writer makes holds these


def missing_field(manifest: dict) -> str | None:
    """Why a manifest cannot be a run's own (a field every run.json holds is absent), or None.

    ``manifest_problem`` checks only the fields that are there, so listings and sweeps can read
    a sparse manifest; opening the run (its rows, its arrays, a resume) needs these."""
    for key in RUN_FIELDS:
        if key not in manifest:
            return f"it has no {key}"
    return None


def model_label(manifest: dict) -> str:
    """The run's model in words: ``toy``, or an ensemble as ``toy + toy-b:0.5`` (a weight shown where it
    is not 1); what every view shows (``clipxai runs``, the viewer, the report)."""
    members = manifest.get("models")
    if isinstance(members, list) and len(members) > 1:
        parts = []
        for m in members:
            m = m if isinstance(m, dict) else {}
            name = str(m.get("label") or m.get("name") or "?")
            weight = m.get("weight", 1)
            shown = isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight != 1
            parts.append(f"{name}:{weight:g}" if shown else name)
        return " + ".join(parts)
    model = manifest.get("model")
    model = (model.get("name") if isinstance(model, dict) else model) or (manifest.get("config") or {}).get("model")
    return str(model or "")
