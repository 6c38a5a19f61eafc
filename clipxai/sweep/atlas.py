"""The concept atlas of a sweep: what each run became, in one table and one page.

``build_atlas(sweep_dir, out)`` reads sweep.json, analyzes every complete run that has no
summary yet (with the spec's ``[analyze]`` options, PCA projection only unless the spec
asks for more, so it stays fast), and writes ``atlas.csv`` (one row per run: every grid
value, verdict, states, switches, the words of each state, final similarity, and the
per-step ``dynamics`` fields when the summary has them) and ``atlas.html``
(``clipxai.sweep.atlas_html``). Nothing of a run is written but its ``analysis/`` folder.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clipxai.errors import ClipxaiError
from clipxai.runs.format import FINAL_IMAGE, METRICS_FILE
from clipxai.runs.reader import metric_lines, metric_record, to_uint8
from clipxai.runs.summary import Summary
from clipxai.sweep.plan import ABSENT, BUSY, COMPLETE, folder_state
from clipxai.sweep.state import read_sweep
from clipxai.util.paths import check_can_write
from clipxai.util.words import verdict_phrase

TOP_WORDS = 3
BASE_COLUMNS = ("folder", "status", "verdict", "n_states", "switches", "switch_rate_per_100_steps",
                "final_similarity", "state_words", "verdict_reason", "error", "verdict_words")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")   # what makes a spreadsheet read a cell as a formula


@dataclass
class AtlasEntry:
    """One run of the sweep as the atlas shows it."""

    values: dict
    prompt: str
    seed: int
    folder: str
    status: str
    error: str | None = None
    summary: Summary | None = None
    final_similarity: float | None = None
    image: str | None = None                              # data URI of the final image
    states: list[dict] = field(default_factory=list)      # {state, share, words, image}

    @property
    def verdict(self) -> str | None:
        return self.summary.verdict if self.summary else None

    @property
    def verdict_words(self) -> str:
        """The verdict in the words every view uses, with the cycling note ("" when not analyzed)."""
        return verdict_phrase(self.summary.data) if self.summary else ""


@dataclass
class Atlas:
    name: str
    grid_keys: list[str]
    spec: dict
    entries: list[AtlasEntry]
    thumb: int = 112                  # display size of the images, in CSS pixels
    csv: Path | None = None
    html: Path | None = None


def data_uri(image: np.ndarray, thumb: int) -> str:
    """A [3,H,W] image in [0,1] as a PNG data URI, its larger side at most ``thumb`` pixels."""
    from PIL import Image  # noqa: PLC0415

    im = Image.fromarray(to_uint8(image))
    if max(im.size) > thumb:
        scale = thumb / max(im.size)
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _final_image(run, thumb: int) -> str | None:
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    path = run.path / FINAL_IMAGE
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0
        return data_uri(arr, thumb)
    except (OSError, UnidentifiedImageError):
        pass
    try:
        return data_uri(run.images[-1], thumb) if run.n else None
    except ClipxaiError:
        return None


def _final_similarity(run) -> float | None:
    """The similarity to the run's first positive prompt at its last logged step."""
    text = run.main_prompt
    path = run.path / METRICS_FILE
    if text is None or not path.is_file():
        return None
    for line in reversed(metric_lines(path)):
        value = (metric_record(line) or {}).get(f"sim/{text}")
        if isinstance(value, (int, float)):
            return float(value)
    return None


def _states(run, summary: Summary, thumb: int) -> list[dict]:
    states = summary.states
    n = max(len(states), 1)
    reps = summary.representatives
    out = []
    for s in sorted(set(states)):
        image = None
        rep = reps.get(str(s))
        if rep is not None:
            try:
                image = data_uri(run.images[rep], thumb)
            except (ClipxaiError, IndexError, ValueError, TypeError):
                image = None
        out.append({"state": int(s), "share": states.count(s) / n, "words": summary.words(s, TOP_WORDS),
                    "image": image})
    return out


def _analysis_options(spec: dict):
    from clipxai.sweep.validate import analyze_options  # noqa: PLC0415

    options = dict(spec.get("analyze") or {})
    options.setdefault("projections", ["pca"])
    options.setdefault("gif", False)
    return analyze_options(options)


def _summary(run, spec: dict, log) -> Summary:
    """The run's summary.json, analyzing the run first when it has none."""
    from clipxai.analysis.analyze import analyze  # noqa: PLC0415
    from clipxai.runs.summary import read_summary  # noqa: PLC0415
    from clipxai.sweep.work import model_for_analysis  # noqa: PLC0415

    summary = read_summary(run)
    if summary is None:
        log(f"analyzing {run.path}")
        opts = _analysis_options(spec)
        summary = analyze(run, opts, model=model_for_analysis(run, opts)).write()
    return Summary(summary)


def on_disk(path: Path, state: str, listed: str, error: str | None) -> tuple[str, str | None]:
    """What a row that is not complete is, by its folder: running, interrupted, failed, corrupt or missing.

    sweep.json says what the driver last knew; the folder says what is there now (a run
    killed with the driver, a run.json damaged since), so the folder decides, with its reason.
    """
    from clipxai.runs.reader import read_manifest  # noqa: PLC0415

    if state == BUSY:
        return "running", None
    if state == ABSENT:
        return ("missing", f"{path} is not a complete run.") if listed == "complete" else (listed, error)
    try:
        manifest = read_manifest(path)
    except (ClipxaiError, OSError) as err:
        return "corrupt", str(err) if isinstance(err, ClipxaiError) else f"{path} cannot be read ({err})."
    status = manifest.get("status")
    if status == "failed":
        return "failed", str(manifest.get("error") or error or "the run failed")
    reason = manifest.get("stop_reason")
    killed = "killed (no process holds it)" if status == "running" else None
    return "interrupted", str(reason or killed or error or "stopped before its last step")


