"""The viewer's web application: four pages, a small JSON API, frames, and files under the root.

Pages are static HTML from the package with two values filled in: this server's random
token and whether it is read-only. Requests that change something (start, cancel) must
carry the token in the ``X-Clipxai-Token`` header; another site can neither read the token
(same-origin policy) nor send that header without a preflight this server never grants.
A Host check refuses DNS-rebinding attempts on a loopback server, and a strict
Content-Security-Policy forbids inline script, so text from a run can never become code.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import mimetypes
import re
import secrets
from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from clipxai.errors import ClipxaiError
from clipxai.runs.reader import default_run_name
from clipxai.view.catalog import Catalog, run_facts
from clipxai.view.frames import frame_png, projection
from clipxai.view.hosts import LOOPBACK_HOSTS, host_name, origin_allowed
from clipxai.view.jobs import Jobs, ascend_argv
from clipxai.view.metrics import MetricsTail
from clipxai.view.paths import inside
from clipxai.view.summary import analysis_view

STATIC = Path(__file__).parent / "static"
PAGE_DIR = Path(__file__).parent / "pages"
PAGES = {"/": "runs.html", "/run": "run.html", "/compare": "compare.html", "/start": "start.html"}
SERVED_TYPES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".json", ".jsonl", ".csv", ".txt", ".md"}
TEXT_TYPES = {".json": "application/json", ".jsonl": "text/plain", ".csv": "text/plain", ".txt": "text/plain",
              ".md": "text/plain"}
MAX_BODY = 64 * 1024               # bytes of a start or cancel request; a larger one is refused (413)
FALLBACK_PRESETS = ["default", "zer0int"]
FALLBACK_MODELS = ["toy", "toy-b", "random:tiny", "ViT-B/32", "ViT-B/16", "ViT-L/14"]
MAX_STEPS = 1_000_000
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


class SecurityHeaders:
    """Adds the security headers to every response and refuses Host headers not in ``hosts`` (None: any)."""

    def __init__(self, app, hosts: tuple[str, ...] | None):
        self.app = app
        self.hosts = None if hosts is None else tuple(host_name(h) for h in hosts)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.hosts is not None:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if host_name(host) not in self.hosts:
                return await Response("Unknown Host header.", status_code=400)(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                headers += [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                            (b"referrer-policy", b"no-referrer"), (b"content-security-policy", CSP.encode()),
                            (b"cross-origin-resource-policy", b"same-origin")]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it passes ``limit`` bytes (read no further: a huge body is never held)."""
    declared = request.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _not_found(what: str = "Not found.") -> JSONResponse:
    return JSONResponse({"error": what}, status_code=404)


def _damaged(problem: str) -> JSONResponse:
    """409: the run is there but the array this request needs cannot be read (its one sentence)."""
    return JSONResponse({"error": problem, "status": "damaged"}, status_code=409)


