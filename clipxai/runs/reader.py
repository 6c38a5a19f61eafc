"""Reading a run folder: ``Run``, its manifest, arrays and metrics (the writer is ``runs/writer.py``).

Format 2 nests the config in sections (param, augment, optim, objective, record); format 1
(every run before) has it flat and is read as if it were format 2. Arrays were preallocated
with ``open_memmap``, so a killed run leaves valid ``.npy`` files; ``run.json`` says how many
rows are real (``n_snapshots``). A ``Run``'s arrays are memory-mapped and cut to the recorded
rows. ``clipxai.runs.load`` opens folders by path: native runs here, and (through
``clipxai.runs.legacy``) the folders of the original CLIP-text-to-image script.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from clipxai.errors import RunError
from clipxai.runs.format import (  # noqa: F401  (FORMAT_VERSION, READABLE_FORMATS, rows_for, row_of, model_label: their old home)
    ACTIVATIONS_PREFIX,
    ANALYSIS_DIR,
    FORMAT_VERSION,
    METRICS_FILE,
    READABLE_FORMATS,
    RUN_FILE,
    manifest_problem,
    model_label,
    row_of,
    rows_for,
)
from clipxai.util.paths import inside


def slugify(text: str, limit: int = 40) -> str:
    """A file-name-safe slug of a prompt; emoji and other symbols become their names."""
    import unicodedata  # noqa: PLC0415

    words = []
    for ch in text.lower():
        if ch.isascii():
            words.append(ch if ch.isalnum() else "-")
        elif unicodedata.category(ch).startswith(("L", "N")):
            words.append(ch)
        else:
            name = unicodedata.name(ch, "")
            if name and not name.startswith(("VARIATION SELECTOR", "ZERO WIDTH")):
                words.append("-" + name.lower().replace(" ", "-") + "-")
    slug = re.sub(r"-+", "-", "".join(words)).strip("-")
    return slug[:limit].strip("-") or "run"


def default_run_name(prompt: str) -> str:
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{slugify(prompt)}"


def read_manifest(path: Path) -> dict:
    """The manifest of a run folder, or ``RunError`` saying what is wrong with it."""
    path = Path(path)
    manifest_path = path / RUN_FILE
    if not path.is_dir():
        raise RunError(f"{path} is not a folder.")
    if not manifest_path.is_file():
        raise RunError(f"{path} is not a clipxai run (it has no {RUN_FILE}).")
    manifest = parse_manifest(manifest_path)
    if not isinstance(manifest, dict) or "format_version" not in manifest:
        raise RunError(f"The manifest {manifest_path} is not a clipxai manifest (no format_version).")
    if manifest["format_version"] not in READABLE_FORMATS:
        raise RunError(
            f"{path} uses run format {str(manifest['format_version'])[:40]}; this clipxai reads formats "
            f"{', '.join(map(str, READABLE_FORMATS))} (a newer clipxai wrote it)."
        )
    problem = manifest_problem(manifest)
    if problem:
        raise RunError(f"The manifest {manifest_path} is corrupt: {problem}.")
    return manifest


def parse_manifest(manifest_path: Path):
    """The JSON in a run.json, or ``RunError`` saying why it is not JSON (unreadable, cut, nested too deeply)."""
    try:
        return json.loads(Path(manifest_path).read_text(encoding="utf-8"))
    except OSError as err:
        raise RunError(f"The manifest {manifest_path} cannot be read ({err.strerror or err}).") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunError(f"The manifest {manifest_path} is corrupt ({err.__class__.__name__}: {err}).") from err
    except ValueError as err:   # a number too long to convert (thousands of digits): no manifest holds one
        raise RunError(f"The manifest {manifest_path} is corrupt (it holds a number too long to read: "
                       f"{str(err)[:80]}).") from err
    except RecursionError as err:
        raise RunError(f"The manifest {manifest_path} is corrupt (nested too deeply to be a manifest).") from err


# ---------------------------------------------------------------------------------------
# Reading

def to_uint8(chw: np.ndarray) -> np.ndarray:
    """(3, H, W) values as CLIP saw them (NaN as 0, clipped to [0, 1], never rescaled) -> (H, W, 3) uint8."""
    x = np.nan_to_num(np.asarray(chw, dtype=np.float32), nan=0.0)
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8).transpose(1, 2, 0)


def metric_lines(file: Path) -> list[str]:
    """The lines of a metrics.jsonl as text.

    A killed run can leave its last line cut inside a multi-byte character (prompts such as
    "❤️" are written as they are); that line decodes with a replacement character and fails
    to parse as JSON, so readers skip it like any other torn line.
    """
    return file.read_bytes().decode("utf-8", errors="replace").splitlines()


def _check_against_manifest(file: Path, arr, info: dict) -> None:
    """``RunError`` when an array file is not the array run.json lists (no rows, another row shape or dtype)."""
    if not isinstance(arr, np.ndarray) or arr.ndim == 0:
        raise RunError(f"The array file {file} holds no rows (a single value); the run is damaged.")
    listed = info.get("shape")
    if isinstance(listed, list) and list(arr.shape[1:]) != listed[1:]:
        raise RunError(f"The array file {file} holds rows of shape {list(arr.shape[1:])}, but run.json lists "
                       f"{str(listed[1:])[:60]}; the run is damaged.")
    dtype = info.get("dtype")
    if isinstance(dtype, str) and dtype != arr.dtype.name:
        raise RunError(f"The array file {file} holds {arr.dtype.name} values, but run.json lists {dtype[:20]}; "
                       f"the run is damaged.")


def metric_record(line: str | bytes) -> dict | None:
    """One metrics.jsonl line as a dict, or None for a line no reader can use.

    A torn last line, a number thousands of digits long, an array nested thousands deep or a
    value that is not an object are skipped like any damaged line, never an error.
    """
    try:
        record = json.loads(line)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


@dataclass
class Run:
    """A recorded run: the manifest and lazily loaded, memory-mapped arrays cut to ``n`` rows.

    ``layout`` is ``native`` for clipxai runs and ``legacy`` for the original script's
    folders. ``problems`` lists files that were skipped while loading (corrupt, empty).
    """

    path: Path
    manifest: dict
    layout: str = "native"
    problems: list[str] = field(default_factory=list)
    _arrays: dict[str, Any] = field(default_factory=dict, repr=False)
    _metrics: tuple | None = field(default=None, repr=False, compare=False)   # (size, mtime, records)

    @property
    def n(self) -> int:
        return int(self.manifest.get("n_snapshots", 0))

    @property
    def status(self) -> str:
        return self.manifest.get("status", "unknown")

    @property
    def config(self) -> dict:
        """The run's configuration in sections (format 2; a format-1 run's flat config upgraded)."""
        config = self.manifest.get("config")
        if not config:
            return {}
        if "optim" not in config:
            from clipxai.ascent.config import upgrade_v1  # noqa: PLC0415
            return {**{k: v for k, v in config.items() if k in ("prompt", "preset", "model", "device", "seed",
                                                              "seeds", "size", "normalize", "out", "name")},
                    **upgrade_v1(config)}
        return config

    def option(self, name: str, default: Any = None) -> Any:
        """One configuration value by its flat name (``steps``, ``lr``, ``cutouts``, ``sigma`` ...)."""
        from clipxai.ascent.config import FLAT, PARAM_ALIASES  # noqa: PLC0415
        config = self.config
        if name in FLAT:
            value: Any = config
            for part in FLAT[name].split("."):
                if not isinstance(value, dict) or part not in value:
                    return default
                value = value[part]
            return value
        if name in PARAM_ALIASES:
            return config.get("param", {}).get("options", {}).get(PARAM_ALIASES[name], default)
        raise KeyError(name)

    @property
    def prompts(self) -> list[dict]:
        return self.manifest.get("prompts", [])

    @property
    def prompt(self) -> str:
        """The prompt as it was given (``a:1|b:-0.5`` for several, weights and all)."""
        return self.manifest.get("prompt", "")

    @property
    def main_prompt(self) -> str | None:
        """The text of the first prompt with a positive weight: the one a run is said to ascend toward."""
        return next((p.get("text") for p in self.prompts
                     if p.get("weight", 1) > 0 and p.get("kind", "text") == "text"), None)

    @property
    def model_name(self) -> str | None:
        """The (first) model's name, as its embeddings are labelled."""
        return self.manifest.get("model", {}).get("name")

    @property
    def model_label(self) -> str:
        """The model in words, an ensemble as ``toy + toy-b:0.5`` (see ``model_label``)."""
        return model_label(self.manifest)

    def embedding_models(self) -> list[dict]:
        """The models whose embeddings the run recorded: ``label`` and ``array`` of each (ensembles have several)."""
        models = self.manifest.get("models")
        if models:
            return [{"label": m.get("label", m.get("name")), "array": m["array"], "describe": m} for m in models]
        return [{"label": self.model_name, "array": "embeddings", "describe": self.manifest.get("model", {})}]

    def seen_by(self, model: str) -> "Run":
        """This run as one model of its ensemble saw it: that model's embeddings are ``embeddings``
        and it is the run's model (for labels and concept probes)."""
        members = self.embedding_models()
        chosen = next((m for m in members if model in (m["label"], m["describe"].get("name"))), None)
        if chosen is None:
            raise RunError(f"{self.path} has no embeddings of a model named '{model}' "
                           f"(it has {', '.join(str(m['label']) for m in members)}).")
        manifest = {**self.manifest, "model": chosen["describe"]}
        seen = Run(path=self.path, manifest=manifest, layout=self.layout, problems=list(self.problems))
        if chosen["array"] != "embeddings":
            seen._arrays["embeddings"] = self.array(chosen["array"])
        return seen

    def array_names(self) -> list[str]:
        if self.layout == "native":
            return list(self.manifest.get("arrays", {}))
        return list(self._arrays)

    def array(self, name: str) -> np.ndarray:
        """The recorded rows of one array (memory-mapped; nothing is read until sliced)."""
        if name not in self._arrays:
            info = self.manifest.get("arrays", {}).get(name)
            if info is None:
                raise RunError(f"{self.path} has no array '{name}' (it has {', '.join(self.array_names()) or 'none'}).")
            file = inside(self.path, info["file"], "array file")
            try:
                arr = np.load(file, mmap_mode="r")
            except (OSError, ValueError, EOFError) as err:
                raise RunError(f"The array file {file} cannot be read ({err}).") from err
            _check_against_manifest(file, arr, info)
            self._arrays[name] = arr[: self.n]
        return self._arrays[name]

    @property
    def steps(self) -> np.ndarray:
        return self.array("steps")

    @property
    def images(self) -> np.ndarray:
        return self.array("images")

    @property
    def embeddings(self) -> np.ndarray:
        return self.array("embeddings")

    @property
    def latents(self) -> np.ndarray:
        return self.array("latents")

    @property
    def gradients(self) -> np.ndarray:
        return self.array("gradients")

    @property
    def activations(self) -> dict[str, np.ndarray]:
        """Hook-point name -> (N, width) or (N, tokens, width) array."""
        prefix = ACTIVATIONS_PREFIX
        return {name[len(prefix):]: self.array(name) for name in self.array_names() if name.startswith(prefix)}

    def metrics(self) -> list[dict]:
        """Every logged step's metrics (skips a torn last line of a killed run)."""
        file = self.path / METRICS_FILE
        if not file.is_file():
            return []
        # Read once while the file is unchanged: analysing and reporting a run of 1M logged steps
        # asks for them three times, and each read parses every line (~3 s).
        st = file.stat()
        if self._metrics is None or self._metrics[:2] != (st.st_size, st.st_mtime_ns):
            records = [record for line in metric_lines(file) if (record := metric_record(line)) is not None]
            self._metrics = (st.st_size, st.st_mtime_ns, records)
        return list(self._metrics[2])

    @property
    def analysis_dir(self) -> Path:
        return self.path / ANALYSIS_DIR

    # -- looking at it ----------------------------------------------------------------------------
    def image(self, i: int = -1) -> np.ndarray:
        """Snapshot ``i`` (negative counts from the end) as an H x W x 3 uint8 picture (values clipped to [0,1])."""
        n = self.n
        if not -n <= i < n:
            raise RunError(f"{self.path} has {n} snapshots; there is no snapshot {i}.")
        return to_uint8(self.images[i])

    def show(self, i: int = -1, size: int = 256):
        """Snapshot ``i`` as a PIL image of at least ``size`` pixels (a notebook displays it)."""
        from PIL import Image  # noqa: PLC0415
        picture = Image.fromarray(self.image(i))
        if min(picture.size) < size:
            scale = -(-size // min(picture.size))
            picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
        return picture

    def __repr__(self) -> str:
        steps = self.manifest.get("steps_done")
        total = self.manifest.get("steps_total")
        done = f"{steps}/{total} steps" if total and steps != total else f"{steps} steps"
        return (f"Run({str(self.path)!r}, {self.status}, prompt={self.prompt!r}, model={self.model_name!r}, "
                f"{done}, {self.n} snapshots)")

    def _repr_html_(self) -> str:
        """A notebook's view: a strip of snapshots and the numbers that matter."""
        import base64  # noqa: PLC0415
        import html  # noqa: PLC0415
        import io  # noqa: PLC0415
        cells = []
        if "images" in self.array_names() and self.n:
            picks = sorted({round(k * (self.n - 1) / 5) for k in range(6)})
            steps = np.asarray(self.steps)
            for i in picks:
                buf = io.BytesIO()
                self.show(i, size=96).save(buf, format="PNG")
                data = base64.b64encode(buf.getvalue()).decode()
                cells.append(f'<figure style="display:inline-block;margin:2px;text-align:center">'
                             f'<img src="data:image/png;base64,{data}" width="96" height="96">'
                             f'<figcaption style="font-size:11px">step {int(steps[i])}</figcaption></figure>')
        last = (self.metrics() or [{}])[-1]
        sims = ", ".join(f"{html.escape(k[4:])} {v:.3f}" for k, v in last.items() if k.startswith("sim/"))
        return (f"<div><b>{html.escape(self.path.name)}</b>: {html.escape(self.status)}, "
                f"“{html.escape(self.prompt)}” on {html.escape(str(self.model_name))}, "
                f"{self.manifest.get('steps_done')} steps, {self.n} snapshots"
                f"{'; similarity ' + sims if sims else ''}<br>{''.join(cells)}</div>")
