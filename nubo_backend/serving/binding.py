"""The listening socket, bound before Sanic starts: a bad port or a port in use becomes one
line naming it (not a traceback after "listening"), and `--port 0` learns its real port."""

from __future__ import annotations

import errno
import socket


class BindError(Exception):
    """The server cannot listen where asked; the message names the address and the fix."""


def bind_listener(host: str, port: int, backlog: int = 1024) -> socket.socket:
    if not 0 <= port <= 65535:
        raise BindError(f"port {port} is out of range: use 1-65535, or 0 for any free port")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BindError(f"cannot bind {host}:{port}: {exc.strerror}; set --host or NUBO_HOST") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise BindError(_explain(host, port, exc)) from None
    sock.set_inheritable(True)
    return sock


def _explain(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port} on {host} is already in use: stop what listens there "
            f"(`ss -ltnp 'sport = :{port}'`) or choose another with --port / NUBO_PORT"
        )
    if exc.errno == errno.EACCES:
        return f"port {port} on {host} needs privileges: use a port above 1023"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine: set --host / NUBO_HOST (127.0.0.1 or 0.0.0.0)"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"


def bound_port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])
