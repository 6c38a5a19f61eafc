"""Prompt expansion: turn a short prompt into visual captions with an OpenAI-compatible LLM.

A bare word such as "❤️" leaves CLIP free to wander; a caption written by a language model
("a red heart drawn in chalk on a dark wall") pins down one reading, and comparing runs with
and without it shows how much of the oscillation is ambiguity in the prompt. Any server that
speaks the chat-completions protocol works: OpenAI itself, or llama.cpp, vLLM and Ollama on
the user's own machine. The API key is sent to the server and nowhere else: it never appears
in messages, logs or run manifests.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import unicodedata
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from clipxai.errors import ClipxaiError

DEFAULT_LLM_MODEL = "gpt-4o-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_TEMPERATURE = 1.0
MAX_TIMEOUT = 3600.0   # seconds an attempt may take; more is a typo, not a wait
DEFAULT_SYSTEM_PROMPT = (
    "You write captions for pictures. The user gives a short prompt: a word, an emoji or a "
    "phrase. Reply with exactly one caption, a single sentence of at most 40 words, describing "
    "concretely what a picture of it shows: the objects, colours, materials, setting and style. "
    "Reply with the caption only: no preamble, no quotation marks, no list, no explanation."
)
# Local servers ignore the key, but the client refuses to send a request without one.
PLACEHOLDER_KEY = "no-key-needed"
# Seconds before the first retry; doubled for each further one.
RETRY_BACKOFF = 0.5
# What to do about a server that misses the deadline, for callers without a --timeout option
# (ascend --expand); `clipxai expand` names its own option instead.
TIMEOUT_ADVICE = ("check that the server is running and not overloaded, or try it with "
                  "`clipxai expand PROMPT --llm-base-url URL --timeout SECONDS`")
EXPAND_TIMEOUT_ADVICE = "raise --timeout or check the server"

_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry[,.!]|i apologi[sz]e|i can(?:no|')?t (?:help|assist|do|"
    r"provide|create|comply|fulfil)|i cannot|i won'?t|i will not|i'?m (?:not able|unable)|"
    r"i am (?:not able|unable)|as an ai\b|unfortunately,? i)",
    re.IGNORECASE,
)
_THINK = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
# ANSI/VT escape sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \), and two-character ones
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
KEPT_FORMAT = {"\u200c", "\u200d"}   # zero-width (non-)joiners: part of emoji and of some scripts
MAX_REPLY_BYTES = 1 << 20   # a chat completion of a few captions is kilobytes; more is refused, never held


class ExpandError(ClipxaiError):
    """The LLM could not be asked, or did not answer with a usable caption."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status  # the HTTP status that caused it, if any


# ---------------------------------------------------------------------------------------
# Endpoint

def resolve_base_url(base_url: str | None) -> str:
    """The endpoint to use: the argument, else ``OPENAI_BASE_URL``, else OpenAI's."""
    url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).strip()
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        raise ExpandError("The LLM base URL cannot be read as a URL; give a base URL such as "
                          "http://127.0.0.1:8080/v1.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ExpandError(f"'{public_url(url)}' is not an http(s) URL; give a base URL such as "
                          f"http://127.0.0.1:8080/v1.")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 0 < port < 65536:
        raise ExpandError(f"The LLM base URL '{public_url(url)}' has no valid port (a port is a number "
                          f"from 1 to 65535); give a base URL such as http://127.0.0.1:8080/v1.")
    return url.rstrip("/")


