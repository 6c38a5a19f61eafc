"""Hostile run folders and requests: nothing escapes a run, nothing is silently repaired, one bad file breaks no listing.

Every case runs from another working directory with the run typed as a relative path
(``runs/x``, the way a user types it), asserts the one sentence and the exit code, and
that the folders it must not touch are byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers_runs import write_run
from PIL import Image

import clipxai
from clipxai.cli.commands import main

FAST = ["--projection", "pca", "--no-labels", "--no-gif", "-q"]
SECRET = b"API_TOKEN=sk-live-do-not-leak-4242\n"


def digest(folder: Path) -> str:
    """One hash of every path under ``folder``: its name, kind, link target and bytes."""
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        h.update(p.relative_to(folder).as_posix().encode())
        if p.is_symlink():
            h.update(b"link:" + os.readlink(p).encode())
        elif p.is_file():
            h.update(p.read_bytes())
        else:
            h.update(b"dir")
    return h.hexdigest()


def one_sentence(capsys) -> str:
    """The one error line a refused command printed (and no traceback)."""
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in out + err and "unexpected" not in err, err
    return lines[0]


@pytest.fixture()
def elsewhere(tmp_path, monkeypatch):
    """A working directory holding runs/, and a folder outside it that nothing may touch."""
    return work_elsewhere(tmp_path, monkeypatch)


def work_elsewhere(tmp_path, monkeypatch):
    """``elsewhere``'s folders, made and entered (for the fixtures of tests/test_hostile_sizes.py too)."""
    work = tmp_path / "work"
    (work / "runs").mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "victim.txt").write_bytes(SECRET)
    monkeypatch.chdir(work)
    return work, outside


def toy_run(name="x", steps=4, **options):
    """A real, resumable run of the bundled toy CLIP under runs/, typed relatively."""
    [run] = clipxai.ascend("a red heart", model="toy", out="runs", name=name, steps=steps, snapshot_every=2,
                           cutouts=1, size=(16, 16), quiet=True, **options)
    return Path("runs") / name


# ---------------------------------------------------------------------------------------
# class 1: links out of a run, typed as a relative path

@pytest.mark.parametrize("link", ["analysis", "analysis/states.csv"])
def test_analyze_of_a_relative_run_does_not_write_through_a_link(elsewhere, capsys, link):
    work, outside = elsewhere
    run = write_run(Path("runs"), "x", n=40)
    (run / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside if link == "analysis" else outside / "victim.txt", run / link)
    before = digest(outside), digest(work)
    assert main(["analyze", "runs/x", *FAST]) == 2
    assert "outside" in one_sentence(capsys)
    assert (digest(outside), digest(work)) == before


def test_resume_of_a_relative_run_never_overwrites_what_final_png_links_to(elsewhere, capsys):
    work, outside = elsewhere
    run = toy_run()
    (run / "final.png").unlink()
    os.symlink(outside / "victim.txt", run / "final.png")
    before = digest(outside), digest(work)
    assert main(["ascend", "--resume", "runs/x", "--steps", "6", "--quiet"]) == 2
    assert "outside" in one_sentence(capsys)
    assert (digest(outside), digest(work)) == before


def test_an_original_script_folder_typed_relatively_reads_no_linked_pictures(elsewhere, capsys):
    from test_original_layout import write_legacy

    from clipxai.runs.load import load_run

    work, outside = elsewhere
    folder = write_legacy(Path("runs") / "old", steps=[0, 10, 20, 30], layers=(1,))
    private = outside / "images"
    private.mkdir()
    Image.fromarray(np.full((224, 224, 3), (12, 34, 56), np.uint8)).save(private / "image_40.png")
    os.symlink(private / "image_40.png", folder / "images" / "image_40.png")
    run = load_run("runs/old")
    assert run.steps.tolist() == [0, 10, 20, 30]
    assert any("image_40.png" in p and "outside" in p for p in run.problems)
    (folder / "images" / "image_40.png").unlink()
    (folder / "images").rename(outside / "old-images")
    os.symlink(outside / "old-images", folder / "images")
    run = load_run("runs/old")
    assert "images" not in run.array_names()
    assert any("images/" in p and "outside" in p for p in run.problems)