def collect(sweep_dir: str | Path, thumb: int = 112, log=None) -> Atlas:
    """Every row of a sweep, with its analysis (made where missing) and pictures."""
    from clipxai.runs.load import open_run  # noqa: PLC0415
    from clipxai.sweep.work import sentence  # noqa: PLC0415

    log = log or (lambda msg: None)
    folder = Path(sweep_dir).expanduser()
    data = read_sweep(folder)
    spec = data.get("spec") or {}
    entries = []
    for row in data["rows"]:
        path = folder / str(row.get("folder", ""))
        entry = AtlasEntry(values=row.get("values") or {}, prompt=str(row.get("prompt", "")), seed=row.get("seed", 0),
                           folder=str(row.get("folder", "")), status=str(row.get("status", "unknown")),
                           error=row.get("error"))
        entries.append(entry)
        state = folder_state(path)
        if state != COMPLETE:
            entry.status, entry.error = on_disk(path, state, entry.status, entry.error)
            continue
        entry.status = "complete"
        try:
            run = open_run(path)
            entry.final_similarity = _final_similarity(run)
            entry.image = _final_image(run, thumb)
            entry.summary = _summary(run, spec, log)
            entry.states = _states(run, entry.summary, thumb)
        except Exception as err:  # noqa: BLE001  (one run that cannot be analyzed stays a row of the atlas)
            entry.error = f"analysis: {sentence(err)}"
            log(f"{path}: {entry.error}")
    return Atlas(name=str(data.get("name", folder.name)), grid_keys=list(data.get("grid_keys") or []), spec=spec,
                 entries=entries, thumb=thumb)


def _dynamics(summary: Summary | None) -> dict:
    """The scalar fields of the summary's ``dynamics`` object (lists become their length)."""
    dyn = summary.dynamics if summary else None
    if dyn is None:
        return {}
    out = {}
    for key, value in dyn.items():
        if isinstance(value, (bool, int, float, str)) or value is None:
            out[f"dynamics_{key}"] = value
        elif isinstance(value, list):
            out.setdefault(f"dynamics_{key}", len(value))
    return out


def csv_rows(atlas: Atlas) -> tuple[list[str], list[dict]]:
    keys = ["prompt", "seed", *(k for k in atlas.grid_keys if k not in ("prompt", "seed"))]
    rows = []
    dyn_keys: dict[str, None] = {}
    for e in atlas.entries:
        s = Summary.of(e.summary)
        row = {**{k: e.values.get(k, e.prompt if k == "prompt" else e.seed if k == "seed" else "") for k in keys},
               "folder": e.folder, "status": e.status, "verdict": _blank(s.verdict),
               "verdict_words": e.verdict_words,
               "n_states": _blank(s.n_states), "switches": _blank(s.switches),
               "switch_rate_per_100_steps": _blank(s.switch_rate.get("value")),
               "final_similarity": "" if e.final_similarity is None else round(e.final_similarity, 5),
               "state_words": " | ".join(f"{st['state']}: {', '.join(w for w in st['words'] if w)}" for st in e.states),
               "verdict_reason": _blank(s.verdict_reason), "error": e.error or ""}
        for k in keys:
            value = row[k]
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                row[k] = json.dumps(value, ensure_ascii=False)
        dyn = _dynamics(e.summary)
        dyn_keys.update(dict.fromkeys(dyn))
        row.update(dyn)
        rows.append(row)
    return [*keys, *BASE_COLUMNS, *dyn_keys], rows


def _blank(value):
    """A cell: the value, or empty where the summary has none."""
    return "" if value is None else value


def spreadsheet_safe(value):
    """A text cell a spreadsheet would take for a formula (``=HYPERLINK(...)``, ``@SUM(1)``) quoted
    with a leading ``'``; numbers stay numbers, negative ones included."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(atlas: Atlas, path: Path) -> Path:
    from clipxai.util.files import atomic_write_text  # noqa: PLC0415

    columns, rows = csv_rows(atlas)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: spreadsheet_safe(row.get(c, "")) for c in columns})
    return atomic_write_text(path, buf.getvalue())


def build_atlas(sweep_dir: str | Path, out: str | Path, thumb: int = 112, log=None) -> Atlas:
    """Write ``atlas.csv`` and ``atlas.html`` for a sweep folder into ``out``."""
    from clipxai.sweep.atlas_html import render  # noqa: PLC0415
    from clipxai.util.files import atomic_write_text  # noqa: PLC0415

    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ClipxaiError(f"The atlas output {out} exists and is not a folder.")
    check_can_write(out, "atlas")  # before the analyses, not after them
    atlas = collect(sweep_dir, thumb=thumb, log=log)
    try:
        out.mkdir(parents=True, exist_ok=True)
        atlas.csv = write_csv(atlas, out / "atlas.csv")
        atlas.html = atomic_write_text(out / "atlas.html", render(atlas))
    except OSError as err:
        raise ClipxaiError(f"The atlas cannot be written in {out} ({err.strerror or type(err).__name__}).") from err
    return atlas
