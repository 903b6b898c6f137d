"""Is a TCP port free to serve on? Asked before a server's slow start-up, not after it."""

from __future__ import annotations

import contextlib
import socket


def port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be bound now (None: it can): taken, not this machine's
    address, or a host name that does not resolve.

    Binds with SO_REUSEADDR like the servers do, so a port that only lingers in TIME_WAIT
    after an earlier run counts as free; a port another process listens on does not.
    """
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [::1]
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with contextlib.closing(socket.socket(family, kind, proto)) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:  # socket.gaierror is one too
        return exc.strerror or str(exc)
    return None