def public_url(url: str) -> str:
    """``url`` without credentials or query string, safe to print and to record."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "(an unreadable URL)"
    # the port as written, even when it is not a valid number (it says what was wrong)
    host = f"[{host}]" if ":" in host else host
    port = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    if port:
        host = f"{host}:{port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def endpoint_info(base_url: str | None, model: str) -> dict:
    """What a run records about the LLM: model name and endpoint URL, never the key."""
    return {"llm_model": model, "endpoint": public_url(resolve_base_url(base_url))}


def _api_key(url: str, api_key: str | None) -> str:
    key = api_key or os.environ.get("OPENAI_API_KEY") or ""
    if key.strip():
        return key.strip()
    if (urlsplit(url).hostname or "").endswith("api.openai.com"):
        raise ExpandError("No API key was found for OpenAI; set OPENAI_API_KEY, or pass "
                          "--llm-base-url to use a local OpenAI-compatible server.")
    return PLACEHOLDER_KEY


def read_system_prompt(value: str) -> str:
    """The system prompt itself, or the contents of a file when ``value`` is ``@path``."""
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            value = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as err:
            raise ExpandError(f"The system prompt file {path} could not be read as UTF-8 text "
                              f"({type(err).__name__}).") from None
    if not value.strip():
        raise ExpandError("The system prompt is empty.")
    return value.strip()


# ---------------------------------------------------------------------------------------
# Answers

def strip_controls(text: str, keep_lines: bool = False) -> str:
    """``text`` without terminal escape sequences and control or direction-override characters.

    An LLM's answer is shown in a terminal, used as a prompt and stored in run.json: ESC
    sequences could rewrite the terminal, BEL ring it, NUL cut a file name, and a right-to-left
    override make a caption read as something else. Tabs become spaces, and so do line breaks
    unless ``keep_lines``; the zero-width joiners that emoji sequences need are kept.
    """
    out = []
    for c in _ESCAPES.sub("", text):
        if c in "\n\r" and keep_lines:
            out.append("\n")
        elif c in "\t\n\r\v\f":
            out.append(" ")
        elif c in KEPT_FORMAT or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co"):
            out.append(c)
    return "".join(out)


def _clean_caption(text: str) -> str:
    """One line of caption: controls, reasoning blocks, a 'Here is...:' lead-in and quotes removed."""
    text = _THINK.sub("", strip_controls(text, keep_lines=True)).strip()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]
    text = " ".join(" ".join(lines).split())
    text = re.sub(r"^(caption|expanded prompt)\s*:\s*", "", text, flags=re.IGNORECASE)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'“”":
        text = text[1:-1].strip()
    return text.strip("“”").strip()


def _snippet(text: str, limit: int = 100) -> str:
    text = " ".join(strip_controls(str(text)).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _captions_from_body(body: bytes, url: str) -> list[str]:
    """Caption texts from one chat-completions response body; raises on anything unusable."""
    try:
        data = json.loads(body)
        choices = data["choices"]
        if not isinstance(choices, list) or not choices:
            raise TypeError
        messages = [(c["message"], c.get("finish_reason")) for c in choices]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):   # RecursionError: nested absurdly
        raise ExpandError(f"The LLM server at {public_url(url)} sent a reply that is not "
                          f"chat-completions JSON.") from None
    captions = []
    for message, finish in messages:
        if not isinstance(message, dict):
            raise ExpandError(f"The LLM server at {public_url(url)} sent a reply that is not "
                              f"chat-completions JSON.")
        refusal = message.get("refusal")
        if refusal:
            raise ExpandError(f"The LLM refused to expand this prompt (it said: \"{_snippet(refusal)}\").")
        if finish == "content_filter":
            raise ExpandError("The LLM refused to expand this prompt (its content filter stopped the answer).")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise ExpandError("The LLM answered with something other than text.")
        caption = _clean_caption(content or "")
        if not caption:
            raise ExpandError("The LLM answered with an empty caption.")
        if _REFUSAL.match(caption):
            raise ExpandError(f"The LLM refused to expand this prompt (it said: \"{_snippet(caption)}\").")
        captions.append(caption)
    return captions


# ---------------------------------------------------------------------------------------
# Requests

def _status_error(err, url: str, key: str) -> ExpandError:
    status = err.status_code
    where = f"The LLM server at {public_url(url)}"
    if status == 401:
        return ExpandError(f"{where} refused the API key (HTTP 401); check OPENAI_API_KEY.", status)
    if status == 403:
        return ExpandError(f"{where} denied access (HTTP 403); the key may lack permission for "
                           f"this model.", status)
    # Servers may quote the request back; the key must not travel on in our message.
    detail = _snippet(_error_detail(err).replace(key, "***"), 200)
    if status == 404:
        return ExpandError(f"{where} answered HTTP 404 ({detail}); check --llm-model, and that the "
                           f"base URL ends where the API starts (often /v1).", status)
    return ExpandError(f"{where} answered HTTP {status} ({detail}).", status)


def _error_detail(err) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        msg = inner.get("message") if isinstance(inner, dict) else inner
        if msg:
            return str(msg)
    try:
        return err.response.text.strip() or "no details"
    except Exception:  # noqa: BLE001  (a body that cannot be read is no detail)
        return "no details"


def _retry_delay(err, attempt: int) -> float:
    """Seconds to wait: the server's Retry-After when short, else exponential backoff."""
    delay = RETRY_BACKOFF * (2 ** attempt)
    response = getattr(err, "response", None)
    header = response.headers.get("retry-after") if response is not None else None
    try:
        if header is not None:
            delay = float(header)
    except ValueError:
        pass
    return max(0.0, min(delay, 10.0))


