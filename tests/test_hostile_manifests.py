"""Corrupt manifests given to analyze, ascend --resume, load_run and the viewer's run endpoints.

Each corrupt run.json is one sentence naming the file, exit 2 from the CLI and a ClipxaiError
from the Python API, and the run folder byte-identical afterwards; the viewer answers a 4xx
with a one-sentence JSON error for it and for damaged arrays, never a 500.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers_runs import write_run
from test_hostile import FAST, digest, one_sentence, toy_run, work_elsewhere

import clipxai
from clipxai.cli.commands import main


def _without(manifest: dict, key: str) -> str:
    return json.dumps({k: v for k, v in manifest.items() if k != key})


def _replace_count(text: str, key: str, manifest: dict, new: str) -> str:
    old = f'"{key}": {manifest[key]}'
    assert old in text
    return text.replace(old, f'"{key}": {new}')


CORRUPT = {   # how -> (run.json text made from the manifest and its JSON, words the sentence must hold)
    "nested": (lambda m, t: "[" * 100_000, ["nested too deeply"]),
    "nested-in-object": (lambda m, t: '{"format_version": 2, "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
                         ["nested too deeply"]),
    "n_snapshots-word": (lambda m, t: json.dumps({**m, "n_snapshots": "x"}), ["n_snapshots", "'x'"]),
    "nan-literal": (lambda m, t: _replace_count(t, "n_snapshots", m, "NaN"), ["n_snapshots", "NaN"]),
    "truncated": (lambda m, t: t[: len(t) // 2], ["corrupt"]),
    "list": (lambda m, t: json.dumps([m]), ["not a clipxai manifest"]),
    "no-arrays": (lambda m, t: _without(m, "arrays"), ["has no arrays"]),
    "no-n_snapshots": (lambda m, t: _without(m, "n_snapshots"), ["has no n_snapshots"]),
    "no-steps_done": (lambda m, t: _without(m, "steps_done"), ["has no steps_done"]),
    "no-status": (lambda m, t: _without(m, "status"), ["has no status"]),
    "steps_done-past-the-arrays": (lambda m, t: json.dumps({**m, "steps_done": 10**6}),
                                   ["steps_done (1000000)", "steps_total"]),
    "long-number": (lambda m, t: _replace_count(t, "steps_done", m, "1" + "0" * 5000), ["number too long"]),
}


def corrupt(run: Path, how: str) -> list[str]:
    """Replace run.json by its corrupt form; the words its refusal must name (the file among them)."""
    manifest = json.loads((run / "run.json").read_text(encoding="utf-8"))
    make, words = CORRUPT[how]
    (run / "run.json").write_text(make(manifest, json.dumps(manifest)), encoding="utf-8")
    return [f"{run}/run.json", *words]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """One resumable toy run (4 steps), copied for each case instead of ascended again."""
    import _pytest.monkeypatch

    base = tmp_path_factory.mktemp("manifests")
    patch = _pytest.monkeypatch.MonkeyPatch()
    try:
        work, _ = work_elsewhere(base, patch)
        with pytest.warns(UserWarning):   # 2 snapshots: too few to analyse, enough to resume
            toy_run("base")
    finally:
        patch.undo()
    return work / "runs" / "base"


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch):
    return work_elsewhere(tmp_path, monkeypatch)


@pytest.mark.parametrize("how", CORRUPT)
def test_a_corrupt_manifest_is_one_sentence_from_resume_and_changes_nothing(recorded, elsewhere, capsys, how):
    work, _ = elsewhere
    shutil.copytree(recorded, work / "runs" / "x")
    words = corrupt(Path("runs/x"), how)
    before = digest(work)
    assert main(["ascend", "--resume", "runs/x", "--steps", "6", "--quiet"]) == 2
    message = one_sentence(capsys)
    assert all(w in message for w in words), message
    with pytest.raises(clipxai.ClipxaiError) as info:
        clipxai.ascend(resume="runs/x", steps=6, quiet=True)
    assert all(w in str(info.value) for w in words), info.value
    assert digest(work) == before


@pytest.mark.parametrize("how", CORRUPT)
def test_a_corrupt_manifest_is_one_sentence_from_analyze_and_load_run(elsewhere, capsys, how):
    work, _ = elsewhere
    write_run(Path("runs"), "x", n=30)
    if how == "steps_done-past-the-arrays":   # synthetic runs name no total; a recorded one always does
        manifest = json.loads(Path("runs/x/run.json").read_text(encoding="utf-8"))
        Path("runs/x/run.json").write_text(json.dumps({**manifest, "steps_total": 300}), encoding="utf-8")
    words = corrupt(Path("runs/x"), how)
    before = digest(work)
    assert main(["analyze", "runs/x", *FAST]) == 2
    message = one_sentence(capsys)
    assert all(w in message for w in words), message
    for call in (lambda: clipxai.load_run("runs/x"), lambda: clipxai.analyze("runs/x", labels=False)):
        with pytest.raises(clipxai.ClipxaiError) as info:
            call()
        assert all(w in str(info.value) for w in words), info.value
    assert digest(work) == before


def test_rows_that_disagree_with_the_steps_done_are_refused_by_resume(recorded, elsewhere, capsys):
    """n_snapshots is always written with steps_done: a manifest where they disagree is not the run's own."""
    work, _ = elsewhere
    shutil.copytree(recorded, work / "runs" / "x")
    manifest = json.loads(Path("runs/x/run.json").read_text(encoding="utf-8"))
    Path("runs/x/run.json").write_text(json.dumps({**manifest, "n_snapshots": 1}), encoding="utf-8")
    before = digest(work)
    assert main(["ascend", "--resume", "runs/x", "--steps", "6", "--quiet"]) == 2
    message = one_sentence(capsys)
    assert "runs/x/run.json" in message and "n_snapshots is 1" in message and "nothing was changed" in message
    assert digest(work) == before