def _int(value: str | None, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    if not re.fullmatch(r"-?\d{1,9}", value):
        raise ValueError(value)
    return int(value)


def choices() -> dict:
    """Model names and presets the start form suggests (a fixed list when the engine cannot be imported)."""
    models, presets = list(FALLBACK_MODELS), list(FALLBACK_PRESETS)
    with contextlib.suppress(Exception):
        from clipxai.models.load import list_models  # noqa: PLC0415
        models = list_models()
    with contextlib.suppress(Exception):
        from clipxai.ascent.config import list_presets  # noqa: PLC0415
        presets = list_presets()
    return {"models": models, "presets": presets}


def create_app(root: str | Path, *, read_only: bool = False, token: str | None = None,
               hosts: tuple[str, ...] | None = LOOPBACK_HOSTS) -> Starlette:
    """The viewer of the runs under ``root``; ``hosts`` are the Host names accepted (None: any)."""
    viewer = Viewer(Path(root).resolve(), read_only=read_only, token=token or secrets.token_urlsafe(32))
    viewer.hosts = hosts
    app = Starlette(routes=viewer.routes(), lifespan=viewer.lifespan)
    app.state.token, app.state.jobs, app.state.root = viewer.token, viewer.jobs, viewer.root
    app.add_middleware(SecurityHeaders, hosts=hosts)
    return app


class Viewer:
    """What the routes of one viewer share: the root and its catalog, the runs it started, its token,
    and what it computed once (the start form's choices, each run's 2-D map)."""

    def __init__(self, root: Path, *, read_only: bool, token: str):
        self.root, self.read_only, self.token = root, read_only, token
        self.catalog = Catalog(root)
        self.jobs = Jobs()
        self.metrics = MetricsTail(self.catalog.contains)
        self.cached_choices: dict = {}
        self.maps: dict[str, tuple] = {}      # run id -> (the Run it was computed for, its 2-D map)
        self.hosts: tuple[str, ...] | None = LOOPBACK_HOSTS   # the Host names answered (an Origin must name one)

    def routes(self) -> list:
        return [Route(p, self.page) for p in PAGES] + [
            Route("/api/runs", self.api_runs), Route("/api/run", self.api_run), Route("/api/frame", self.api_frame),
            Route("/api/projection", self.api_projection), Route("/api/options", self.api_options),
            Route("/api/start", self.api_start, methods=["POST"]),
            Route("/api/cancel", self.api_cancel, methods=["POST"]),
            Route("/files/{path:path}", self.files),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        """On shutdown, stop the runs this viewer started (each stays resumable) and say how to resume one."""
        yield
        stopped = self.jobs.shutdown()
        if stopped:
            print(f"Stopped {len(stopped)} run(s) started here; each is resumable: "
                  f"clipxai ascend --resume {self.root / stopped[0]}")

    def page(self, request: Request) -> Response:
        html = (PAGE_DIR / PAGES[request.url.path]).read_text(encoding="utf-8")
        html = html.replace("{{TOKEN}}", self.token).replace("{{READ_ONLY}}", "1" if self.read_only else "0")
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    def api_runs(self, request: Request) -> Response:
        """Every run's row; with ``limit`` (and ``offset``) one page of them, newest first (the runs
        page's first paint), and ``total``, the number of runs in all."""
        try:
            limit, offset = _int(request.query_params.get("limit")), _int(request.query_params.get("offset"), 0)
        except ValueError:
            return JSONResponse({"error": "limit and offset must be whole numbers."}, status_code=400)
        if limit is not None and (limit < 0 or offset < 0):
            return JSONResponse({"error": "limit and offset must be 0 or more."}, status_code=400)
        rows = self.catalog.rows(newest_first=limit is not None)
        total = len(rows)
        if limit is not None:
            rows = rows[offset:offset + limit]
        return JSONResponse({"root": str(self.root), "read_only": self.read_only, "runs": rows, "total": total},
                            headers={"Cache-Control": "no-store"})

    def api_run(self, request: Request) -> Response:
        run_id = request.query_params.get("id", "")
        run = self.catalog.run(run_id)
        job = self.jobs.get(run_id)
        if run is None:
            if job is not None:
                return JSONResponse({"id": run_id, "pending": True, "job": job.to_dict()})
            return self._no_run(run_id)
        try:
            steps = [int(s) for s in self.catalog.array(run, "steps")] if run.n else []
        except (ClipxaiError, TypeError):
            steps = []
        summary = self.catalog.summary(run)
        analysis = analysis_view(summary, steps)
        if analysis:
            analysis["figures"] = self._figure_urls(run_id, analysis["figures"])
        return JSONResponse({
            "id": run_id, "name": run.path.name, "path": str(run.path), **run_facts(run), "steps": steps,
            "metrics": self.metrics.series(run), "analysis": analysis,
            "job": job.to_dict() if job else None, "read_only": self.read_only,
        }, headers={"Cache-Control": "no-store"})

    def _no_run(self, run_id: str) -> JSONResponse:
        """404 for a name that is no run; 409 with its one sentence for a run whose manifest is damaged."""
        folder = self.catalog.folder(run_id)
        problem = self.catalog.problem(folder) if folder is not None else None
        if problem is None:
            return _not_found("No such run.")
        return JSONResponse({"error": problem, "status": "corrupt"}, status_code=409)

    def _figure_urls(self, run_id: str, figures: dict) -> dict:
        prefix = "" if run_id == "." else run_id + "/"
        out = {}
        for name, rel in figures.items():
            path = f"{prefix}analysis/{rel}"
            if inside(self.root, path) is not None:
                out[name] = "/files/" + quote(path)
        return out

    def api_frame(self, request: Request) -> Response:
        try:
            index = _int(request.query_params.get("i"), -1)
            size = _int(request.query_params.get("size"))
        except ValueError:
            return _not_found("Bad frame index or size.")
        run_id = request.query_params.get("id", "")
        run = self.catalog.run(run_id)
        if run is None:
            return self._no_run(run_id)
        images, problem = self.catalog.array_or_problem(run, "images")
        if problem is not None:
            return _damaged(problem)
        data = frame_png(images, index, size)
        if data is None:
            return _not_found("No such frame.")
        cache = "private, max-age=300" if run.status == "complete" and index >= 0 else "no-cache"
        return Response(data, media_type="image/png", headers={"Cache-Control": cache})

    def api_projection(self, request: Request) -> Response:
        run_id = request.query_params.get("id", "")
        run = self.catalog.run(run_id)
        if run is None:
            return self._no_run(run_id)
        cached = self.maps.get(run_id)
        if cached is None or cached[0] is not run:       # the catalog hands out a new Run when run.json changes
            embeddings, problem = self.catalog.array_or_problem(run, "embeddings")
            if problem is not None:
                return _damaged(problem)
            cached = (run, {**projection(embeddings), "n": run.n})
            self.maps[run_id] = cached
        return JSONResponse(cached[1], headers={"Cache-Control": "no-store"})

    def api_options(self, request: Request) -> Response:
        if not self.cached_choices:
            self.cached_choices.update(choices())
        return JSONResponse({**self.cached_choices, "read_only": self.read_only})

    async def _checked(self, request: Request) -> dict | Response:
        """The JSON body of a state-changing request, or the response refusing it."""
        if not origin_allowed(request.headers.get("origin"), request.headers.get("host", ""), self.hosts):
            return JSONResponse({"error": "This request comes from another site's page (its Origin)."}, status_code=403)
        given = request.headers.get("x-clipxai-token", "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return JSONResponse({"error": "This request needs the page's token (reload the page)."}, status_code=403)
        if self.read_only:
            return JSONResponse({"error": "This viewer is read-only (started with --read-only)."}, status_code=403)
        raw = await _body(request, MAX_BODY)
        if raw is None:
            return JSONResponse({"error": f"The request body is larger than {MAX_BODY} bytes."}, status_code=413)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "The request body must be a JSON object."}, status_code=400)
        return body

    async def api_start(self, request: Request) -> Response:
        body = await self._checked(request)
        if isinstance(body, Response):
            return body
        if not self.cached_choices:   # imports the engine (seconds, once): not on the event loop
            self.cached_choices.update(await run_in_threadpool(choices))
        try:
            prompt, model, preset, steps = _start_fields(body, self.cached_choices["presets"])
        except ValueError as err:
            return JSONResponse({"error": str(err)}, status_code=400)
        name = default_run_name(prompt)
        while (self.root / name).exists() or self.jobs.get(name) is not None:
            name = default_run_name(prompt) + "-" + secrets.token_hex(2)
        try:
            job = self.jobs.start(name, ascend_argv(prompt, model, preset, steps, self.root, name))
        except OSError as err:
            return JSONResponse({"error": f"The run could not be started ({err.strerror or err})."}, status_code=500)
        return JSONResponse({"id": name, "url": "/run?id=" + quote(name), "job": job.to_dict()})

    async def api_cancel(self, request: Request) -> Response:
        body = await self._checked(request)
        if isinstance(body, Response):
            return body
        if not self.jobs.cancel(str(body.get("id", ""))):
            return JSONResponse({"error": "No run started by this viewer is running under that name."},
                                status_code=404)
        return JSONResponse({"ok": True})

    def files(self, request: Request) -> Response:
        path = inside(self.root, request.path_params["path"])
        if path is None or not path.is_file() or path.suffix.lower() not in SERVED_TYPES:
            return _not_found()
        media = TEXT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})


def _start_fields(body: dict, presets: list[str]) -> tuple[str, str, str, int]:
    """The checked prompt, model, preset and steps of a start request (ValueError says what is wrong)."""
    prompt, model, preset = (body.get(k) for k in ("prompt", "model", "preset"))
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("Give a prompt.")
    if len(prompt) > 2000 or any(ord(c) < 32 for c in prompt):
        raise ValueError("The prompt must be one line of at most 2000 characters.")
    if not isinstance(model, str) or not re.fullmatch(r"[\w.:@/+-]{1,200}", model) or model.startswith("-"):
        raise ValueError("Give a model name (letters, digits and . : @ / + - only).")
    if preset not in presets:
        raise ValueError(f"The preset must be one of {', '.join(presets)}.")
    steps = body.get("steps")
    if isinstance(steps, str) and steps.strip().isdigit():
        steps = int(steps)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"Steps must be a whole number from 1 to {MAX_STEPS}.")
    return prompt, model, preset, steps
