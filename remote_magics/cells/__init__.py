"""What travels for one cell, on the notebook's side, whatever kind of target runs it.

- :mod:`.capture`: the cell's AST: the names it reads, binds and deletes, its last expression.
- :mod:`.runner`: a run request from a cell and a namespace, and its reply back into names.
- :mod:`.proxy`: :class:`~.proxy.RemoteObject`, for values that stay remote, with its operators;
  :mod:`.live` sends one operation on it.
- :mod:`.display`: the remote output shown in the notebook, and progress bars.
- :mod:`.lookup`: the notebook's answer to a running cell's ask for a name it was not given.
- :mod:`.local_cell`: a ``%%local`` cell of the remote kernel: the engine's names it reads in,
  what it bound or changed back.

Below :mod:`remote_magics.targets`: a :class:`~remote_magics.targets.base.Target` runs cells
with these, and hands itself in as the object that sends requests and releases proxies.
"""
