"""The engine: everything that runs in the remote kernel, and on an ssh host to start one.

Shipped as source into kernels that lack remote_magics (with :mod:`remote_magics.wire`), so every
module here imports only the standard library, cloudpickle, ipykernel (and ZeroMQ, ipykernel's
own dependency, for :mod:`.curve`) and the wire format.

- :mod:`.core`: the :class:`~.core.Engine`, our shell handlers in an ipykernel kernel.
- :mod:`.store`: the objects that stay remote, per client.
- :mod:`.live`, :mod:`.channels`: live proxy operations, and the cell's end of a channel.
- :mod:`.lookup`: fetch on first use: a run's builtins that ask the notebook for a name the
  cell reads and was not given.
- :mod:`.interactive`: which statements of a cell show their values (IPython's
  ``ast_node_interactivity``).
- :mod:`.caches`: caches of cell functions (``@lru_cache``) that last from run to run.
- :mod:`.forking`: a ``multiprocessing`` pool an earlier cell made gets the cells' functions.
- :mod:`.settings`: process settings the notebook and the engine share (recursion limit,
  print and display options), as one process has them.
- :mod:`.jobs`: detached jobs, run on a thread of the engine, their output and names kept.
- :mod:`.persist`: a persistent engine's state on its host (record, saved results), its idle end.
- :mod:`.namespace`: the kernel's own names as the remote kernel's state, out to a ``%%local``
  cell and back.
- :mod:`.tasks`: functions the client runs remotely (file mirroring, pip, map chunks).
- :mod:`.host`: an engine kernel as a child process, its ports and connection file (``serve``
  and the host side of ssh targets), and persistent engines found or started.
- :mod:`.curve`: who may connect to an engine served with CurveZMQ (ZAP), and the client key
  pair made from the connection key.
- :mod:`.launching`: an ipykernel application whose failed start (a port taken) ends the
  process at once; the remote kernel (:mod:`remote_magics.kernel`) starts so too.

``python -m remote_magics.engine -f CONNECTION_FILE`` starts an engine kernel.
"""
