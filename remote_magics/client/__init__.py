"""One connection to an engine, from the notebook's side.

- :mod:`.connection`: the ZeroMQ sockets of one kernel, signed messages, requests in flight
  (:class:`~.connection.Pending`, :func:`~.connection.wait_all`), the heartbeat.
- :mod:`.handshake`: waiting until a kernel answers, and installing the engine into a plain
  ipykernel by shipping its source (zero install).
"""
