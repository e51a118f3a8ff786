"""The raw pyzmq peer: a ROUTER on 127.0.0.1 that echoes, takes uploads and serves downloads.

Run as ``python -m benchmarks._zmq_peer``; prints its port on stdout, then serves until "quit".
Requests (multipart, first frame the command): ``echo`` → ``ok``; ``up`` + data frames → ``ok``
once they are all in; ``alloc`` + size → allocates random float64 data of that many bytes;
``down`` → the data as one frame sent with ``copy=False``; ``free``; ``quit``.
"""
from __future__ import annotations

import sys

import numpy as np
import zmq


def main() -> None:
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.linger = 0
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    print(port, flush=True)
    data = None
    while True:
        if not sock.poll(600_000):  # an abandoned peer exits by itself
            break
        ident, command, *frames = sock.recv_multipart(copy=False)
        command = command.bytes
        if command == b"echo":
            sock.send_multipart([ident, b"ok"])
        elif command == b"up":
            del frames
            sock.send_multipart([ident, b"ok"])
        elif command == b"alloc":
            data = None
            count = int(frames[0].bytes) // 8
            data = np.random.default_rng(1).random(count)
            sock.send_multipart([ident, b"ok"])
        elif command == b"down":
            sock.send_multipart([ident, data], copy=False)
        elif command == b"free":
            data = None
            sock.send_multipart([ident, b"ok"])
        elif command == b"quit":
            sock.send_multipart([ident, b"ok"])
            break
    sock.close()
    context.term()
    sys.exit(0)


if __name__ == "__main__":
    main()
