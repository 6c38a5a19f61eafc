"""Which Host and Origin a request to the viewer may name, whatever address it listens on.

A page on another site can point its own DNS name at this machine (DNS rebinding) and then
talk to the viewer as if it were that site; the Host header then names the other site. So
the viewer answers only Host names it knows to be its own: the loopback names, the address
it was bound to, this machine's names and addresses, and what ``--allow-host`` adds. A
state-changing request that carries an Origin must come from one of those names too.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
WILDCARD_HOSTS = ("0.0.0.0", "::", "")      # listening on every address: the names come from the machine


def host_name(host: str) -> str:
    """The host part of a Host header, without port or IPv6 brackets, lower case, no trailing dot."""
    if host.startswith("["):
        host = host[1:].split("]", 1)[0]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.strip().rstrip(".").lower()


def machine_names() -> set[str]:
    """This machine's host names and the addresses they resolve to (an empty set when none resolve)."""
    names: set[str] = set()
    for name in (socket.gethostname(), socket.getfqdn()):
        if not name:
            continue
        names.add(name)
        try:
            names.update(info[4][0] for info in socket.getaddrinfo(name, None))
        except (OSError, UnicodeError):
            pass
    return {host_name(n) for n in names if n}


def allowed_hosts(bind_host: str = "127.0.0.1", extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The Host names a viewer listening on ``bind_host`` answers: loopback, the bound address, the
    machine's own names and addresses, and ``extra`` (``--allow-host``)."""
    names = set(LOOPBACK_HOSTS)
    bound = host_name(bind_host)
    if bound not in WILDCARD_HOSTS:
        names.add(bound)
    if bound not in LOOPBACK_HOSTS:   # reachable from the network: its own names are how others type it
        names |= machine_names()
    names |= {host_name(h) for h in extra if host_name(h)}
    return tuple(sorted(names))


def origin_allowed(origin: str | None, request_host: str, hosts: tuple[str, ...] | None) -> bool:
    """Whether a state-changing request's Origin is the viewer's own page (no Origin: not a browser page).

    It must name the same host and port as the request's Host header, over http or https,
    and that host must be one the viewer answers.
    """
    if origin is None:
        return True
    try:
        parts = urlsplit(origin.strip())
        netloc = parts.netloc.lower()
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not netloc or netloc != request_host.strip().lower():
        return False
    return hosts is None or host_name(netloc) in hosts
