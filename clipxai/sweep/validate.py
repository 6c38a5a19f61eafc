"""Check a whole sweep before anything runs, with the checks ``ascend`` itself makes.

Every distinct set of options goes through ``clipxai.ascent.config.resolve_config``; every prompt,
term and image prompt through the parser ``ascend`` uses; every model name is checked
against what ``load_clip`` accepts (without loading it); ``[analyze]`` against
``AnalyzeOptions``. The first problem is one ``ClipxaiError`` sentence, so a typo in a
1000-prompt spec costs a second, not a cluster's night.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from clipxai.errors import ClipxaiError
from clipxai.sweep.spec import Row, SweepSpec, canonical

LIST_OPTIONS = ("terms", "losses", "image_prompts")
MODEL_FILE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")


def _check_model(name) -> None:
    """The model names ``load_clip`` accepts, without loading anything: known names, existing
    paths, and the prefixed forms (``openclip:``, ``hf:``, ...), which check their own names when
    they load; ``random:ARCH`` must name an architecture."""
    from clipxai.models.load import list_models  # noqa: PLC0415
    from clipxai.models.openai import ARCHITECTURES  # noqa: PLC0415
    from clipxai.models.registry import list_forms  # noqa: PLC0415

    if not isinstance(name, str) or not name.strip():
        raise ClipxaiError(f"The model name {name!r} is not a name.")
    if name in list_models() or Path(name).expanduser().exists():
        return
    prefixes = sorted((form.prefix for form in list_forms()), key=len, reverse=True)
    prefix = next((p for p in prefixes if name.startswith(p)), None)
    if prefix == "random:":
        raise ClipxaiError(f"'{name}' names no architecture; choose one of "
                           f"{', '.join('random:' + a for a in ARCHITECTURES)}.")
    if prefix:
        return
    if name.startswith(("/", "./", "../", "~")) or Path(name).suffix in MODEL_FILE_SUFFIXES:  # as load_clip tells
        raise ClipxaiError(f"The model file {name} does not exist.")
    raise ClipxaiError(f"'{name}' is neither a known model nor an existing file (`clipxai models` lists the names).")


def analyze_options(options: dict):
    """``[analyze]`` as ``AnalyzeOptions`` (unknown names and malformed thresholds are one sentence)."""
    from clipxai.analysis.analyze import AnalyzeOptions  # noqa: PLC0415
    from clipxai.analysis.motion.verdict import Thresholds  # noqa: PLC0415

    fields = {f.name for f in dataclasses.fields(AnalyzeOptions)}
    values = dict(options)
    for key in values:
        if key not in fields:
            from difflib import get_close_matches  # noqa: PLC0415
            match = get_close_matches(key, sorted(fields), 1)
            raise ClipxaiError(f"[analyze] has no option '{key}'{f' (did you mean {match[0]}?)' if match else ''}.")
    if "projections" in values:
        p = values["projections"]
        if not isinstance(p, list) or not all(isinstance(x, str) for x in p):
            raise ClipxaiError(f"[analyze] projections must be a list of names (got {p!r}).")
        values["projections"] = tuple(p)
    if "thresholds" in values:
        t = values["thresholds"]
        names = {f.name for f in dataclasses.fields(Thresholds)}
        if not isinstance(t, dict) or set(t) - names:
            raise ClipxaiError(f"[analyze] thresholds must be a table of {', '.join(sorted(names))}.")
        values["thresholds"] = Thresholds(**t)
    if "concepts" in values and not (isinstance(values["concepts"], list)
                                     and all(isinstance(c, str) for c in values["concepts"])):
        raise ClipxaiError("[analyze] concepts must be a list of words.")
    try:
        return AnalyzeOptions(**values)
    except TypeError as err:
        raise ClipxaiError(f"[analyze] is malformed ({err}).") from err


def _check_lists(options: dict) -> None:
    for key in LIST_OPTIONS:
        value = options.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ClipxaiError(f"'{key}' must be a list of strings (got {value!r}).")


def _check_terms(options: dict, seen: set) -> None:
    from clipxai.prompts import parse_image_prompt  # noqa: PLC0415
    from clipxai.terms.load import load_term, parse_term_option  # noqa: PLC0415

    for option in (options.get("terms") or []) + (options.get("losses") or []):
        if option not in seen:
            seen.add(option)
            load_term(parse_term_option(option)[0])
    for image in options.get("image_prompts") or []:
        parse_image_prompt(image)


def _check_prompt(prompt: str, has_image_prompt: bool) -> None:
    from clipxai.prompts import parse_prompts  # noqa: PLC0415

    parts = parse_prompts(prompt)
    if not has_image_prompt and not any(p.weight > 0 for p in parts):
        raise ClipxaiError(f"The prompt '{prompt}' has no positive weight, so there is nothing to ascend toward.")


def validate(spec: SweepSpec, rows: list[Row]) -> dict:
    """Every distinct option set's resolved config (by ``canonical(row.options)``); ``ClipxaiError``
    (one sentence naming the spec) for the first problem of any row."""
    try:
        return _validate(spec, rows)
    except ClipxaiError as err:
        message = str(err)
        if spec.source and not message.startswith(spec.source):
            message = f"{spec.source}: {message}"
        raise ClipxaiError(message) from err


def _validate(spec: SweepSpec, rows: list[Row]) -> dict:
    from clipxai.ascent.config import model_specs, resolve_config  # noqa: PLC0415
    from clipxai.runs.reader import rows_for  # noqa: PLC0415

    opts = analyze_options(spec.analyze) if spec.analyze is not None else None
    configs: dict = {}
    prompts: set[tuple[str, bool]] = set()
    models: set[str] = set()
    terms: set[str] = set()
    for row in rows:
        key = canonical(row.options)
        if key not in configs:
            _check_lists(row.options)
            _check_terms(row.options, terms)
            try:
                cfg = configs[key] = resolve_config(row.prompt, {**row.options, "seed": row.seed})
            except (TypeError, ValueError, AttributeError) as err:  # a value of the wrong type
                raise ClipxaiError(f"the options of {row.folder} are malformed ({type(err).__name__}: {err}).") from err
            for name, _ in model_specs(cfg.model):
                if name not in models:
                    models.add(name)
                    _check_model(name)
            if opts is not None:
                from clipxai.analysis.analyze import MIN_SNAPSHOTS  # noqa: PLC0415
                n = rows_for(cfg.optim.steps, cfg.record.snapshot_every)
                if n < MIN_SNAPSHOTS:
                    raise ClipxaiError(f"[analyze] needs at least {MIN_SNAPSHOTS} snapshots per run, but steps = "
                                       f"{cfg.optim.steps} with snapshot_every = {cfg.record.snapshot_every} "
                                       f"records {n}.")
        prompt = (row.prompt, bool(row.options.get("image_prompts")))
        if prompt not in prompts:
            prompts.add(prompt)
            _check_prompt(*prompt)
    return configs
