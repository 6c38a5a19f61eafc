"""The rows `clipxai runs` keeps between listings (clipxai.runs.rowcache): a cached listing shows exactly
what reading every file shows, a changed, replaced, damaged or newly analysed run is read again, a row
whose files changed within the racy window is never kept, and a cache that cannot be written or read
changes nothing but the time."""

import json
import os
import time

import pytest

from clipxai.cli.commands import main
from clipxai.cli.runlist import list_runs
from clipxai.runs import rowcache
from clipxai.runs.summary import SCHEMA


def _manifest(prompt: str, **extra) -> dict:
    return {"format_version": 1, "status": "complete", "prompt": prompt, "n_snapshots": 5, "steps_done": 10,
            "steps_total": 10, "arrays": {}, "created": "2026-01-01T00:00:00+00:00", **extra}


def _age(path, seconds: float = 30) -> None:
    """Date a file ``seconds`` back, as a run finished a while ago would be (rows newer than the racy window
    are never kept)."""
    then = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(then, then))


def _write(path, text: str, age: bool = True, replace: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if replace:   # as clipxai writes: a new file renamed into place
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    else:
        with open(path, "r+" if path.exists() else "w", encoding="utf-8") as f:
            f.write(text)
            f.truncate()
    if age:
        _age(path)


def _runs(root, n: int = 4):
    for i in range(n):
        _write(root / f"run-{i}" / "run.json", json.dumps(_manifest(f"prompt {i}")))
    _write(root / "run-1" / "analysis" / "summary.json", json.dumps({"schema": SCHEMA, "verdict": "settled",
                                                                     "n_states": 1}))


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLIPXAI_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "runs"


def _rows(root, cache: bool = True) -> list[dict]:
    return [row for row, _ in list_runs(root, time.time(), root, cache=cache)]


def test_a_cached_listing_shows_what_reading_every_file_shows(tmp_path, private_cache):
    root = tmp_path / "runs"
    _runs(root)
    (root / "broken").mkdir()
    _write(root / "broken" / "run.json", "{not json")
    first = _rows(root)
    assert list(private_cache.glob("*.json")), "the first listing keeps its rows"
    again = _rows(root)
    assert again == first == _rows(root, cache=False)
    broken = next(r for r in again if r["name"] == "broken")
    assert broken["status"] == "corrupt" and "not JSON" in broken["problem"]
    assert next(r for r in again if r["name"] == "run-1")["verdict"] == "settled"


@pytest.mark.parametrize("replace", [True, False], ids=["renamed-into-place", "rewritten-in-place"])
def test_a_changed_run_json_is_read_again_even_at_the_same_size_and_time(tmp_path, replace):
    root = tmp_path / "runs"
    _runs(root)
    run_json = root / "run-2" / "run.json"
    _rows(root)
    before = run_json.stat()
    _write(run_json, json.dumps(_manifest("prompt X")), age=False, replace=replace)   # as long as "prompt 2"
    if replace:   # renamed into place at the very same time: the new inode tells
        os.utime(run_json, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert run_json.stat().st_size == before.st_size
    assert next(r for r in _rows(root) if r["name"] == "run-2")["prompt"] == "prompt X"


def test_a_row_read_within_the_racy_window_is_never_kept(tmp_path, private_cache):
    root = tmp_path / "runs"
    _runs(root, n=1)
    run_json = root / "run-0" / "run.json"
    _write(run_json, json.dumps(_manifest("prompt 0")), age=False)   # written just now
    _rows(root)
    stamp = run_json.stat()
    _write(run_json, json.dumps(_manifest("prompt Z")), age=False, replace=False)  # same tick, size, inode
    os.utime(run_json, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert _rows(root)[0]["prompt"] == "prompt Z"


def test_a_run_damaged_or_analysed_after_it_was_cached_is_shown_as_it_is_now(tmp_path, capsys):
    root = tmp_path / "runs"
    _runs(root)
    _rows(root)
    _write(root / "run-3" / "run.json", json.dumps(_manifest("prompt 3", format_version=99)))
    _write(root / "run-0" / "analysis" / "summary.json", json.dumps({"schema": SCHEMA, "verdict": "wandering",
                                                                     "n_states": 3}))
    (root / "run-1" / "analysis" / "summary.json").unlink()
    rows = {r["name"]: r for r in _rows(root)}
    assert rows["run-3"]["status"] == "corrupt" and "run format 99" in rows["run-3"]["problem"]
    assert rows["run-0"]["verdict"] and rows["run-0"]["verdict"] != rows["run-1"]["verdict"] == ""
    assert main(["runs", str(root)]) == 0
    out, err = capsys.readouterr()
    assert "corrupt" in out and "run format 99" in err


def test_rows_made_by_other_code_are_not_used(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    _runs(root, n=2)
    _rows(root)
    seen = []
    real = rowcache.RowCache.get
    monkeypatch.setattr(rowcache.RowCache, "get", lambda self, key, stamps: seen.append(real(self, key, stamps)))
    _rows(root)
    assert seen and all(row is not None for row in seen)
    seen.clear()
    monkeypatch.setattr(rowcache, "CACHE_FORMAT", rowcache.CACHE_FORMAT + 1)   # as a new clipxai would
    _rows(root)
    assert seen == [None, None]


def test_a_cache_that_cannot_be_written_or_read_changes_nothing(tmp_path, monkeypatch, private_cache):
    root = tmp_path / "runs"
    _runs(root)
    expected = _rows(root, cache=False)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("CLIPXAI_CACHE", str(blocker))
    assert _rows(root) == expected
    monkeypatch.setenv("CLIPXAI_CACHE", str(tmp_path / "cache"))
    _rows(root)
    for file in private_cache.glob("*.json"):
        file.write_text('{"folder": 1, "rows": [', encoding="utf-8")
    assert _rows(root) == expected


def test_the_cache_keeps_at_most_max_files_folders(tmp_path, monkeypatch, private_cache):
    monkeypatch.setattr(rowcache, "MAX_FILES", 3)
    for i in range(5):
        _runs(tmp_path / f"folder-{i}", n=1)
        _rows(tmp_path / f"folder-{i}")
        time.sleep(0.01)
    assert len(list(private_cache.glob("*.json"))) == 3
