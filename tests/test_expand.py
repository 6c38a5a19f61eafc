"""`clipxai expand` against a real chat-completions server on 127.0.0.1, through the openai client."""

import json
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("openai")

from clipxai.ascent import expand  # noqa: E402
from clipxai.cli.commands import main  # noqa: E402
from clipxai.errors import ClipxaiError  # noqa: E402

KEY = "sk-clipxai-test-Zq8vW3xK9pL2mN7r"


# ---------------------------------------------------------------------------------------
# A scripted chat-completions server

def completion(*texts, **message_extra):
    """A 200 response with one choice per text."""
    choices = [{"index": i, "finish_reason": "stop",
                "message": {"role": "assistant", "content": t, **message_extra}}
               for i, t in enumerate(texts)]
    body = {"id": "chatcmpl-test", "object": "chat.completion", "created": 0,
            "model": "test-llm", "choices": choices}
    return 200, json.dumps(body).encode(), {}


def status(code, message, headers=None):
    body = {"error": {"message": message, "type": "test_error", "code": code}}
    return code, json.dumps(body).encode(), headers or {}


class FakeLLM:
    """Serves POST /v1/chat/completions from a script of replies, recording every request.

    When the script runs out it answers like llama.cpp: one numbered caption per request,
    whatever ``n`` asked for (or all ``n`` of them when ``honour_n`` is set).
    """

    def __init__(self):
        self.script = []
        self.requests = []
        self.honour_n = False
        self.stop = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "json": body})
                reply = fake.script.pop(0) if fake.script else fake.default(body)
                if callable(reply):
                    reply = reply()
                code, data, headers, *slowly = reply
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if not slowly:
                    self.wfile.write(data)
                    return
                tail, every = slowly[0]
                self.wfile.write(data[:-tail])
                for i in range(len(data) - tail, len(data)):  # then one byte at a time
                    self.wfile.flush()
                    if fake.stop.wait(every):
                        return
                    self.wfile.write(data[i:i + 1])

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.handle_error = lambda *a: None  # a client that gave up is no test failure
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def default(self, body):
        count = body.get("n", 1) if self.honour_n else 1
        start = len(self.requests)
        return completion(*[f"A caption number {start}-{i}." for i in range(count)])

    def slow(self, seconds):
        def reply():
            self.stop.wait(seconds)
            return completion("Too late.")
        return reply

    @staticmethod
    def trickle(reply, tail, every):
        """``reply`` with its last ``tail`` bytes sent one every ``every`` seconds."""
        return (*reply, (tail, every))

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def llm():
    server = FakeLLM()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(expand, "RETRY_BACKOFF", 0.01)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# Answers

def test_a_normal_answer_and_what_reaches_the_server(llm):
    llm.script = [completion("A red heart drawn in chalk on a dark wall.")]
    captions = expand.expand_prompt("❤️", base_url=llm.url, api_key=KEY, model="tiny-llm",
                                    system_prompt="Describe it as a painting.", temperature=0.3)
    assert captions == ["A red heart drawn in chalk on a dark wall."]
    (req,) = llm.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["authorization"] == f"Bearer {KEY}"
    assert req["json"]["model"] == "tiny-llm"
    assert req["json"]["temperature"] == 0.3
    assert req["json"]["messages"] == [
        {"role": "system", "content": "Describe it as a painting."},
        {"role": "user", "content": "❤️"},
    ]
    assert "n" not in req["json"]


def test_the_default_system_prompt_is_sent(llm):
    expand.expand_prompt("dog", base_url=llm.url)
    assert llm.requests[0]["json"]["messages"][0] == {"role": "system", "content": expand.DEFAULT_SYSTEM_PROMPT}
    assert llm.requests[0]["json"]["model"] == expand.DEFAULT_LLM_MODEL


