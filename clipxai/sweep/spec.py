"""A sweep spec (TOML) and its grid, expanded into one row per run folder.

    name = "emotions"
    [grid]                      # lists, crossed
    prompt = ["❤️", "joy"]
    seed = [0, 1, 2, 3]
    [ascend]                    # fixed options of every run, by their flat names
    model = "toy"
    steps = 300
    [analyze]                   # optional: every run is analyzed where it ran
    projections = ["pca"]

Every row is one seed's run folder. Its name is made from its grid values and a short hash
of every option it runs with, so rerunning a spec finds its folders again, and a spec whose
options changed makes new folders instead of mistaking old runs for its own.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import unicodedata
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from clipxai.errors import ClipxaiError
from clipxai.runs.reader import slugify

TOP_KEYS = ("name", "retries", "max_batch", "grid", "ascend", "analyze", "resources")
RESOURCE_KEYS = ("num_cpus", "num_gpus")
# Options the sweep itself decides for every run.
RESERVED = {"out": "the sweep puts every run under its own folder (clipxai sweep --out)",
            "name": "the sweep names every run folder",
            "resume": "rerunning the sweep resumes its interrupted runs",
            "quiet": "runs in a sweep are always quiet",
            "expand": "expand prompts before the sweep and list them in [grid]",
            "model_obj": "a sweep loads its models by name", "callbacks": "a sweep takes no callbacks"}


@dataclass
class SweepSpec:
    """A parsed spec: what to run (grid x fixed options), how to analyze, how hard to retry."""

    name: str
    grid: dict[str, list]
    ascend: dict[str, Any]
    analyze: dict[str, Any] | None = None
    retries: int = 1                  # a failed run is started again this many times (across reruns)
    max_batch: int = 8                # most seeds batched in one run
    resources: dict[str, float] = field(default_factory=lambda: {"num_cpus": 1, "num_gpus": 0})
    source: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "grid": self.grid, "ascend": self.ascend, "analyze": self.analyze,
                "retries": self.retries, "max_batch": self.max_batch, "resources": self.resources}


@dataclass
class Row:
    """One run folder of the sweep: its grid values and everything ``ascend`` gets."""

    index: int
    values: dict[str, Any]            # this row's grid values, in grid order
    prompt: str
    seed: int
    options: dict[str, Any]           # every other ascend option (fixed and grid), by flat name
    base: str                         # the folder name without "-seed<S>"; rows sharing it batch together

    @property
    def folder(self) -> str:
        return f"{self.base}-seed{self.seed}"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _hint(key: str, known) -> str:
    match = get_close_matches(key, list(known), 1)
    return f" (did you mean {match[0]}?)" if match else ""


def read_toml(path: Path) -> dict:
    try:
        import tomllib  # noqa: PLC0415
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib  # noqa: PLC0415
        except ModuleNotFoundError as err:
            raise ClipxaiError("Reading a sweep spec on Python 3.10 needs the tomli package "
                               "(pip install 'clipxai[sweep]').") from err
    if not path.is_file():
        raise ClipxaiError(f"The sweep spec {path} does not exist." if not path.exists()
                           else f"The sweep spec {path} is not a file.")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ClipxaiError(f"{path} is not valid TOML ({err}).") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ClipxaiError(f"The sweep spec {path} cannot be read ({err}).") from err


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check the shape of a spec file (the options themselves are checked by ``validate``)."""
    path = Path(path).expanduser()
    return parse_spec(read_toml(path), source=str(path))


