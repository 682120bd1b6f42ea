# Copyright (c) mmsfc contributors. All rights reserved.
"""Launching multi-process commands in tests, on a free local port."""
import re
import socket
import subprocess
from typing import Callable, List

#: How torch's TCPStore reports a port taken between choosing and binding it.
_PORT_TAKEN = re.compile(r'EADDRINUSE|address already in use', re.IGNORECASE)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now (another process may take it later)."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def run_on_free_port(command: Callable[[int], List[str]], attempts: int = 3,
                     **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run(command(port), capture_output=True, text=True, **kwargs)``.

    The port comes from :func:`free_port`; if the run fails because the port
    was taken in between (the launcher's store reports ``EADDRINUSE``), it is
    run again on a new port, up to ``attempts`` times in all.

    Args:
        command (Callable[[int], list[str]]): The command line for a port.
        attempts (int): Runs at most. Defaults to 3.
        **kwargs: Passed to :func:`subprocess.run` (``cwd``, ``env``,
            ``timeout``...); ``env`` may be a callable of the port too.

    Returns:
        subprocess.CompletedProcess: The last run.
    """
    env = kwargs.pop('env', None)
    for _ in range(attempts):
        port = free_port()
        result = subprocess.run(command(port), capture_output=True, text=True,
                                env=env(port) if callable(env) else env, **kwargs)
        if result.returncode == 0 or not _PORT_TAKEN.search(result.stderr or ''):
            break
    return result