# ---------------------------------------------------------------------------------------
# the viewer: one damaged run among good ones is a 4xx with one sentence on every endpoint that takes a run

def _damage(run: Path, how: str) -> None:
    snaps = run / "snapshots"
    if how == "truncated-images":
        data = (snaps / "images.npy").read_bytes()
        (snaps / "images.npy").write_bytes(data[: len(data) // 2])
    elif how == "float64-images":
        np.save(snaps / "images.npy", np.load(snaps / "images.npy").astype(np.float64))
    elif how == "text-images":
        np.save(snaps / "images.npy", np.array(["a"] * 20))
    elif how == "truncated-embeddings":
        data = (snaps / "embeddings.npy").read_bytes()
        (snaps / "embeddings.npy").write_bytes(data[: len(data) // 2])
    elif how == "float64-embeddings":
        np.save(snaps / "embeddings.npy", np.load(snaps / "embeddings.npy").astype(np.float64))
    elif how == "not-npy-steps":
        (snaps / "steps.npy").write_bytes(b"not an array")
    else:
        corrupt(run, how)


DAMAGED_ARRAYS = ("truncated-images", "float64-images", "text-images", "truncated-embeddings", "float64-embeddings",
                  "not-npy-steps")
ENDPOINTS = (("/api/run", {}), ("/api/frame", {"i": "0"}), ("/api/frame", {"i": "-1", "size": "64"}),
             ("/api/projection", {}))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from starlette.testclient import TestClient

    from clipxai.view.app import create_app

    root = tmp_path_factory.mktemp("served") / "runs"
    write_run(root, "good", n=20)
    for how in (*CORRUPT, *DAMAGED_ARRAYS):
        _damage(write_run(root, how, n=20), how)
    return root, TestClient(create_app(root, hosts=("testserver",)), raise_server_exceptions=False)


@pytest.mark.parametrize("how", [*CORRUPT, *DAMAGED_ARRAYS])
def test_every_viewer_endpoint_answers_a_damaged_run_with_one_sentence(served, how):
    root, client = served
    before = digest(root)
    for url, params in ENDPOINTS:
        reply = client.get(url, params={"id": how, **params})
        assert reply.status_code < 500, (url, reply.status_code, reply.text[:300])
        assert "Traceback" not in reply.text
        if reply.status_code >= 400:
            error = reply.json()["error"]
            assert error.endswith(".") and "\n" not in error and error.count(". ") == 0, error
            if how in CORRUPT:   # a corrupt manifest: the run's own sentence, naming its run.json
                assert reply.status_code == 409 and f"{root / how}/run.json" in error, error
            else:                # a damaged array: 409 with the sentence naming the array's file
                damaged = "images" if "images" in how else "embeddings" if "embeddings" in how else "steps"
                assert reply.status_code == 409 and f"{damaged}.npy" in error, (url, error)
        elif url == "/api/frame":
            assert reply.headers["content-type"] == "image/png" and not how.endswith("-images")
    assert client.get("/api/run", params={"id": "good"}).status_code == 200
    assert client.get("/api/frame", params={"id": "good", "i": "0"}).status_code == 200
    assert len(client.get("/api/projection", params={"id": "good"}).json()["x"]) == 20
    assert digest(root) == before


# ---------------------------------------------------------------------------------------
# class 10: every keyword of clipxai.ascend given a value of the wrong kind names itself, before any folder

def _dict_typed() -> set[str]:
    from clipxai.ascent import config
    from clipxai.ascent.kinds import _field_types

    declared = _field_types(config)
    return {name for name, where in config.FLAT.items()
            if where in declared and "dict" in str(declared[where])}


def _every_keyword() -> list[str]:
    import inspect

    from clipxai.ascent.config import FLAT
    from clipxai.ascent.run import ascend

    named = [p.name for p in inspect.signature(ascend).parameters.values() if p.kind is p.KEYWORD_ONLY]
    return sorted((set(FLAT) | set(named)) - {"prompt"} - _dict_typed() - {"expand"})


WRONG_KINDS = [
    ("callbacks", "not callbacks"), ("callbacks", [object()]), ("callbacks", 3), ("model_obj", "toy"),
    ("model_obj", [1]), ("expand", "yes"), ("expand", {"n": 2, "colour": "red"}), ("expand", {"n": True}),
    ("quiet", "no"), ("out", ["runs"]), ("out", True), ("resume", 5), ("display_every", True),
    ("weight_decay", 10**400), ("jitter", 10**400), ("aug_noise", 10**400), ("lr", 10**400),
    ("lr_final", float("nan")), ("plateau_factor", float("nan")), ("plateau_patience", 0),
    ("steps", "10"), ("seeds", True), ("name", ["a"]), ("cutouts", float("nan")),
]


@pytest.mark.parametrize("keyword, value", [*WRONG_KINDS, *((k, {"a": 1}) for k in _every_keyword())],
                         ids=lambda v: v if isinstance(v, str) else type(v).__name__)
def test_every_ascend_keyword_of_the_wrong_kind_is_refused_naming_it(elsewhere, keyword, value):
    work, _ = elsewhere
    before = digest(work)
    options = {"model": "toy", "steps": 2, "size": (16, 16), "out": "runs", "quiet": True, keyword: value}
    with pytest.raises(clipxai.ClipxaiError) as info:
        clipxai.ascend("dog", **options)
    message = str(info.value)
    assert keyword in message or keyword.replace("_", "-") in message, message
    assert message.endswith(".") and "\n" not in message
    assert digest(work) == before and not list((work / "runs").iterdir())


# ---------------------------------------------------------------------------------------
# class 7: text an LLM wrote reaches run.json without control characters

@pytest.fixture()
def llm(monkeypatch):
    pytest.importorskip("openai")
    from test_expand import FakeLLM

    from clipxai.ascent import expand

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(expand, "RETRY_BACKOFF", 0.01)
    server = FakeLLM()
    yield server
    server.close()


HOSTILE = ("\x1b[2J\x1b]0;pwned\x07A red\x07 heart\x00 on\u202e a wall\u202c, \x9b31m\u2066glowing\u2069",
           "Two\x00 gold\x1b[5m rings\x07\u202e")
CONTROLS = ("\x1b", "\x07", "\x00", "\u202e", "\u202c", "\x9b", "\u2066", "\u2069")


def test_the_manifest_of_an_expanded_ascent_holds_no_control_character_of_the_llm(llm, tmp_path, monkeypatch, capsys):
    from test_expand import completion

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
    llm.script = [completion(text) for text in HOSTILE]
    code = main(["ascend", "❤️", "--expand", "2", "--llm-base-url", llm.url, "--model", "random:tiny", "--steps", "2",
                 "--out", str(tmp_path), "--name", "x", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    raw = (tmp_path / "x" / "run.json").read_text(encoding="utf-8")
    manifest = json.loads(raw)
    texts = [p["text"] for p in manifest["prompts"]]
    assert texts == ["A red heart on a wall, glowing", "Two gold rings"], texts
    assert manifest["expansion"]["expansions"] == texts
    decoded = json.dumps(manifest, ensure_ascii=False)   # escapes such as \u001b count as well as raw bytes
    for c in CONTROLS:
        assert c not in raw and c not in decoded and c not in out + err, repr(c)
    assert "\\u001b" not in raw and "\\u0000" not in raw and "\\u202e" not in raw.lower()