def _attempts(count: int) -> str:
    return f"{count} attempt{'s' if count != 1 else ''}"


class _Deadline(Exception):
    """One attempt passed its deadline; ``answering``: the server had begun its reply."""

    def __init__(self, answering: bool):
        super().__init__()
        self.answering = answering


def _attempt(openai, url: str, key: str, payload: dict, timeout: float) -> bytes:
    """One chat completion that ends within ``timeout`` seconds, whatever the server does.

    The HTTP client's own timeout bounds each read, so a server trickling its reply a byte at
    a time could hold a request for minutes. The request runs in a worker thread instead,
    and is abandoned (its connection closed) when the deadline passes.
    """
    answering = threading.Event()
    http_client = None
    factory = getattr(openai, "DefaultHttpxClient", None)
    if factory is not None:  # to tell "no answer" from "an answer too slow to finish"
        try:
            http_client = factory(event_hooks={"response": [lambda response: answering.set()]})
        except TypeError:
            http_client = None
    client = openai.OpenAI(api_key=key, base_url=url, timeout=timeout, max_retries=0, http_client=http_client)
    outcome: dict = {}

    def work():
        try:   # read as a stream, so a reply past MAX_REPLY_BYTES is never held in memory
            with client.chat.completions.with_streaming_response.create(**payload) as raw:
                chunks, size = [], 0
                for chunk in raw.iter_bytes():
                    size += len(chunk)
                    if size > MAX_REPLY_BYTES:
                        raise ExpandError(f"The LLM server at {public_url(url)} sent a reply of more than "
                                          f"{MAX_REPLY_BYTES // 2**20} MB; a few captions take a few kB.")
                    chunks.append(chunk)
            outcome["body"] = b"".join(chunks)
        except BaseException as err:  # noqa: BLE001  (handed to the caller's thread)
            outcome["error"] = err

    worker = threading.Thread(target=work, name="clipxai-llm-request", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        try:
            client.close()  # the worker, still reading, fails and ends
        except Exception:  # noqa: BLE001  (closing is best effort)
            pass
        raise _Deadline(answering.is_set())
    client.close()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["body"]


def _request(openai, url: str, key: str, payload: dict, timeout: float, retries: int,
             timeout_advice: str) -> bytes:
    """One chat completion with bounded retries on transient failures; the raw body."""
    where = f"The LLM server at {public_url(url)}"
    for attempt in range(retries + 1):
        try:
            return _attempt(openai, url, key, payload, timeout)
        except _Deadline as late:
            if attempt == retries:
                what = (f"began answering but had not finished within {timeout:g} s" if late.answering
                        else f"did not answer within {timeout:g} s")
                raise ExpandError(f"{where} {what} ({_attempts(retries + 1)}); {timeout_advice}.") from None
            err = None
        except openai.APITimeoutError:
            if attempt == retries:
                raise ExpandError(f"{where} did not answer within {timeout:g} s ({_attempts(retries + 1)}); "
                                  f"{timeout_advice}.") from None
            err = None
        except openai.APIConnectionError:
            if attempt == retries:
                raise ExpandError(f"{where} could not be reached ({_attempts(retries + 1)}); check "
                                  f"--llm-base-url and that the server is running.") from None
            err = None
        except openai.APIStatusError as status_err:
            transient = status_err.status_code == 429 or status_err.status_code >= 500
            if not transient or attempt == retries:
                raise _status_error(status_err, url, key) from None
            err = status_err
        time.sleep(_retry_delay(err, attempt))
    raise AssertionError("unreachable")


def _import_openai():
    try:
        import openai  # noqa: PLC0415  (an optional extra)
    except ImportError:
        raise ExpandError('Prompt expansion needs the openai package; install it with '
                          'pip install -e ".[expand]".') from None
    return openai


def _same(a: str, b: str) -> bool:
    return a.casefold().rstrip(".") == b.casefold().rstrip(".")


def expand_prompt(prompt: str, *, n: int = 1, model: str = DEFAULT_LLM_MODEL,
                  base_url: str | None = None, api_key: str | None = None,
                  system_prompt: str = DEFAULT_SYSTEM_PROMPT, timeout: float = 30.0,
                  retries: int = 2, temperature: float = DEFAULT_TEMPERATURE,
                  timeout_advice: str = TIMEOUT_ADVICE) -> list[str]:
    """``n`` distinct visual captions for ``prompt`` from a chat-completions endpoint.

    Servers that ignore ``n`` (llama.cpp, Ollama) or reject it are asked again, one caption
    at a time, until ``n`` distinct captions are in hand or a bounded number of calls is spent.
    ``timeout`` is a deadline for each attempt, the whole answer included; ``timeout_advice``
    ends the message of a missed deadline (what the caller's user can do about it).
    """
    if not prompt or not prompt.strip():
        raise ExpandError("The prompt to expand is empty.")
    if n < 1:
        raise ExpandError(f"The number of captions must be at least 1, not {n}.")
    if not 0 < timeout <= MAX_TIMEOUT:   # also refuses nan
        raise ExpandError(f"The timeout must be more than 0 and at most {MAX_TIMEOUT:g} s, not {timeout:g} s.")
    if not 0 <= temperature <= 2:
        raise ExpandError(f"The temperature must be between 0 and 2, not {temperature:g}.")
    if retries < 0:
        raise ExpandError(f"The number of retries cannot be negative ({retries}).")
    if not model or not model.strip():
        raise ExpandError("The LLM model name is empty.")
    if not system_prompt or not system_prompt.strip():
        raise ExpandError("The system prompt is empty.")
    url = resolve_base_url(base_url)
    key = _api_key(url, api_key)
    openai = _import_openai()

    messages = [{"role": "system", "content": system_prompt.strip()},
                {"role": "user", "content": prompt.strip()}]
    captions: list[str] = []
    ask_many = n > 1
    calls, max_calls = 0, 2 * n + 1
    while len(captions) < n and calls < max_calls:
        payload = {"model": model, "messages": messages, "temperature": temperature}
        if ask_many and n - len(captions) > 1:
            payload["n"] = n - len(captions)
        calls += 1
        try:
            body = _request(openai, url, key, payload, timeout, retries, timeout_advice)
        except ExpandError as err:
            if "n" not in payload or err.status not in (400, 422):
                raise
            ask_many = False  # e.g. llama.cpp: "Only one completion choice is allowed"
            continue
        for caption in _captions_from_body(body, url):
            if len(captions) < n and not any(_same(caption, c) for c in captions):
                captions.append(caption)
    if len(captions) < n:
        raise ExpandError(f"The LLM gave only {len(captions)} distinct caption(s) of the {n} asked "
                          f"for in {calls} requests; ask for fewer, or raise the sampling temperature "
                          f"(clipxai expand --temperature).")
    return captions


# ---------------------------------------------------------------------------------------
# CLI