# ---------------------------------------------------------------------------------------
# class 6: one corrupt run.json is one corrupt row, never a broken listing

def _corrupt(run: Path, how: str) -> None:
    manifest = json.loads((run / "run.json").read_text(encoding="utf-8"))
    text = {
        "nested": '{"format_version": 2, "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "n_snapshots": json.dumps({**manifest, "n_snapshots": "x"}),
        "nan": json.dumps({**manifest, "steps_done": float("nan")}),
        "not-json": "{not json",
        "long-number": json.dumps({**manifest, "steps_done": 1}).replace('"steps_done": 1', '"steps_done": 1' + "0" * 5000),
    }[how]
    (run / "run.json").write_text(text, encoding="utf-8")


CORRUPTIONS = ("nested", "n_snapshots", "nan", "not-json", "long-number")


@pytest.fixture()
def listing(tmp_path):
    """A folder of runs: two good ones and one corrupt run of each kind."""
    root = tmp_path / "runs"
    for name in ("a-good", "z-good"):
        write_run(root, name, n=20)
    for how in CORRUPTIONS:
        _corrupt(write_run(root, how, n=20), how)
    return root


def test_runs_lists_the_good_runs_and_each_corrupt_one_with_its_reason(listing, capsys):
    before = digest(listing)
    assert main(["runs", str(listing)]) == 0
    out, err = capsys.readouterr()
    out += err
    for name in ("a-good", "z-good"):
        assert any(line.startswith(str(listing / name)) and "complete" in line for line in out.splitlines())
    reasons = {line.split(": ", 2)[1]: line.split(": ", 2)[2] for line in out.splitlines() if line.startswith("corrupt: ")}
    assert sorted(Path(p).name for p in reasons) == sorted(CORRUPTIONS)
    assert "nested too deeply" in reasons[str(listing / "nested")] and "'x'" in reasons[str(listing / "n_snapshots")]
    assert digest(listing) == before


def test_the_viewer_lists_the_good_runs_and_each_corrupt_one_with_its_reason(listing):
    from starlette.testclient import TestClient

    from clipxai.view.app import create_app

    client = TestClient(create_app(listing, hosts=("testserver",)))
    reply = client.get("/api/runs")
    assert reply.status_code == 200
    rows = {row["id"]: row for row in reply.json()["runs"]}
    assert rows["a-good"]["status"] == rows["z-good"]["status"] == "complete"
    for how in CORRUPTIONS:
        assert rows[how]["status"] == "corrupt" and "corrupt" in rows[how]["problem"], rows[how]
        reply = client.get("/api/run", params={"id": how})   # the run's own sentence, not "no such run"
        assert reply.status_code == 409 and reply.json()["error"] == rows[how]["problem"]
    assert "too long" in rows["long-number"]["problem"]


def test_the_atlas_tells_running_interrupted_failed_and_corrupt_apart(tmp_path):
    from clipxai.runs.writer import RunLock
    from clipxai.sweep.atlas import collect
    from clipxai.sweep.state import SCHEMA

    sweep = tmp_path / "sweep"
    statuses = {"busy": "running", "stopped": "interrupted", "killed": "running", "broke": "failed"}
    for name, status in statuses.items():
        run = write_run(sweep, name, n=20)
        manifest = json.loads((run / "run.json").read_text(encoding="utf-8"))
        manifest.update(status=status, error="boom" if status == "failed" else None,
                        stop_reason="SIGTERM" if name == "stopped" else None)
        (run / "run.json").write_text(json.dumps(manifest), encoding="utf-8")
    _corrupt(write_run(sweep, "damaged", n=20), "n_snapshots")
    rows = [{"folder": name, "prompt": "red", "seed": 0, "values": {}, "status": "complete"}
            for name in (*statuses, "damaged", "gone")]
    (sweep / "sweep.json").write_text(json.dumps({"schema": SCHEMA, "name": "s", "rows": rows}), encoding="utf-8")
    lock = RunLock(sweep / "busy").acquire()
    try:
        entries = {en.folder: en for en in collect(sweep).entries}
    finally:
        lock.release()
    assert {name: en.status for name, en in entries.items()} == {
        "busy": "running", "stopped": "interrupted", "killed": "interrupted", "broke": "failed",
        "damaged": "corrupt", "gone": "missing"}
    assert entries["stopped"].error == "SIGTERM" and entries["broke"].error == "boom"
    assert "killed" in entries["killed"].error and "n_snapshots" in entries["damaged"].error


