# Copyright (c) mmsfc contributors. All rights reserved.
import socket
import sys

import mmsfc.testing.launch as launch

#: A torch store on the port: fails as torchrun does when the port is taken.
STORE = ('import sys, torch.distributed as dist; '
         'dist.TCPStore("127.0.0.1", int(sys.argv[1]), 1, True); print("bound", sys.argv[1])')


def test_a_taken_port_is_retried_on_a_new_one(monkeypatch):
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        ports = iter([taken_port])
        free_port = launch.free_port
        monkeypatch.setattr(launch, 'free_port', lambda: next(ports, None) or free_port())
        tried = []

        def command(port):
            tried.append(port)
            return [sys.executable, '-c', STORE, str(port)]

        result = launch.run_on_free_port(command, timeout=120)
    assert len(tried) == 2 and tried[0] == taken_port != tried[1]
    assert result.returncode == 0 and result.stdout.split() == ['bound', str(tried[1])]


def test_other_failures_are_not_retried():
    tried = []

    def command(port):
        tried.append(port)
        return [sys.executable, '-c', 'import sys; sys.exit("no such config")']

    result = launch.run_on_free_port(command, timeout=60)
    assert len(tried) == 1 and result.returncode == 1 and 'no such config' in result.stderr
