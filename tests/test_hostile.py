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
        assert client.get("/api/run", params={"id": how}).status_code == 404
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


# ---------------------------------------------------------------------------------------
# classes 4 and 5: a full disk or a file-size limit, and sizes no disk holds, are one sentence

LIMITED = """
import resource, signal, sys
from clipxai.cli.commands import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
sys.exit(main(sys.argv[1:]))
"""


def test_a_file_size_limit_during_the_checkpoint_interrupts_the_run_and_it_resumes(elsewhere):
    import subprocess
    import sys

    from clipxai.runs.load import load_run

    work, _ = elsewhere
    run = toy_run()
    # the arrays grow to 4 rows within the limit; the checkpoint (~17 kB) does not fit it
    proc = subprocess.run([sys.executable, "-c", LIMITED.format(limit=14_000), "ascend", "--resume", "runs/x",
                           "--steps", "8", "--quiet"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert "is full" in errors[0] and "--resume" in errors[0] and "Traceback" not in proc.stderr
    stopped = load_run(run)
    assert stopped.status == "interrupted" and stopped.manifest["stop_reason"] == "disk full"
    assert not [p for p in run.rglob("*") if ".tmp" in p.name]
    [resumed] = clipxai.ascend(resume=run, quiet=True)
    assert resumed.status == "complete" and resumed.n == 4


def test_a_checkpoint_on_a_full_disk_is_an_oserror_with_its_errno(tmp_path, monkeypatch):
    import errno

    import torch

    from clipxai.util import files

    real_write = files.atomic_write

    def full(path, write, sync=False):   # the disk fills while the checkpoint is written
        def failing(f):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, failing, sync=sync)
    monkeypatch.setattr(files, "atomic_write", full)
    with pytest.raises(OSError) as info:
        files.save_torch({"x": torch.zeros(3)}, tmp_path / "checkpoint.pt")
    assert info.value.errno == errno.ENOSPC and not list(tmp_path.iterdir())


@pytest.mark.parametrize("args, words", [
    (["--steps", "1000000000"], ["--steps 1000000000", "at most"]),
    (["--steps", "90000000", "--snapshot-every", "1", "--size", "64", "64"], ["need about", "TB", "free"]),
    (["--steps", "1e20"], ["--steps", "1e20"]),
    (["--seeds", "1e20"], ["--seeds", "1e20"]),
    (["--seeds", "100000"], ["--seeds", "1 to 1024"]),
])
def test_sizes_no_run_can_take_are_refused_before_any_folder(elsewhere, capsys, args, words):
    work, _ = elsewhere
    before = digest(work)
    assert main(["ascend", "dog", "--model", "toy", "--out", "runs", "--quiet", *args]) == 2
    message = one_sentence(capsys) if any(w.startswith("need") for w in words) else _click_or_own(capsys)
    assert all(w in message for w in words), message
    assert digest(work) == before


def _click_or_own(capsys) -> str:
    """The one error line, whether click (a value that is not a number) or clipxai wrote it."""
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.lower().startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in out + err, err
    return lines[0]


@pytest.mark.parametrize("options, words", [
    (dict(steps=True), ["steps", "whole number", "True"]),
    (dict(steps=10**30), ["--steps", "at most"]),
    (dict(snapshot_every=0.5), ["snapshot_every", "whole number"]),
    (dict(seeds=10**20), ["--seeds", "1 to 1024"]),
    (dict(seed=1.5), ["seed", "whole number"]),
    (dict(lr="x"), ["lr", "a number"]),
    (dict(size=16), ["size", "width, height"]),
    (dict(size=(16, "a")), ["size", "width, height"]),
    (dict(cutouts=2.5), ["cutouts", "whole number"]),
    (dict(name=5), ["name", "text"]),
    (dict(model=5), ["model", "text"]),
    (dict(tv="a"), ["tv", "a number"]),
    (dict(gradients="yes"), ["gradients", "true or false"]),
])
def test_the_python_api_names_the_option_of_a_wrong_kind_before_any_folder(elsewhere, options, words):
    work, _ = elsewhere
    before = digest(work)
    with pytest.raises(clipxai.ClipxaiError) as info:
        clipxai.ascend("dog", out="runs", quiet=True, **{"model": "toy", "steps": 2, "size": (16, 16), **options})
    assert all(w in str(info.value) for w in words), info.value
    assert digest(work) == before


@pytest.mark.parametrize("spec, extra, words", [
    ('[grid]\nprompt = [{p}]\nlr = [{v}]\n', [], ["1,000,000 runs", "--max-rows"]),
    ('[grid]\nprompt = ["a", "b", "c"]\nseed = [0, 1, 2, 3]\n', ["--max-rows", "10"], ["12 runs", "10"]),
    ('[grid]\nprompt = ["x"]\n[ascend]\nsteps = true\n', [], ["steps", "whole number"]),
    ('[grid]\nprompt = ["x"]\n[ascend]\nsnapshot_every = 0.5\n', [], ["snapshot_every", "whole number"]),
    ('[grid]\nprompt = ["x"]\n[ascend]\nsteps = 1000000000000\n', [], ["--steps", "at most"]),
])
def test_a_sweep_spec_no_run_can_take_is_refused_before_anything(elsewhere, capsys, spec, extra, words):
    work, _ = elsewhere
    text = spec.format(p=", ".join(f'"p{i}"' for i in range(1000)), v=", ".join(str(i / 1e4) for i in range(1, 1001)))
    text = 'name = "s"\n' + text + ("" if "[ascend]" in text else "[ascend]\n") + 'model = "toy"\n'
    (work / "spec.toml").write_text(text, encoding="utf-8")
    before = digest(work)
    assert main(["sweep", "spec.toml", "--out", "runs", *extra]) == 2
    message = one_sentence(capsys)
    assert all(w in message for w in words), message
    assert digest(work) == before


# ---------------------------------------------------------------------------------------
# classes 5, 7 and 8 for the LLM: a huge or absurdly nested reply, and control characters in its text

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


def test_an_llm_reply_over_the_size_limit_or_nested_absurdly_is_one_sentence(llm, capsys, monkeypatch):
    from test_expand import KEY, completion

    from clipxai.ascent.expand import MAX_REPLY_BYTES

    nested = b'{"choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for reply, words in ((completion("a" * (MAX_REPLY_BYTES + 10)), ["more than 1 MB"]),
                         ((200, nested, {}), ["not chat-completions JSON"])):
        llm.script = [reply]
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        assert main(["expand", "dog", "--llm-base-url", llm.url, "--retries", "0"]) == 2
        message = one_sentence(capsys)
        assert all(w in message for w in words), message