def _table(data: dict, key: str, where: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ClipxaiError(f"{where}: [{key}] must be a table of options (got {type(value).__name__}).")
    return dict(value)


MAX_ROWS = 10_000     # runs a grid may make unless --max-rows says more


def _whole(value: Any, what: str, where: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ClipxaiError(f"{where}: {what} must be a whole number of at least {least} (got {value!r}).")
    return value


def parse_spec(data: dict, source: str = "spec") -> SweepSpec:
    where = source
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        raise ClipxaiError(f"{where}: unknown key '{unknown[0]}'{_hint(unknown[0], TOP_KEYS)}; "
                           f"a spec has {', '.join(TOP_KEYS)}.")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ClipxaiError(f"{where}: the spec needs a name (name = \"my-sweep\"), used as its folder's name.")
    name = name.strip()
    if ("/" in name or "\\" in name or name.startswith(".")
            or any(unicodedata.category(c) == "Cc" for c in name)):
        raise ClipxaiError(f"{where}: name must be a plain folder name, without control characters "
                           f"(got {name!r}).")
    grid = _table(data, "grid", where)
    fixed = _table(data, "ascend", where)
    analyze = _table(data, "analyze", where) if "analyze" in data else None
    resources = {"num_cpus": 1, "num_gpus": 0, **_table(data, "resources", where)}
    for key, value in resources.items():
        if key not in RESOURCE_KEYS:
            raise ClipxaiError(f"{where}: [resources] has no '{key}'{_hint(key, RESOURCE_KEYS)}; "
                               f"it takes {', '.join(RESOURCE_KEYS)}.")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ClipxaiError(f"{where}: [resources] {key} must be a number of at least 0 (got {value!r}).")
    retries = _whole(data.get("retries", 1), "retries", where, 0)
    max_batch = _whole(data.get("max_batch", 8), "max_batch", where, 1)

    for table, options in (("grid", grid), ("ascend", fixed)):
        for key in options:
            if key in RESERVED:
                raise ClipxaiError(f"{where}: [{table}] cannot set '{key}': {RESERVED[key]}.")
    if "seeds" in grid:
        raise ClipxaiError(f"{where}: [grid] cannot set 'seeds'; list the seeds instead (seed = [0, 1, 2, 3]).")
    for key in grid:
        if key in fixed:
            raise ClipxaiError(f"{where}: '{key}' is in both [grid] and [ascend]; keep one.")
    for key, values in grid.items():
        if not isinstance(values, list):
            raise ClipxaiError(f"{where}: [grid] {key} must be a list of values (got {values!r}); "
                               f"put a single value in [ascend].")
        if not values:
            raise ClipxaiError(f"{where}: [grid] {key} is an empty list, so the grid has no runs.")
        seen = set()
        for v in values:
            c = canonical(v)
            if c in seen:
                raise ClipxaiError(f"{where}: [grid] {key} lists {v!r} twice.")
            seen.add(c)
    if "seeds" in fixed:  # `seeds = K` in [ascend]: the seeds seed .. seed+K-1, as ascend --seeds means
        k = _whole(fixed.pop("seeds"), "[ascend] seeds", where, 1)
        if "seed" in grid:
            raise ClipxaiError(f"{where}: give either seeds in [ascend] or a seed list in [grid], not both.")
        start = fixed.pop("seed", 0)
        start = _whole(start, "[ascend] seed", where, 0)
        grid["seed"] = list(range(start, start + k))
    seeds = grid.get("seed", [fixed.get("seed", 0)])
    for s in seeds:
        _whole(s, "every seed", where, 0)
    if "prompt" not in grid and "prompt" not in fixed:
        raise ClipxaiError(f"{where}: the spec needs a prompt: prompt = [\"...\"] in [grid] "
                           f"or prompt = \"...\" in [ascend].")
    for p in grid.get("prompt", [fixed.get("prompt")]):
        if not isinstance(p, str):
            raise ClipxaiError(f"{where}: every prompt must be a string (got {p!r}).")
    return SweepSpec(name=name, grid=grid, ascend=fixed, analyze=analyze, retries=retries, max_batch=max_batch,
                     resources=resources, source=source)


def _token(key: str, value: Any) -> str:
    """A short, file-name-safe piece of a folder name for one grid value."""
    if isinstance(value, bool):
        text = "on" if value else "off"
    elif isinstance(value, (int, float)):
        text = format(value, "g")
    elif isinstance(value, str):
        text = slugify(value, 24)
    else:
        text = slugify(canonical(value), 24) if value else "none"
    return text if key == "prompt" else f"{key}-{text}"


def expand(spec: SweepSpec, max_rows: int | None = None) -> list[Row]:
    """The grid crossed, in the order its keys and values are written; one row per seed.

    A grid of more than ``max_rows`` rows (default ``MAX_ROWS``) is refused before one is made:
    a few lists of a thousand values each would take minutes and all memory to expand.
    """
    limit = MAX_ROWS if max_rows is None else max_rows
    size = math.prod(len(v) for v in spec.grid.values())
    if size > limit:
        raise ClipxaiError(f"{spec.source}: the grid makes {size:,} runs, more than the {limit:,} a sweep runs "
                           f"unless --max-rows says more.")
    keys = list(spec.grid)
    rows = []
    for index, combo in enumerate(itertools.product(*(spec.grid[k] for k in keys))):
        values = dict(zip(keys, combo))
        merged = {**spec.ascend, **values}
        prompt = merged.pop("prompt")
        seed = merged.pop("seed", 0)
        identity = canonical({"prompt": prompt, **merged})
        digest = hashlib.sha1(identity.encode("utf-8")).hexdigest()[:8]
        readable = "_".join(_token(k, v) for k, v in values.items() if k != "seed")[:72].strip("_-")
        base = f"{readable or slugify(spec.name, 40)}-{digest}"
        rows.append(Row(index=index, values=values, prompt=prompt, seed=seed, options=merged, base=base))
    return rows