# ---------------------------------------------------------------------------------------
# class 2: the viewer answers only its own names, only its own pages change state, bodies are bounded

@pytest.fixture()
def served(tmp_path):
    from starlette.testclient import TestClient

    from clipxai.view.app import create_app
    from clipxai.view.hosts import allowed_hosts

    root = tmp_path / "runs"
    write_run(root, "one", n=20)

    def client(bind="0.0.0.0", extra=()):
        app = create_app(root, hosts=allowed_hosts(bind, extra))
        return TestClient(app, base_url="http://localhost:8765"), app.state.token
    return root, client


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "127.0.0.2", "127.0.0.1"])
def test_the_host_check_holds_whatever_the_viewer_binds(served, bind):
    import socket

    root, client = served
    web, _ = client(bind)
    for evil in ("evil.com", "evil.com:8765", "127.0.0.1.evil.com", ""):
        reply = web.get("/", headers={"Host": evil})
        assert reply.status_code == 400 and "Host" in reply.text
    assert web.get("/api/runs", headers={"Host": "evil.com"}).status_code == 400
    for own in ("localhost:8765", "127.0.0.1:8765", "[::1]:8765", "LOCALHOST."):
        assert web.get("/", headers={"Host": own}).status_code == 200
    if bind == "127.0.0.2":
        assert web.get("/", headers={"Host": "127.0.0.2:8765"}).status_code == 200
    if bind in ("0.0.0.0", "::"):
        assert web.get("/", headers={"Host": socket.gethostname()}).status_code == 200


def test_allow_host_adds_one_name_and_no_other(served):
    _, client = served
    web, _ = client("0.0.0.0", ("runs.example.org",))
    assert web.get("/", headers={"Host": "runs.example.org"}).status_code == 200
    assert web.get("/", headers={"Host": "evil.example.org"}).status_code == 400


def test_view_command_binds_any_address_with_the_host_check_on(tmp_path, monkeypatch):
    import uvicorn

    import clipxai.view.app

    seen = {}
    real = clipxai.view.app.create_app

    def recording(*args, **options):   # the app as the command builds it, with the Host names it is given
        seen.update(options)
        return real(*args, **options)
    monkeypatch.setattr(clipxai.view.app, "create_app", recording)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    (tmp_path / "runs").mkdir()
    assert main(["view", str(tmp_path / "runs"), "--host", "0.0.0.0", "--port", "0", "--allow-host", "proxy.lan"]) == 0
    assert seen["hosts"] is not None and "proxy.lan" in seen["hosts"] and "evil.com" not in seen["hosts"]


def test_a_state_changing_request_from_another_origin_is_refused(served):
    root, client = served
    web, token = client("0.0.0.0")
    before = digest(root)
    body = {"prompt": "red", "model": "toy", "preset": "default", "steps": 2}
    for origin in ("http://evil.com", "null", "http://localhost:9999", "file://", "http://localhost:8765.evil.com"):
        for url, data in (("/api/start", body), ("/api/cancel", {"id": "one"})):
            reply = web.post(url, json=data, headers={"X-Clipxai-Token": token, "Origin": origin})
            assert reply.status_code == 403 and "Origin" in reply.json()["error"], (url, origin)
    assert digest(root) == before


