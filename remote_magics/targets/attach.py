"""Attached targets: a running Jupyter kernel, reached through its connection file.

The engine is installed into it by one ``execute_request`` (shipped as source when
``remote_magics`` is not importable there); the kernel is left running when we disconnect.
"""
from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, Callable

from ..client.connection import Connection
from ..errors import RemoteMagicsError
from .base import FILE_SCHEME, Kind, Target, register_kind


def pid_status(pid: int) -> Callable[[], str | None]:
    """For a kernel process on this machine that we did not start: 'unknown' once it is gone."""
    def status() -> str | None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return "unknown"
        except PermissionError:  # exists, owned by someone else
            return None
        try:  # a dead child of some other process lingers as a zombie until reaped
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rpartition(")")[2].split()[0] in ("Z", "X"):
                    return "unknown"
        except OSError:
            pass
        return None
    return status


def attach(spec: str, name: str, *, timeout: float) -> Target:
    """A target on the running kernel whose connection file ``spec`` names."""
    path = connection_file(spec)
    try:
        info = json.loads(Path(path).read_text())
        info["shell_port"], info["key"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RemoteMagicsError(
            f"cannot read the connection file {path}: {err}. Give the path of a running "
            "kernel's connection file (jupyter --runtime-dir lists them).") from None
    conn = Connection(info, name=name)
    target = Target(name, conn, spec=str(path))
    target.ready(timeout, install=True, launched=False)
    local_ip = str(info.get("ip", "")).startswith("127.") or info.get("transport") == "ipc"
    if local_ip and target.details.get("hostname") == socket.gethostname():
        conn.set_exit_status(pid_status(int(target.details["pid"])))
    return target


def connection_file(spec: str) -> str:
    """The path of the connection file ``spec`` names: a path, or a name Jupyter finds."""
    if os.path.exists(spec):
        return spec
    try:
        from jupyter_client import find_connection_file

        return find_connection_file(spec)
    except OSError:
        raise RemoteMagicsError(
            f"no connection file found for '{spec}'. Give the path of a running kernel's "
            "connection file (jupyter --runtime-dir lists them).") from None


def start(spec: str, name: str, *, timeout: float, **options: Any) -> tuple[list[Target], None]:
    """The kernel of the connection file ``spec``, as one target (it cannot be multiplied)."""
    return [attach(spec, name, timeout=timeout)], None


register_kind(Kind(FILE_SCHEME, start))
