"""A loopback address of a test's own, for a listener that counts who connects.

Other tests' ZeroMQ sockets reconnect, on their own, to the 127.0.0.1 ports of kernels that
have gone; a test listener given such a port by the system then meets them (a job waiting at a
meeting never got its word, a listener counted a refused stranger too many: CI, stop 41). An
address of 127.0.0.0/8 that nothing else uses cannot be reached that way.
"""
from __future__ import annotations

import random


def lonely_address() -> str:
    """A random loopback address other than 127.0.0.1 (Linux routes all of 127.0.0.0/8 to lo)."""
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
