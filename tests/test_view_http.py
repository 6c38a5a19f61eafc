"""The viewer's HTTP surface: what it lists and serves, and what it refuses (paths outside the
folder, state changes without the page's token, foreign Host headers, a read-only viewer)."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette.testclient", reason="the viewer needs starlette (pip install -e '.[view]')")
from helpers_view import make_run  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from clipxai.cli.commands import main  # noqa: E402
from clipxai.cli.view import serving  # noqa: E402
from clipxai.runs.load import load_run  # noqa: E402
from clipxai.view import create_app  # noqa: E402

SECRET = "TOP-SECRET-OUTSIDE-THE-FOLDER"
STATIC = Path(__file__).resolve().parents[1] / "clipxai" / "view" / "static"


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """runs/ (served: a run, a sweep with a run, symlinks in and out) beside outside/ (never served)."""
    base = tmp_path_factory.mktemp("view")
    root, outside = base / "runs", base / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    Image.new("RGB", (4, 4)).save(outside / "secret.png")
    make_run(root, "r")
    make_run(root / "sweep", "s1", prompt="a <b>blue</b> heart", seed=1)
    make_run(outside, "far")                       # a real run, but not under the served folder
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "escape.png").symlink_to(outside / "secret.png")
    (root / "inner").symlink_to(root / "r", target_is_directory=True)
    trap = root / "trap"                           # a run whose files are links to another run outside
    shutil.copytree(root / "r", trap)
    for name in ("snapshots/images.npy", "snapshots/embeddings.npy", "metrics.jsonl"):
        (trap / name).unlink()
        (trap / name).symlink_to(outside / "far" / name)
    return root, outside


@pytest.fixture()
def client(tree):
    return TestClient(create_app(tree[0], hosts=("testserver",)))


def test_runs_lists_every_run_and_sweep(client):
    data = client.get("/api/runs").json()
    rows = {r["id"]: r for r in data["runs"]}
    assert set(rows) == {"r", "sweep/s1", "trap"}    # links are not followed while listing
    assert rows["sweep/s1"]["group"] == "sweep" and rows["sweep/s1"]["prompt"] == "a <b>blue</b> heart"
    assert rows["r"]["status"] == "complete" and rows["r"]["model"] == "random:tiny" and rows["r"]["n"] == 6
    assert rows["r"]["steps_done"] == 12 and rows["r"]["verdict"] is None


def test_run_data_has_steps_metrics_and_no_analysis(client):
    data = client.get("/api/run?id=r").json()
    assert data["steps"] == [0, 2, 4, 6, 8, 10] and data["status"] == "complete"
    assert data["metrics"]["steps"] == list(range(12)) and list(data["metrics"]["series"]) == ["sim/a red heart"]
    assert data["analysis"] is None and data["job"] is None


def test_a_frame_is_the_recorded_image(client, tree):
    run = load_run(tree[0] / "r")
    for i in (0, 3, -1):
        response = client.get(f"/api/frame?id=r&i={i}")
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        shown = np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))
        want = (np.clip(np.asarray(run.images[i], dtype=np.float32), 0, 1) * 255 + 0.5).astype(np.uint8)
        assert np.array_equal(shown, want.transpose(1, 2, 0))
    thumb = Image.open(io.BytesIO(client.get("/api/frame?id=r&i=0&size=16").content))
    assert max(thumb.size) == 16
    for bad in ("i=6", "i=-7", "i=x", "i=1&size=big"):
        assert client.get(f"/api/frame?id=r&{bad}").status_code == 404


def test_projection_has_a_point_per_snapshot(client):
    data = client.get("/api/projection?id=r").json()
    assert len(data["x"]) == len(data["y"]) == 6 == data["n"]


TRAVERSALS = [
    "/files/%2e%2e/outside/secret.txt", "/files/%2E%2E%2Foutside%2Fsecret.txt", "/files/..%2f..%2fetc%2fpasswd",
    "/files//etc/passwd", "/files/%2Fetc%2Fpasswd", "/files/escape/secret.txt", "/files/escape.png",
    "/files/r/%2e%2e/%2e%2e/outside/secret.txt", "/files/r/..%5c..%5coutside%5csecret.txt",
    "/api/run?id=..", "/api/run?id=%2e%2e/outside/far", "/api/run?id=escape/far", "/api/frame?id=escape/far&i=0",
    "/api/projection?id=../outside/far", "/static/%2e%2e/app.py", "/static/..%2fapp.py", "/files/r/%00",
]


def test_paths_outside_the_folder_are_not_found(client, tree):
    far = tree[1] / "far"
    for url in TRAVERSALS + [f"/api/run?id={far}", f"/api/frame?id={far}&i=0", f"/files/{tree[1] / 'secret.txt'}"]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert SECRET not in response.text and b"PNG" not in response.content[:8], url


def test_run_files_linked_from_outside_are_not_read(client):
    for url in ("/api/frame?id=trap&i=0", "/api/projection?id=trap"):   # refused with the run's sentence
        reply = client.get(url)
        assert reply.status_code == 409 and "outside" in reply.json()["error"], (url, reply.text)
        assert SECRET not in reply.text and b"PNG" not in reply.content[:8]
    assert client.get("/api/run?id=trap").json()["metrics"]["steps"] == []
    assert client.get("/api/frame?id=r&i=0").status_code == 200


def test_links_and_files_inside_the_folder_are_served(client):
    assert client.get("/files/inner/final.png").status_code == 200         # a symlink that stays inside
    assert client.get("/files/r/run.json").headers["content-type"].startswith("application/json")
    assert client.get("/files/r/snapshots/images.npy").status_code == 404  # only pictures and text
    assert client.get("/api/run?id=inner").json()["steps"] == [0, 2, 4, 6, 8, 10]


def test_literal_dot_dot_reaches_a_real_server_and_is_refused(tree):
    """httpx cleans '..' out of URLs; a raw socket sends them as an attacker would."""
    with serving(create_app(tree[0])) as url:
        u = urlsplit(url)
        for path in ("/files/../outside/secret.txt", "/files/r/../../outside/secret.txt",
                     "/static/../app.py", "/api/run?id=../outside/far"):
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            assert response.status == 404, path
            assert SECRET.encode() not in body
            conn.close()


def test_start_and_cancel_need_the_page_token(tree):
    app = create_app(tree[0], hosts=("testserver",))
    client = TestClient(app)
    body = {"prompt": "x", "model": "random:tiny", "preset": "default", "steps": 2}
    before = sorted(p.name for p in tree[0].iterdir())
    for headers in ({}, {"X-Clipxai-Token": "wrong"}, {"X-Clipxai-Token": ""}):
        assert client.post("/api/start", json=body, headers=headers).status_code == 403
        assert client.post("/api/cancel", json={"id": "r"}, headers=headers).status_code == 403
    assert client.post("/api/start", data={**body, "token": "wrong"}).status_code == 403
    assert client.get("/api/start").status_code == 405
    token = re.search(r'name="clipxai-token" content="([^"]+)"', client.get("/").text).group(1)
    assert token == app.state.token
    good = {"X-Clipxai-Token": token}
    assert client.post("/api/start", json={**body, "prompt": " "}, headers=good).status_code == 400
    assert client.post("/api/start", json={**body, "model": "--help"}, headers=good).status_code == 400
    assert client.post("/api/start", json={**body, "steps": 0}, headers=good).status_code == 400
    assert client.post("/api/start", json={**body, "preset": "nope"}, headers=good).status_code == 400
    assert client.post("/api/cancel", json={"id": "r"}, headers=good).status_code == 404   # not started here
    assert sorted(p.name for p in tree[0].iterdir()) == before


def test_a_run_that_cannot_start_says_why(tmp_path):
    app = create_app(tmp_path, hosts=("testserver",))
    client = TestClient(app)
    answer = client.post("/api/start", json={"prompt": "x", "model": "nosuchmodel", "preset": "default", "steps": 2},
                         headers={"X-Clipxai-Token": app.state.token}).json()
    app.state.jobs.get(answer["id"]).process.wait(60)
    for _ in range(100):                       # the job's watcher records the exit after the last line
        data = client.get(f"/api/run?id={answer['id']}").json()
        if data["job"]["state"] == "exited":
            break
        time.sleep(0.05)
    assert data["pending"] and data["job"]["returncode"] == 2
    assert data["job"]["error"].startswith("error: 'nosuchmodel'")
    assert not (tmp_path / answer["id"]).exists()


def test_read_only_refuses_to_start(tree):
    app = create_app(tree[0], read_only=True, hosts=("testserver",))
    client = TestClient(app)
    assert 'name="clipxai-read-only" content="1"' in client.get("/start").text
    response = client.post("/api/start", json={"prompt": "x", "model": "random:tiny", "preset": "default",
                                                "steps": 2}, headers={"X-Clipxai-Token": app.state.token})
    assert response.status_code == 403 and "read-only" in response.json()["error"]


def test_pages_forbid_inline_script_and_framing(client):
    response = client.get("/run?id=r")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in response.text      # every script is a file: the CSP would block inline ones


def test_foreign_host_headers_are_refused(tree):
    client = TestClient(create_app(tree[0]), base_url="http://127.0.0.1:8765")
    assert client.get("/api/runs").status_code == 200
    assert client.get("/api/runs", headers={"host": "localhost:8765"}).status_code == 200
    assert client.get("/api/runs", headers={"host": "evil.example:8765"}).status_code == 400


def test_scripts_never_write_html():
    for js in STATIC.glob("*.js"):
        text = js.read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in text, f"{js.name} uses {sink}"


def test_the_analysis_panel_matches_states_by_step():
    from clipxai.view.summary import analysis_view
    summary = {"verdict": "metastable_switching", "verdict_reason": "it switches", "n_states": 2, "n_snapshots": 3,
               "steps": [0, 10, 20], "states": [0, 1, 0],
               "labels": {"states": {"0": [{"word": "mouth", "similarity": 0.3}], "1": [{"word": "ring"}]}},
               "dynamics": {"cycling": True, "mean_spacing_steps": 13.0, "events": [4, 17], "reason": "drops"},
               "figures": {"states": "figures/states.png", "bad": 3}}
    view = analysis_view(summary, [0, 10, 20, 30])
    assert view["states"] == [0, 1, 0, None]            # the run grew after the analysis
    assert view["words"] == {"0": ["mouth"], "1": ["ring"]} and view["n_analysed"] == 3
    assert view["dynamics"] == {"cycling": True, "mean_spacing_steps": 13.0, "reason": "drops"}
    assert view["figures"] == {"states": "figures/states.png"}
    assert analysis_view(None, [0]) is None and analysis_view({"states": "x"}, [0])["states"] == [None]


def test_a_run_folder_can_be_served_alone(tree):
    client = TestClient(create_app(tree[0] / "r", hosts=("testserver",)))
    assert [r["id"] for r in client.get("/api/runs").json()["runs"]] == ["."]
    assert client.get("/api/run?id=.").json()["steps"] == [0, 2, 4, 6, 8, 10]
    assert client.get("/api/frame?id=.&i=0").status_code == 200


def test_a_prompt_is_never_read_as_an_option(tmp_path, capsys):
    from clipxai.view.jobs import ascend_argv
    argv = ascend_argv("--help", "nosuchmodel", "default", 1, tmp_path, "n")
    assert argv[-2:] == ["--", "--help"]
    assert main(argv[3:]) == 2                     # the command refuses the model: it took --help as the prompt
    assert "nosuchmodel" in capsys.readouterr().err


def test_bad_input_is_one_sentence(tmp_path, capsys):
    for argv in (["view", str(tmp_path / "nope")], ["view", str(tmp_path), "--port", "x"],
                 ["view", str(tmp_path), "--port", "70000"], ["view", str(tmp_path), "--host", "no such host!"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1, err


def test_a_socket_or_a_host_name_that_cannot_be_had_is_one_sentence(tmp_path, capsys, monkeypatch):
    import errno
    import socket

    assert main(["view", str(tmp_path), "--host", "a" * 70, "--port", "0"]) == 2   # a label IDNA cannot encode
    assert "cannot be used to listen on (not a valid host name)" in capsys.readouterr().err

    def no_socket(*args, **kwargs):
        raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")

    monkeypatch.setattr(socket, "socket", no_socket)
    assert main(["view", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: Cannot listen on 127.0.0.1 port 0 (Address family not supported by protocol)."


def test_a_port_in_use_is_one_sentence(tmp_path, capsys):
    from clipxai.cli.view import bind
    sock = bind("127.0.0.1", 0)
    try:
        assert main(["view", str(tmp_path), "--port", str(sock.getsockname()[1])]) == 2
        assert "in use" in capsys.readouterr().err
    finally:
        sock.close()


def test_command_prints_its_url_and_warns_off_loopback(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                         os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "clipxai.cli", "view", str(tmp_path), "--host", "0.0.0.0",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        url = lines[1].strip()
        assert re.fullmatch(r"http://0\.0\.0\.0:\d+/", url), lines
        conn = http.client.HTTPConnection("127.0.0.1", int(urlsplit(url).port), timeout=10)
        conn.request("GET", "/api/runs")
        assert conn.getresponse().status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert err.startswith("warning: listening on 0.0.0.0") and "--read-only" in err


def test_figure_links_of_a_run_with_url_characters_in_its_name_work(tree, tmp_path):
    from clipxai.runs.summary import SCHEMA

    root = tmp_path / "runs"
    run = root / "exp#1" / "50% lr?"
    shutil.copytree(tree[0] / "r", run)
    (run / "analysis" / "figures").mkdir(parents=True)
    Image.new("RGB", (4, 4), (255, 0, 0)).save(run / "analysis" / "figures" / "states #2.png")
    summary = {"schema": SCHEMA, "figures": {"states": "figures/states #2.png"}}
    (run / "analysis" / "summary.json").write_text(json.dumps(summary))
    client = TestClient(create_app(root, hosts=("testserver",)))
    url = client.get("/api/run", params={"id": "exp#1/50% lr?"}).json()["analysis"]["figures"]["states"]
    assert url == "/files/exp%231/50%25%20lr%3F/analysis/figures/states%20%232.png"
    response = client.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