def test_control_characters_never_leave_an_llm_caption(llm, capsys, monkeypatch):
    from test_expand import KEY, completion

    from clipxai.ascent.expand import expand_prompt, strip_controls

    hostile = "\x1b[2J\x1b]0;pwned\x07A red\x07 heart\x00 on\u202e a wall\u202c, \x9b31m\u2066glowing\u2069 👨\u200d👩"
    llm.script = [completion(hostile)]
    [caption] = expand_prompt("❤️", base_url=llm.url, api_key=KEY)
    assert caption == "A red heart on a wall, glowing 👨\u200d👩"
    assert all(c.isprintable() or c == "\u200d" for c in caption)
    assert strip_controls("a\tb\nc", keep_lines=True) == "a b\nc"
    llm.script = [completion(hostile)]
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert main(["expand", "dog", "--llm-base-url", llm.url]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out and "glowing" in out


# ---------------------------------------------------------------------------------------
# class 8: a damaged run is one sentence, exit 2 (or its damaged metrics line is skipped), never "unexpected"

@pytest.mark.parametrize("how, words", [
    ("0-d", ["embeddings.npy", "holds no rows"]),
    ("float16", ["embeddings.npy", "float16", "float32"]),
    ("row-shape", ["embeddings.npy", "rows of shape"]),
    ("cut", ["embeddings.npy", "cannot be read"]),
])
def test_analyze_and_load_run_name_a_damaged_array(elsewhere, capsys, how, words):
    from clipxai.errors import RunError
    from clipxai.runs.load import load_run

    work, _ = elsewhere
    run = write_run(Path("runs"), "x", n=30)
    file = run / "snapshots" / "embeddings.npy"
    emb = np.load(file)
    if how == "0-d":
        np.save(file, np.float32(1))
    elif how == "float16":
        np.save(file, emb.astype(np.float16))
    elif how == "row-shape":
        np.save(file, emb[:, :-1])
    else:
        file.write_bytes(file.read_bytes()[:-100])
    before = digest(work)
    assert main(["analyze", "runs/x", *FAST]) == 2
    message = one_sentence(capsys)
    assert all(w in message for w in words), message
    with pytest.raises(RunError):
        load_run("runs/x").embeddings
    assert digest(work) == before


@pytest.mark.parametrize("line", ['{"step": 1' + "0" * 5000 + ', "loss": 1}', '{"step": 3, "x": ' + "[" * 50_000 + "]" * 50_000 + "}",
                                  "[1, 2]", '"text"'])
def test_a_damaged_metrics_line_is_skipped_by_every_reader(tmp_path, line):
    from starlette.testclient import TestClient

    from clipxai.runs.load import load_run
    from clipxai.view.app import create_app

    run = write_run(tmp_path / "runs", "x", n=30)
    before = len(load_run(run).metrics())
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(line + "\n")
    assert len(load_run(run).metrics()) == before
    client = TestClient(create_app(tmp_path / "runs", hosts=("testserver",)))
    assert client.get("/api/run", params={"id": "x"}).status_code == 200
    assert main(["analyze", str(run), *FAST]) == 0


# ---------------------------------------------------------------------------------------
# class 9: a term that calls sys.exit never ends ascend with exit 0

@pytest.mark.parametrize("when", ["0", "1"])
def test_a_term_raising_system_exit_is_a_term_error_not_success(elsewhere, capsys, when):
    work, _ = elsewhere
    (work / "terms.py").write_text(f"def bye(step):\n    if step.index >= {when}:\n        raise SystemExit(0)\n"
                                   "    return step.image.mean(dim=(1, 2, 3)) * 0\n", encoding="utf-8")
    code = main(["ascend", "dog", "--term", "terms.py:bye", "--model", "toy", "--steps", "3", "--size", "16", "16",
                 "--out", "runs", "--quiet"])
    assert code == 2
    assert "SystemExit" in one_sentence(capsys)
    if when == "0":   # it fails while the objective is first checked: before any folder
        assert not list((work / "runs").iterdir())