def test_a_request_body_over_the_limit_is_413_and_never_read_whole(served):
    from clipxai.view.app import MAX_BODY

    root, client = served
    web, token = client("127.0.0.1")
    before = digest(root)
    headers = {"X-Clipxai-Token": token, "Origin": "http://localhost:8765", "Content-Type": "application/json"}
    big = b'{"prompt": "' + b"a" * (MAX_BODY + 10) + b'"}'
    assert web.post("/api/start", content=big, headers=headers).status_code == 413

    def chunks():   # no Content-Length: the stream itself is cut off at the limit
        for _ in range(64):
            yield b" " * 4096
    assert web.post("/api/cancel", content=chunks(), headers=headers).status_code == 413
    assert web.post("/api/cancel", json={"id": "nope"}, headers=headers).status_code == 404   # a small body still works
    assert digest(root) == before


def test_the_projection_of_very_wide_embeddings_stays_small(tmp_path):
    import tracemalloc

    from clipxai.view.frames import projection

    wide = np.lib.format.open_memmap(tmp_path / "e.npy", mode="w+", dtype=np.float32, shape=(300, 40_000))
    wide[:] = np.random.default_rng(0).standard_normal((300, 40_000), dtype=np.float32)
    tracemalloc.start()
    try:
        result = projection(wide)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(result["x"]) == 300 and np.isfinite(result["x"]).all()
    assert peak < 200 * 2**20, peak          # a width x width covariance would be 12.8 GB
    assert "not mapped" in projection(np.zeros((3, 2_000_000), np.float32))["error"]


# ---------------------------------------------------------------------------------------
# class 3: resume checks every array against the manifest and changes nothing when it refuses

def _damage(run: Path, how: str) -> None:
    snaps = run / "snapshots"
    if how == "half-images":
        data = (snaps / "images.npy").read_bytes()
        (snaps / "images.npy").write_bytes(data[: len(data) // 2])
    elif how == "short-embeddings":
        emb = np.load(snaps / "embeddings.npy")
        np.save(snaps / "embeddings.npy", emb[:-1])
    elif how == "float64-embeddings":
        np.save(snaps / "embeddings.npy", np.load(snaps / "embeddings.npy").astype(np.float64))
    elif how == "not-npy":
        (snaps / "latents.npy").write_bytes(b"not an array at all")
    elif how == "grown-steps":
        np.save(snaps / "steps.npy", np.zeros(40, np.int64))


@pytest.mark.parametrize("how, words", [("half-images", ["images.npy", "bytes", "damaged"]),
                                        ("short-embeddings", ["embeddings.npy", "shape"]),
                                        ("float64-embeddings", ["embeddings.npy", "float64", "float32"]),
                                        ("not-npy", ["latents.npy", "not a readable .npy"]),
                                        ("grown-steps", ["steps.npy", "shape"])])
def test_resume_refuses_a_damaged_array_and_changes_nothing(elsewhere, capsys, how, words):
    work, _ = elsewhere
    run = toy_run()
    _damage(run, how)
    before = digest(work)
    assert main(["ascend", "--resume", "runs/x", "--steps", "6", "--quiet"]) == 2
    message = one_sentence(capsys)
    assert all(w in message for w in words) and "nothing was changed" in message, message
    assert digest(work) == before


def test_a_resume_that_fails_before_writing_leaves_the_run_as_it_was(elsewhere, monkeypatch):
    from clipxai.ascent.engine import Engine
    from clipxai.runs.load import load_run

    work, _ = elsewhere
    run = toy_run()
    before = digest(work)

    def broken(self, index):
        raise RuntimeError("the first step of the resume breaks")
    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(Engine, "step", broken)
        clipxai.ascend(resume=run, steps=8, quiet=True)
    assert digest(work) == before and load_run(run).status == "complete"
    [resumed] = clipxai.ascend(resume=run, steps=8, quiet=True)   # and it still resumes
    assert resumed.status == "complete" and resumed.n == 4


def test_resume_on_a_read_only_file_system_is_one_sentence(elsewhere, capsys, monkeypatch):
    import errno

    import clipxai.runs.writer

    work, _ = elsewhere
    toy_run()
    before = digest(work)
    real_open = os.open

    def read_only(path, flags, *args):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args)
    monkeypatch.setattr(clipxai.runs.writer.os, "open", read_only)
    assert main(["ascend", "--resume", "runs/x", "--steps", "6", "--quiet"]) == 2
    assert "cannot be written" in one_sentence(capsys)
    assert digest(work) == before