def test_cli_n4_from_a_server_that_ignores_n(llm, capsys):
    assert main(["expand", "❤️", "-n", "4", "--llm-base-url", llm.url]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and len(set(lines)) == 4
    assert [r["json"].get("n") for r in llm.requests] == [4, 3, 2, None]


def test_n4_from_a_server_that_honours_n_is_one_request(llm):
    llm.honour_n = True
    captions = expand.expand_prompt("❤️", n=4, base_url=llm.url)
    assert len(set(captions)) == 4 and len(llm.requests) == 1


def test_duplicate_captions_are_asked_again(llm):
    llm.script = [completion("A red heart."), completion("a red heart"), completion("A red heart.", "Two rings.")]
    captions = expand.expand_prompt("❤️", n=3, base_url=llm.url)
    assert captions[:2] == ["A red heart.", "Two rings."]
    assert len(set(captions)) == 3


def test_a_server_that_rejects_n_is_asked_one_caption_at_a_time(llm):
    llm.script = [status(400, "Only one completion choice is allowed")]
    captions = expand.expand_prompt("❤️", n=3, base_url=llm.url)
    assert len(set(captions)) == 3
    assert llm.requests[0]["json"]["n"] == 3
    assert all("n" not in r["json"] for r in llm.requests[1:])


def test_a_server_that_repeats_itself_is_a_clear_error(llm):
    llm.script = [completion("Always the same.") for _ in range(20)]
    with pytest.raises(ClipxaiError, match="only 1 distinct caption"):
        expand.expand_prompt("❤️", n=2, base_url=llm.url)
    assert len(llm.requests) == 5  # bounded: 2 * n + 1 calls


def test_captions_are_cleaned_to_one_line(llm):
    llm.script = [completion("<think>The user wants a heart.</think>\nHere is a caption:\n\n\"A red heart\non a wall.\"")]
    assert expand.expand_prompt("❤️", base_url=llm.url) == ["A red heart on a wall."]


def test_json_output_records_the_endpoint_but_not_the_key(llm, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", llm.url)  # the environment picks the server
    llm.script = [completion("A red heart.")]
    assert main(["expand", "❤️", "--json", "--llm-model", "tiny-llm"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == {"prompt": "❤️", "captions": ["A red heart."],
                               "llm_model": "tiny-llm", "endpoint": llm.url}
    assert KEY not in out
    assert llm.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"


def test_system_prompt_from_a_file(llm, tmp_path, capsys):
    path = tmp_path / "system.txt"
    path.write_text("Answer as a botanist.\n", "utf-8")
    assert main(["expand", "tree", "--llm-base-url", llm.url, "--system-prompt", f"@{path}"]) == 0
    assert llm.requests[0]["json"]["messages"][0]["content"] == "Answer as a botanist."
    assert main(["expand", "tree", "--llm-base-url", llm.url, "--system-prompt", f"@{tmp_path}/none.txt"]) != 0
    assert "could not be read" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# Failures, retries and their messages

def test_a_slow_answer_times_out_after_bounded_retries(llm):
    llm.script = [llm.slow(5), llm.slow(5)]
    start = time.monotonic()
    with pytest.raises(ClipxaiError, match=r"did not answer within 0\.3 s \(2 attempts\)"):
        expand.expand_prompt("❤️", base_url=llm.url, timeout=0.3, retries=1)
    assert time.monotonic() - start < 3
    assert len(llm.requests) == 2


def test_the_timeout_is_a_deadline_for_a_server_that_trickles_its_answer(llm, capsys):
    """Each byte comes within the timeout, but the answer as a whole does not."""
    llm.script = [llm.trickle(completion("A red heart."), tail=12, every=0.3)]
    start = time.monotonic()
    assert main(["expand", "❤️", "--llm-base-url", llm.url, "--timeout", "1", "--retries", "0"]) == 2
    assert time.monotonic() - start < 2.5
    err = capsys.readouterr().err
    assert "began answering but had not finished within 1 s (1 attempt); raise --timeout" in err
    assert len(err.strip().splitlines()) == 1


def test_a_server_that_never_answers_is_told_apart_from_a_slow_one(llm, capsys):
    llm.script = [llm.slow(5)]
    assert main(["expand", "❤️", "--llm-base-url", llm.url, "--timeout", "0.5", "--retries", "0"]) == 2
    assert "did not answer within 0.5 s (1 attempt); raise --timeout" in capsys.readouterr().err


def test_ascend_expand_gives_advice_ascend_can_follow(llm, tmp_path, monkeypatch, capsys):
    """ascend has no --timeout: its message points at `clipxai expand` to try the server."""
    import functools

    monkeypatch.setattr(expand, "expand_prompt", functools.partial(expand.expand_prompt, timeout=0.3, retries=0))
    llm.script = [llm.slow(5)]
    code = main(["ascend", "❤️", "--expand", "--llm-base-url", llm.url, "--model", "random:tiny",
                 "--out", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "did not answer within 0.3 s" in err and "raise --timeout" not in err
    assert "clipxai expand" in err and "--timeout" in err
    assert not (tmp_path / "runs").exists()


def test_an_invalid_port_is_one_sentence_for_expand_and_ascend(tmp_path, capsys):
    url = "http://127.0.0.1:99999/v1"
    assert main(["expand", "❤️", "--llm-base-url", url]) == 2
    assert main(["ascend", "❤️", "--expand", "2", "--llm-base-url", url, "--model", "random:tiny",
                 "--out", str(tmp_path / "runs"), "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all("99999" in line and "valid port" in line for line in lines)
    assert not (tmp_path / "runs").exists()


def test_a_500_then_success_is_retried(llm):
    llm.script = [status(500, "model is loading"), completion("A red heart.")]
    assert expand.expand_prompt("❤️", base_url=llm.url) == ["A red heart."]
    assert len(llm.requests) == 2


def test_a_429_waits_for_retry_after_then_succeeds(llm):
    llm.script = [status(429, "slow down", {"Retry-After": "0.2"}), completion("A red heart.")]
    start = time.monotonic()
    assert expand.expand_prompt("❤️", base_url=llm.url) == ["A red heart."]
    assert time.monotonic() - start >= 0.2


def test_server_errors_give_up_after_the_retries(llm):
    llm.script = [status(503, "overloaded")] * 3
    with pytest.raises(ClipxaiError, match=r"HTTP 503 \(overloaded\)"):
        expand.expand_prompt("❤️", base_url=llm.url, retries=1)
    assert len(llm.requests) == 2


def test_a_client_error_is_not_retried(llm):
    llm.script = [status(404, "model 'nope' not found")]
    with pytest.raises(ClipxaiError, match="HTTP 404 .*not found.*--llm-model"):
        expand.expand_prompt("❤️", base_url=llm.url, model="nope")
    assert len(llm.requests) == 1


@pytest.mark.parametrize("reply, phrase", [
    (status(401, f"Incorrect API key provided: {KEY}"), "refused the API key"),
    ((200, b'{"choices": [{"message": {"content": "A red', {}), "not chat-completions JSON"),
    ((200, b'{"id": "x", "object": "chat.completion"}', {}), "not chat-completions JSON"),
    ((200, b"<html>gateway</html>", {}), "not chat-completions JSON"),
    (completion(""), "empty caption"),
    (completion(None), "empty caption"),
    (completion("   \n "), "empty caption"),
    (completion(42), "other than text"),
    (completion("I'm sorry, but I can't help with that."), "refused"),
    (completion("As an AI language model, I cannot describe images."), "refused"),
    (completion(None, refusal="I can't assist with that request."), "refused"),
])
def test_unusable_answers_are_one_sentence_errors(llm, capsys, caplog, monkeypatch, reply, phrase):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    llm.script = [reply]
    assert main(["expand", "❤️", "--llm-base-url", llm.url]) != 0
    out, err = capsys.readouterr()
    assert phrase in err and err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err and out == ""
    assert KEY not in out + err + caplog.text
    assert llm.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"  # it was sent, only there


def test_an_unreachable_server_is_a_clear_error(capsys, caplog, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{free_port()}/v1"
    assert main(["--debug", "expand", "❤️", "--llm-base-url", url, "--retries", "1"]) != 0
    out, err = capsys.readouterr()
    assert "could not be reached (2 attempts)" in err
    assert KEY not in out + err + caplog.text


def test_the_key_is_absent_from_timeouts_and_credentialed_urls(llm, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    llm.script = [llm.slow(5)]
    host = llm.url.replace("http://", f"http://user:{KEY}@")
    assert main(["expand", "❤️", "--llm-base-url", host, "--timeout", "0.2", "--retries", "0"]) != 0
    out, err = capsys.readouterr()
    assert "did not answer within 0.2 s" in err and llm.url in err
    assert KEY not in out + err


def test_no_key_for_openai_is_an_error_but_a_local_server_needs_none(llm, capsys):
    assert main(["expand", "❤️"]) != 0
    assert "OPENAI_API_KEY" in capsys.readouterr().err
    assert expand.expand_prompt("❤️", base_url=llm.url)
    assert llm.requests[0]["headers"]["authorization"] == f"Bearer {expand.PLACEHOLDER_KEY}"


def test_a_missing_openai_package_says_how_to_install_it(llm, monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ClipxaiError, match=r'pip install -e "\.\[expand\]"'):
        expand.expand_prompt("❤️", base_url=llm.url)
    assert llm.requests == []


def test_bad_arguments_are_errors():
    with pytest.raises(ClipxaiError, match="empty"):
        expand.expand_prompt("  ", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ClipxaiError, match="not an http"):
        expand.expand_prompt("dog", base_url="127.0.0.1:8080")
    assert main(["expand", "dog", "--llm-base-url", "http://127.0.0.1:9/v1", "--system-prompt", " "]) != 0


def test_endpoint_info_strips_credentials(monkeypatch):
    info = expand.endpoint_info(f"http://me:{KEY}@localhost:11434/v1/?api_key={KEY}", "llama3.2")
    assert info == {"llm_model": "llama3.2", "endpoint": "http://localhost:11434/v1"}
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    assert expand.endpoint_info(None, "m")["endpoint"] == "http://127.0.0.1:8000/v1"
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert expand.endpoint_info(None, "m")["endpoint"] == expand.DEFAULT_BASE_URL


# ---------------------------------------------------------------------------------------
# ascend --expand

def test_ascend_with_expansion_optimizes_the_caption_and_records_it(llm, tmp_path, monkeypatch, capsys):
    from clipxai.cli.commands import main
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-expand-key-123")
    llm.script = [completion("A red heart: drawn | in chalk."), completion("Two gold rings.")]
    code = main(["ascend", "❤️", "--expand", "2", "--llm-base-url", llm.url, "--llm-model", "local-model",
                 "--model", "random:tiny", "--steps", "2", "--out", str(tmp_path), "--name", "x", "--quiet"])
    assert code == 0, capsys.readouterr().err
    manifest = json.loads((tmp_path / "x" / "run.json").read_text())
    assert [(p["text"], p["weight"]) for p in manifest["prompts"]] == [
        ("A red heart: drawn | in chalk.", 1.0), ("Two gold rings.", 1.0)]
    assert manifest["expansion"]["original"] == "❤️"
    assert manifest["expansion"]["llm_model"] == "local-model"
    assert manifest["expansion"]["endpoint"] == llm.url
    for path in (tmp_path / "x").rglob("*"):
        if path.is_file():
            assert b"sk-secret-expand-key-123" not in path.read_bytes()


def test_ascend_expansion_failure_creates_no_run(llm, tmp_path, monkeypatch, capsys):
    from clipxai.cli.commands import main
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-expand-key-123")
    llm.script = [status(401, "bad key")]
    code = main(["ascend", "❤️", "--expand", "--llm-base-url", llm.url, "--model", "random:tiny",
                 "--out", str(tmp_path / "runs"), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and "sk-secret-expand-key-123" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
