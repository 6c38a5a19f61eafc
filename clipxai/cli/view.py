"""``clipxai view [DIR]``: serve the runs under DIR to a browser on this machine.

The socket is bound here, before the server starts, so a port in use or a bad host is one
sentence and exit 2, and ``--port 0`` can print the port it really got.
"""

from __future__ import annotations

import contextlib
import errno
import re
import socket
import threading
from pathlib import Path

import click

from clipxai.errors import ClipxaiError
from clipxai.util.extras import require_extra

HOST_NAME = re.compile(r"\[?[A-Za-z0-9_:.-]{1,253}\]?")   # a DNS name or an address; no wildcards, no ports


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (ClipxaiError when it cannot be had)."""
    if not 0 <= port <= 65535:
        raise ClipxaiError(f"The port must be a number from 0 to 65535 (got {port}).")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:   # UnicodeError: a name IDNA cannot encode
        reason = getattr(err, "strerror", None) or "not a valid host name"
        raise ClipxaiError(f"The host '{host}' cannot be used to listen on ({reason}).") from err
    family, kind, proto, _, address = infos[0]
    sock = None
    try:
        # with the TCP protocol named, asyncio sets TCP_NODELAY on each connection; without it a
        # small response waits ~40 ms for a delayed ACK (Nagle)
        sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        if sock is not None:
            sock.close()
        if err.errno == errno.EADDRINUSE:
            raise ClipxaiError(f"Port {port} on {host} is in use; pass --port with another number "
                               f"(0 picks a free one).") from err
        raise ClipxaiError(f"Cannot listen on {host} port {port} ({err.strerror or err}).") from err
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


@contextlib.contextmanager
def serving(app, host: str = "127.0.0.1", port: int = 0):
    """Serve ``app`` from a background thread while the block runs; yields its URL (notebooks, tests)."""
    import uvicorn  # noqa: PLC0415

    sock = bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started and thread.is_alive():
            thread.join(0.01)
        yield url_of(sock).rstrip("/")
    finally:
        server.should_exit = True
        thread.join(60)
        sock.close()


@click.command("view")
@click.argument("directory", default="runs", required=False, metavar="[DIR]")
@click.option("--port", default="8765", show_default=True, metavar="N", help="Port to listen on (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, metavar="ADDRESS",
              help="Address to listen on; anything but this machine's loopback lets others see the runs.")
@click.option("--allow-host", "allow_host", multiple=True, metavar="NAME",
              help="Another Host name the pages may be reached by (a proxy's, a DNS alias); repeatable.")
@click.option("--read-only", is_flag=True, help="Refuse to start or stop runs.")
def view_command(directory, port, host, read_only, allow_host=()):
    """Browse, scrub, compare and start runs in a web browser (runs under DIR, default ./runs)."""
    root = Path(directory).expanduser()
    if not root.exists():
        raise ClipxaiError(f"{root} does not exist; give the folder that holds your runs (clipxai view DIR).")
    if not root.is_dir():
        raise ClipxaiError(f"{root} is not a folder; give the folder that holds your runs (clipxai view DIR).")
    if not str(port).isdigit():
        raise ClipxaiError(f"The port must be a number from 0 to 65535 (got '{port}').")
    for name in allow_host:
        if not HOST_NAME.fullmatch(name):
            raise ClipxaiError(f"--allow-host takes one host name or address, such as runs.example.org "
                               f"(got {name[:80]!r}).")
    require_extra("view", "clipxai view")
    import uvicorn  # noqa: PLC0415

    from clipxai.view.app import create_app  # noqa: PLC0415
    from clipxai.view.hosts import LOOPBACK_HOSTS, allowed_hosts  # noqa: PLC0415

    sock = bind(host, int(port))
    loopback = host in LOOPBACK_HOSTS
    # whatever it listens on, it answers only its own names (DNS rebinding)
    app = create_app(root, read_only=read_only, hosts=allowed_hosts(host, tuple(allow_host)))
    if not loopback:
        click.echo(f"warning: listening on {host}: anyone who can reach this machine can see these runs"
                   + ("" if read_only else " and, with the page open, start runs (consider --read-only)") + ".",
                   err=True)
    click.echo(f"Serving the runs under {root.resolve()} (Ctrl-C to stop):")
    click.echo(url_of(sock), nl=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:   # uvicorn stops cleanly, then passes Ctrl-C on: that is the normal way out
        pass
    click.echo("Stopped.", err=True)
