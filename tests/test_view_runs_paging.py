"""The viewer's runs list at scale: a first page of the newest runs, and rows kept only while their files stay."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from clipxai.view import create_app


def write_manifest(folder: Path, prompt: str, created: str, status: str = "complete") -> None:
    """A run folder holding only its run.json (no arrays: the list reads nothing else)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {"format_version": 1, "status": status, "prompt": prompt, "created": created, "steps_done": 3,
                "steps_total": 3, "n_snapshots": 0, "arrays": {}, "model": {"name": "random:tiny"}}
    tmp = folder / "run.json.tmp"
    tmp.write_text(json.dumps(manifest), encoding="utf-8")
    os.replace(tmp, folder / "run.json")     # as the run writer replaces it: a new file


@pytest.fixture()
def served(tmp_path):
    for i in range(5):   # folder names in the reverse order of their creation times
        write_manifest(tmp_path / f"run-{4 - i}", f"prompt {i}", f"2026-01-0{i + 1}T00:00:00+00:00")
    return tmp_path, TestClient(create_app(tmp_path, hosts=("testserver",)))


def test_a_page_is_the_newest_runs_and_says_how_many_there_are(served):
    _, client = served
    everything = client.get("/api/runs").json()
    assert everything["total"] == 5 and [r["id"] for r in everything["runs"]] == [f"run-{i}" for i in range(5)]
    page = client.get("/api/runs?limit=2").json()
    assert page["total"] == 5 and [r["prompt"] for r in page["runs"]] == ["prompt 4", "prompt 3"]
    rest = client.get("/api/runs?limit=10&offset=2").json()
    assert [r["prompt"] for r in rest["runs"]] == ["prompt 2", "prompt 1", "prompt 0"]
    assert client.get("/api/runs?limit=0").json()["runs"] == []
    for bad in ("limit=x", "limit=-1", "limit=2&offset=-3"):
        response = client.get(f"/api/runs?{bad}")
        assert response.status_code == 400 and "limit and offset" in response.json()["error"]


def test_a_listed_row_follows_its_run_json_and_a_removed_run_leaves_the_list(served):
    root, client = served
    os.utime(root, (1e9, 1e9))     # the folder unchanged for long: the viewer trusts its last walk of it
    for _ in range(2):
        assert {r["id"]: r["status"] for r in client.get("/api/runs").json()["runs"]}["run-0"] == "complete"
    write_manifest(root / "run-0", "a new prompt", "2026-02-01T00:00:00+00:00", status="failed")
    (root / "run-1" / "run.json").write_text("{cut", encoding="utf-8")
    shutil.rmtree(root / "run-2")
    write_manifest(root / "run-9", "a fresh run", "2026-03-01T00:00:00+00:00")
    rows = {r["id"]: r for r in client.get("/api/runs").json()["runs"]}
    assert set(rows) == {"run-0", "run-1", "run-3", "run-4", "run-9"}
    assert rows["run-0"]["prompt"] == "a new prompt" and rows["run-0"]["status"] == "failed"
    assert rows["run-1"]["status"] == "corrupt" and rows["run-1"]["problem"]
    assert client.get("/api/runs?limit=1").json()["runs"][0]["id"] == "run-9"


def test_the_first_page_is_sorted_again_as_soon_as_one_row_changes(served):
    root, client = served
    os.utime(root, (1e9, 1e9))
    first = [r["id"] for r in client.get("/api/runs?limit=5").json()["runs"]]
    assert first == [r["id"] for r in client.get("/api/runs?limit=5").json()["runs"]] == [f"run-{i}" for i in range(5)]
    write_manifest(root / "run-4", "now the newest", "2026-04-01T00:00:00+00:00")   # the oldest becomes the newest
    page = client.get("/api/runs?limit=2").json()["runs"]
    assert [r["id"] for r in page] == ["run-4", "run-0"] and page[0]["prompt"] == "now the newest"
