"""The wire protocol between a notebook (the client) and an engine kernel.

Written down once, here; the client and the engine import these names. This module uses the
standard library only, because it is shipped as source into kernels that lack remote_magics.

Every message is an ordinary Jupyter message on the kernel's shell socket (DEALER → ROUTER),
signed by ``jupyter_client.session.Session`` with the connection key. Jupyter's signature does
not cover binary frames, so every message of ours that carries frames also carries
``content["digest"]``: an HMAC-SHA256, with the same key, of the frames' lengths and bytes
(:func:`frames_digest`). A side that finds a wrong digest logs the message and drops it. When
both sides have the ``cryptography`` package, or the ``blake3`` package (both optional: a kernel
without them keeps HMAC-SHA256), they agree in the handshake (``remote_info_request``'s
``digests``, the reply's ``digest_scheme``) on a faster MAC for big frames: AES-256-GMAC, about
twelve times faster (``gm:<nonce><tag>``, a nonce drawn for each digest), else a keyed BLAKE3,
about three times (``b3:<hex>``); a request names it in ``digest_scheme`` so that its reply uses
it too.

Each message is accepted once only. Both sides remember the signatures of the messages they
accepted (:class:`SignatureHistory`: the engine the last :data:`HISTORY_SIZE`, a client the
last 16,384 it received) and drop, with a log line, a message whose signature they accepted
before: a captured message sent again byte for byte (a replay). The engine answers a dropped
request with an ``idle`` status on iopub (parent: the request), so a client waiting on it stops
waiting. Messages that ipykernel dispatches itself (the control channel, and every message in
a kernel we attached to) are checked the same way by Jupyter's ``Session`` and its own history.

Every message of ours that a client sends (requests, their chunks, and channel messages on
control) carries ``content["client"]``: a random token the client makes when it connects
(:attr:`remote_magics.client.connection.Connection.client_secret`) and shares with its
connections on other threads. It travels only in the content of that client's own messages,
which no other client receives; nothing on iopub carries it (iopub shows every message's
parent header, and so the Jupyter session id, to every client holding the key). The engine
scopes objects, uploads under way and channels to it (:func:`client_of`) and drops a message
without it.

Under CurveZMQ (an engine served on a network address), a client's Curve key pair is not its
own: its secret key is made from the connection key
(:func:`remote_magics.engine.curve.client_keys`), and the engine's ZAP handler admits that key
pair and the kernel's own only, on all five sockets: the server's public key alone reads and
reaches nothing.

A frame longer than :data:`STREAM_CHUNK` bytes does not travel inside its message: it is
*streamed* ahead of it, on the same socket, as ``remote_chunk`` messages of at most
:data:`STREAM_CHUNK` bytes each (more for a frame so big that its transfer would otherwise take
more than 512 chunks), so the digests of both sides overlap the transfer and a progress bar can
follow it (:mod:`.streaming`). The message itself then carries an empty placeholder frame at each
streamed index and ``content["streamed"]`` = ``{"transfer": id, "frames": [[index, nbytes],
...]}`` (``id`` a random token), and its ``digest`` covers its frames as sent (placeholders
included) followed by the transfer id encoded as one more frame. Any request or reply of ours on
the shell socket may be streamed, both ways; messages on iopub and control never are.

``remote_chunk`` → and ← (shell; a reply's chunks have the request as parent) ``transfer``,
    ``client`` (→ only), ``index`` (the frame's index in the message), ``offset`` (of this
    chunk in the frame), ``nbytes`` (the frame's size), ``total`` (the message's frames in all,
    for progress), ``digest``: :func:`frames_digest` of the frames ``b"remote_chunk"``, the
    transfer id, then index, offset and nbytes each as 8 bytes little-endian, then the chunk;
    one frame: the chunk.
    A frame's chunks come in order and cover it exactly; a receiver drops a chunk that fails
    its digest or comes out of order, and with it the transfer and the message that claims it.
    No reply. A peer sends one message's chunks, then that message: a chunk of a new transfer
    abandons an unclaimed one, and the engine forgets a client's unclaimed chunks when it
    handles that client's next request.
``remote_chunk_ack`` ← (iopub, parent: a chunk of an upload) ``transfer``, ``index``,
    ``offset``: the engine has taken that chunk (and every one before it); with ``error`` (str)
    when it dropped it. The client keeps at most a few chunks unacknowledged, so an upload
    never piles up in the engine's memory, and shows the acknowledged bytes as its progress;
    it stops waiting for acknowledgements after some seconds without one (a busy kernel).

Over the engine's *data port* instead (:mod:`.dataport`; the reply to ``remote_info_request``
names it in ``data_port``, an int or null, and an ssh target's connection info in its own
``data_port``), a message's frames over :data:`STREAM_CHUNK` go ahead of it on a side TCP
connection the client opened and authenticated (a *link*), and the message carries an empty
placeholder at each such index and ``content["ported"]`` = ``{"transfer": id, "frames":
[[index, nbytes], ...], "digest": digest}``: the digest (AES-GMAC ``gm:<tag>`` under the
transfer id's first 12 bytes as its nonce, keyed BLAKE3 ``b3:<hex>`` or HMAC-SHA256, as agreed)
of the transfer id, the frames' sizes and their bytes, which the
receiver computes as they arrive and compares before it uses them. A request names the client's
open link in ``data_link`` (its id), which lets its reply come that way too; the engine uses a
link only for the client that opened it. Both ways, the bytes go before their message.

Values travel as *items*. An item is one Python object pickled by cloudpickle with protocol 5:
the first frame is the pickle stream, the following ``nframes - 1`` frames are its out-of-band
buffers (numpy arrays, bytes), each a ZeroMQ frame of its own, never copied into the pickle.
Item descriptions (dicts, in the JSON content) appear in the same order as their frames.
In a run request and a run reply, an item of one frame of at most ``serialize.PACK_BYTES``
shares the message's last frame with the other such items (``packed``: true): its description
has ``nframes`` 0 and ``at``, [offset, size] in that frame (a cell reading 1,000 numbers sends
one frame, not 1,000).

Messages (``content`` fields; "→" client to engine, "←" engine to client):

Any request → ``settled`` (optional; see *Settling replies* below), ``release`` (optional: ids
of small values the client decoded, which the engine kept in case it could not: released as the
request arrives, so a cell binding a small value costs no release message of its own).

``remote_run_request`` →
    ``code`` (str, already transformed by IPython), ``inputs`` ([{"name", "nframes"}];
    ``"listed": true`` on one sent only to be listed, left out where it cannot load),
    ``placeholders`` ([names bound to a placeholder so that ``del name`` works; one still bound
    to it at the end does not come back]), ``outputs`` ([names the
    cell may bind]), ``deletes`` ([names the cell may delete]), ``last_expr`` (bool),
    ``star_import`` (bool: the cell does ``from m import *``, so the engine also returns every
    other name the cell bound), ``watch`` ([inputs the cell may change in place: the engine
    digests each one's pickle before and after the run, up to 64 MiB, and returns those that
    changed as outputs marked ``changed``]), ``show_result`` (bool: also format the result
    for display there; its Output then has ``display``: ``{"data", "metadata"}``, a MIME
    bundle, or null when it could not be formatted; only for a result that comes back as a value),
    ``download`` ("all" | "small" | "none"), ``bytes`` (int, the limit for "small"),
    ``cell_id`` (int, names the cell in tracebacks), ``execution_count`` (int, optional: the
    notebook shell's ``execution_count`` while the cell runs, which the cell reads there as
    plainly), ``typed`` (str, optional: the cell body
    as the user typed it, when ``code`` differs from it; the engine names the cell's file by
    it, as ipykernel does), ``lookup`` (bool, optional: the client
    answers ``remote_lookup_request`` while it waits, see below), ``stdin`` (bool, optional:
    the client answers ``remote_input_request`` while it waits, and whether the notebook's
    frontend takes input: see below), ``interactivity`` (optional: the notebook's IPython
    ``ast_node_interactivity``, one of :data:`INTERACTIVITY`, when not the default; the
    engine then shows the values of the statements it names as ``execute_result`` messages
    while the cell runs), ``quiet`` (optional, true: the cell ends with ``;``, so none of its
    statements shows), ``all_names`` (optional, true: the cell looks at every name, ``dir()``,
    and the request holds every name the notebook could send), ``modules`` (optional: the
    input names of the notebook's modules of yours the cell imports, which the engine loads
    as they came and binds under no name), ``settings`` (optional: the process settings the notebook changed since
    the engine last had them, recursion limit, NumPy print options, pandas options...,
    encoded by ``engine.settings.encode``), ``current`` (optional: key → the input name whose
    object is the notebook's current settings object of that key, ``"decimal.context"``:
    ``engine.settings.named_current``; ``"pyplot.figure"``: the figure the notebook's pyplot
    holds open, ``engine.settings.lend_to_pyplot``), ``loaded_modules`` (optional: the
    names of the notebook's modules of yours), ``modules_gone`` (optional: those of them the
    notebook took out of its ``sys.modules`` since the last request, which the engine takes
    out of its own), ``packed``, ``digest``.
    Frames: the inputs' items.
``remote_run_reply`` ←
    ``status`` ("ok" | "error"), ``outputs`` ([Output]), ``result`` (Output or null),
    ``deleted`` ([names]), ``packed``, on error ``ename``, ``evalue``, ``traceback`` ([str,
    ANSI colored]) and, when an input could not be unpickled, ``input`` (its name),
    ``engine_id``, ``digest``; ``settings`` (optional: the process settings the run changed,
    as the request's); ``reset`` (optional, true: the cell ran ``%reset``, so the notebook
    clears its names before binding those the cell bound after it); ``ask_exit`` (optional,
    ``{"keepkernel": bool}``: the cell called ``exit()`` or ``quit()``, which the notebook's
    own exit autocall then does); ``current`` (optional: as the request's, for the engine's
    current settings objects, among the names coming back as values and the inputs);
    ``modules_gone`` (optional: the notebook's modules of yours the cell took out of the
    engine's ``sys.modules``, which the notebook takes out of its own). Frames: the items of
    the outputs whose ``kind`` is "value",
    output order, then the result's.
    An Output is ``{"name", "kind": "value", "nframes", "ref"}`` (downloaded; ``ref`` is the
    remote id under which the engine holds the value until the client releases it, so a value
    that fails to unpickle locally can stay remote) or ``{"name", "kind": "proxy", "ref",
    "reason"}`` (left remote; ``reason`` says why when the policy did not choose it).
    ``ref`` is an object descriptor (:data:`DESCRIPTOR_FIELDS`), plus ``download`` and
    ``bytes``: the policy it was encoded under, which a live proxy's results follow. An
    Output of a run may also have ``changed`` (true: an input the cell changed in place,
    which the client updates in place where it can, so other names for it see the change).
    An error reply also carries the ``outputs``, ``deleted`` and ``packed`` of the names the
    cell bound (or changed) before it failed.
    Both carry ``uploads``: ``{"kept", "dropped", "lost"}`` (tokens), and ``resynced`` (token →
    name: a kept copy the run changed that goes back whole, watched again on both sides). An input's pickle may hold
    big arrays as kept uploads (``serialize.kept_upload(token, ...)``: the engine keeps the
    value for this client under ``token``) and as references to them
    (``serialize.resolve_kept(token)``: no bytes travel). ``kept``: the uploads of this run the
    engine keeps; ``dropped``: kept copies no longer kept (engines of this version send none:
    a copy that changed there is found when a run next refers to it); ``lost``: references the
    engine could not resolve (a copy it no longer keeps, or one that changed: the run did not
    start, and the client sends it again with the bytes). See ``engine/kept.py`` and
    ``cells/uploads.py``.
``remote_fetch_request`` → ``id``.  ``remote_fetch_reply`` ← ``status``, ``nframes``, ``digest``;
    frames: the object's item.
``remote_release_request`` → ``ids`` (a list; an id listed twice is released twice),
    ``uploads`` (optional: tokens of kept uploads to drop).
    ``remote_release_reply`` ← ``status``, ``released`` (int).
``remote_info_request`` → nothing. ``remote_info_reply`` ← ``engine_id``, ``objects`` (count held
    for this client), ``kept`` ([count, bytes] of uploads kept for this client), ``total_objects``, ``pid``, ``hostname``, ``python``, ``python_version``,
    ``cwd``, ``versions`` (:func:`versions`: ``python``, ``cloudpickle``, ``numpy``, each a
    version string or null when absent; the client compares them with its own at connect).

``remote_names_request`` → (the remote kernel, before a ``%%local`` cell) ``names`` ([str]: the
    names the cell may read), ``download``, ``bytes``. ``remote_names_reply`` ← ``status``,
    ``outputs`` ([Output], as in the run reply: each name of the kernel's ``user_ns`` that was
    asked for, by the download policy; IPython's own names such as ``In`` never), ``missing``
    ([names the namespace does not hold]), ``result`` (null), ``deleted`` ([]), ``packed``,
    ``digest``. Frames: as in the run reply.
``remote_bind_request`` → (the remote kernel, after a ``%%local`` cell or a cell of
    ``%remote_*`` magics) ``inputs`` (as in the run request: values to bind in ``user_ns``,
    proxies of this engine resolved), ``packed``, ``changed`` ([names among the inputs that
    the cell changed in place: the kernel's object is updated in place where its type allows,
    so its other names see the change; else bound anew]), ``deletes`` ([names to remove]),
    ``execution_count`` (int or null), ``cell`` (str or null), ``result`` (bool), ``digest``.
    With ``cell``, the kernel records it as ``In[execution_count]`` (a cell that ran in the
    notebook's kernel) and its next cell is ``execution_count + 1``; with ``result``, the last
    input is that cell's result, recorded as ``Out[execution_count]`` and ``_``. Without
    ``cell``, ``execution_count`` is the number its next cell takes (when higher than its
    own). ``remote_bind_reply`` ← ``status``, ``failed`` ([{"name", "error"}]: inputs that
    could not be unpickled there, not bound), ``execution_count`` (the kernel's next).
    The remote kernel also sends Jupyter's own ``execute_request`` (its ordinary cells, run
    by the kernel's IPython shell with ``store_history``), ``complete_request`` and
    ``inspect_request`` to the engine, and relays their output and replies.
``remote_op_request`` → (live proxies) ``id`` (the object), ``op`` (one of :data:`LIVE_OPS`),
    ``name`` (the attribute for getattr/setattr, the operator for binop/unop, e.g. "add",
    "radd", "eq", "neg"), ``nframes`` (0, or the frames of one item: the pickled ``(args,
    kwargs)``, which may hold proxies), ``chunk`` (for "next": how many items), ``download``,
    ``bytes``, ``digest``. ``remote_op_reply`` ← ``status``; ``value`` (JSON) for the ops of
    :data:`JSON_OPS`; else ``output`` (an Output, as in the run reply; a getattr that yields a
    callable always stays remote); for "next" either ``chunk`` (nframes of one item: the list
    of items) or ``items`` ([Output]), and ``done`` (bool); on error as the run reply (a
    call's error reply also carries what the call changed before it raised: ``changed``,
    ``rebound``, ``module_rebound``, their frames after the ``exception``'s). A call's
    request may carry ``loaded_modules`` (the notebook's modules of yours) and
    ``modules_gone`` (as a run's), and its reply
    ``imported`` (``[{"name", "output"}]``: the other modules of yours the call imported first,
    with their state, frames last).
    ``iter`` keeps an iterator remote and returns its proxy; ``next`` takes up to ``chunk``
    items from an iterator's proxy, so iteration costs one round trip per chunk.
    ``enter`` (``with p:``) calls the object's class's ``__enter__``: its result as an
    ``output``, or ``same`` (true) when that is the object itself, or ``lacks`` (the names of
    ``__enter__``/``__exit__`` its class lacks) and ``type`` (its class's name) without a call;
    ``exit`` calls ``__exit__`` with the ``args`` sent (the with-body's exception class and
    exception, or three None) and gives whether it returned true (suppress the exception).
``remote_channel_data`` ← (iopub, parent: the run that holds the channel) ``channel`` (id),
    ``nframes``, ``digest``; frames: one item. ``remote_channel_close`` ← (iopub) ``channel``:
    the remote cell closed it.
``remote_channel_send`` → (control: the shell is busy running the cell) ``channel``,
    ``nframes``, ``digest``, and on the same host ``shared`` (as in a request: frames over
    :data:`STREAM_CHUNK` in sealed segments the engine maps on arrival); frames: one item.
    ``remote_channel_close`` → (control) ``channel``: the notebook closed it.
    ``remote_channel_ack`` → (control) ``channel``, ``count`` (messages received so far): the
    engine keeps at most :data:`CHANNEL_WINDOW` messages (and :data:`CHANNEL_WINDOW_BYTES`)
    unacknowledged, so iopub's queue (1000 messages, beyond which a PUB socket drops) never
    overflows. No replies; the control channel is served by its own thread while the cell
    runs, through the ports and tunnels the connection already has; a kernel we started
    dispatches these three without ipykernel's busy and idle statuses.
``remote_channel_ack`` ← (control, to the socket that sent the messages) ``channel``,
    ``nbytes`` (of the notebook's messages it acknowledges), ``taken`` (the notebook's
    segments among them, mapped here: the notebook closes them): a message is acknowledged on
    arrival while the cell holding the channel has at most :data:`CHANNEL_WINDOW_BYTES` unread
    (else once it reads enough), so the notebook, which keeps at most that many bytes
    unacknowledged, can never fill the engine's memory faster than the cell reads. Before a
    cell holds the channel every message is acknowledged on arrival (the notebook may send
    ahead; it waits in the engine).
``remote_lookup_request`` ← (iopub, parent: the run) ``lookup`` (a random token),
    ``name`` (str): a run whose request had ``lookup`` true read a name that neither its
    namespace nor the builtins hold (fetch on first use: ``eval(name)`` of a computed string,
    ``exec`` of a file); the client that waits for the run looks it up in the notebook's
    namespace. Asked once per name and run: a name found is bound in the run.
    ``remote_lookup_answer`` → (control: the shell is busy running the cell) ``lookup``,
    ``name``, ``found`` (bool), ``nframes``, ``watch`` (bool: the value may change in place, so
    it is watched as an input), ``error`` (str or null: it could not be pickled), ``digest``;
    frames: the value's item. The engine takes the answer only from the run's own client, for
    a lookup it is waiting on, and waits :data:`LOOKUP_TIMEOUT` s at most; not found, the
    cell's NameError is a plain cell's. Detached and ``--async`` jobs, pool members and the
    remote kernel's ``%%remote`` cells never ask (nobody answers there): a plain NameError.
``remote_input_request`` ← (iopub, parent: the run, or an ``execute_request`` whose content
    has ``stdin``) ``ask`` (a random token), ``prompt`` (str), ``password`` (bool): the cell
    called ``input()`` or ``getpass.getpass()`` (ipykernel's ``raw_input``, forwarded while a
    request with ``stdin`` runs, as ipykernel forwards it for ``allow_stdin``). The engine
    flushes the cell's stdout and stderr first, then waits, as ipykernel waits for an
    ``input_reply``, until the answer comes or the run is interrupted. With ``stdin`` false
    the cell gets ipykernel's own StdinNotImplementedError and nothing is asked.
    ``remote_input_answer`` → (control) ``ask``, and ``value`` (str: what the notebook's own
    ``input()`` returned) or ``error`` and ``message`` (the class name and text of what it
    raised: EOFError, KeyboardInterrupt when the notebook was interrupted at the prompt,
    StdinNotImplementedError; the cell raises the same). Taken only from the run's own client.
``remote_page`` ← (iopub, parent: the run) ``data`` (a MIME bundle), ``start`` (int): what
    the cell paged (``x?``, ``%pinfo``); the notebook pages it as a plain cell's help.
``remote_next_input`` ← (iopub, parent: the run) ``text`` (str), ``replace`` (bool): the next
    input the cell set (``%load``, ``get_ipython().set_next_input``); the notebook sets it.
``remote_transfer`` ← (iopub, parent: the request) ``nbytes``, ``direction`` ("upload" once
    a request has arrived, "download" before its reply leaves): for a transfer that passes
    :data:`PROGRESS_BYTES` with no frame streamed, whose progress the client cannot follow
    chunk by chunk, so it can show its size and rate at least.
``remote_log_record`` ← (iopub, parent: the request being handled) ``logger`` (a name, "" for
    the root), ``record`` (a ``logging.LogRecord``'s fields as JSON, its message made): a record
    the engine's stand-in for that logger's notebook handlers took (a log file the notebook
    configured); the notebook's handlers of that logger handle it.

``remote_cell_ran`` ← (iopub, parent: the run) no fields: the cell's code has run and left a
    result to show; what follows is what the kernel's post-execute hooks show (inline figures),
    which a plain cell shows after its result: the notebook shows it after the result too.

``remote_output_done`` ← (iopub, parent: any request of ours) no fields: published behind
    all the output the request made, just before its reply; the client stops relaying there
    instead of waiting for the kernel's idle status, which comes later.

Every request that passes its checks gets its reply, whatever the user's objects raise while it
is handled (a cell, a ``__reduce__``, a property, an exception's ``__str__``; KeyboardInterrupt and
SystemExit included): on error the reply has ``status`` "error", and the engine goes on. A reply's
``traceback`` is IPython's (ANSI coloured); one of more than 100 frames is collapsed (repeated
frames in one line, as IPython shows recursion) and formatted as Python does, so that a deep
RecursionError costs well under a second to describe.

Objects held by the engine are scoped to the client's secret (``content["client"]``, see
above), not to its Jupyter session id, which iopub shows: one client cannot fetch, use or
release another's. Ids are unguessable random tokens. A channel belongs to the client whose run
first reads it (or whose ``remote_channel_send`` first names it); the engine drops the channel
messages of any other client.

*Settling replies.* A reply to a run, an operation or a job collection (:data:`HOLDING_TYPES`) holds objects for
the client (:func:`held_ids`: its Outputs' ``ref`` ids, values included), which the client
learns of only if the reply reaches it. Every request of ours may carry ``settled``: {request
msg_id: bool}, for the earlier holding requests of the same connection that are over: true for
a reply the client received (it now owns those ids and releases them itself), false for one it
gave up on (a second stop, a lost connection, a reply cut short). The engine releases what a
false one's reply held, and forgets both. A connection waits for one request at a time, so its
next request settles every earlier one; nothing a client never saw outlives its next request.
The engine handles a connection's requests in order, so a request that settles another comes
after that one's reply was made.

*Late output.* Threads that a run starts keep the run as the parent of their output (they start
in a copy of its context), and a forked child keeps it too; so output printed after the run's
``remote_output_done`` (between cells, or during a later request) still names the run. A client
relays such output, whose parent is an earlier request of its own connection, with the next
request it waits for, after a one-line marker; it keeps it until a request that shows output.

Detached jobs (``%%remote --detach``) run on a thread of the engine, one after another, beside
the cells on its main thread; the engine keeps each one's output, status and bound names until
a client collects them, whichever client that is. Requests marked (control) go on the kernel's
control channel and are answered there by ipykernel's control thread, also while a cell runs;
their replies carry a ``digest`` (of no frames) like every reply of ours.

``remote_detach_request`` → the fields of ``remote_run_request``, plus ``save`` (bool: write
    the names to disk when it finishes; only on a persistent engine) and ``output_lines`` (int:
    how many entries of output the engine keeps, the newest). Frames: the inputs' items, read
    when the request arrives. ``remote_detach_reply`` ← ``status``, ``job`` (a JobInfo); on
    error as the run reply (an input that cannot be unpickled: nothing was queued).
``remote_jobs_request`` → (control) nothing. ``remote_jobs_reply`` ← ``status``, ``jobs``
    ([JobInfo], by id).
``remote_job_output_request`` → (control) ``job`` (id), ``since`` (the first entry wanted).
    ``remote_job_output_reply`` ← ``status``, ``job`` (JobInfo), ``entries`` ([[seq, kind,
    payload]]: ``kind`` "stdout" or "stderr" with a line of text (its newline included), or
    "display" with a MIME bundle), ``first`` (the oldest seq still kept: the entries before it
    were dropped), ``next`` (the seq the next entry will get), ``partial`` ({"stdout",
    "stderr"}: text printed since the last newline, not an entry yet), ``more`` (bool: ask
    again from ``next`` at once). A client follows a job by asking from its own ``next``.
``remote_job_cancel_request`` → (control) ``job``. ``remote_job_cancel_reply`` ← ``status``,
    ``cancelled`` (bool: it was queued or running), ``job``. A queued job never runs; a running
    one gets KeyboardInterrupt in its thread at its next Python line.
``remote_job_collect_request`` → ``job``. ``remote_job_collect_reply`` ← as
    ``remote_run_reply``: the names the job bound, encoded now for this client by the job's
    download policy (its failure's error fields if it failed). The engine then releases them
    (and their saved copy); a second collect is an error.
    A JobInfo is ``{"id", "first_line", "status" ("queued" | "running" | "done" | "failed" |
    "cancelled"), "submitted", "started", "finished" (Unix times or null), "elapsed" (s),
    "save", "saved" (its names are on disk), "unsaved" ([names that could not be saved]),
    "collected", "dropped" (entries of output dropped), "lines" (entries kept), "error"
    (``{"ename", "evalue", "etype", "traceback"}`` or null)}``.

A *persistent* engine (``%remote_connect ... --persist``) does not end with its notebook or
its ssh connection. It keeps its state in a directory named after the target under Jupyter's
runtime directory on its host (:mod:`remote_magics.engine.persist`): the record (its connection
info and key, mode 0600), which a new client reads to reconnect, and saved job results.

``remote_persist_request`` → ``name`` (the state directory's name), ``idle_timeout`` (seconds,
    or null to keep the engine's): make the engine persistent, or change its idle timeout. It
    ends by itself once no client is connected, no job is queued or running and no request
    ran for ``idle_timeout`` s. ``remote_persist_reply`` ← ``status``, ``persist``
    (PersistInfo: ``name``, ``idle_timeout``, ``state`` (the directory), ``clients``
    (connections to its shell now), ``idle`` (seconds idle so far, or null while in use),
    ``started``); on error ``ename``, ``evalue``.
``remote_shutdown_request`` → (control) nothing: a persistent engine removes its record, its
    saved results and its state directory, then ends at once with every process it started.
    No reply; the client watches the engine go.
``remote_info_reply`` also carries ``persist`` (PersistInfo, or null for an engine that ends
with its notebook) and ``jobs`` (how many detached jobs it holds).

Output produced while a request runs (stdout, stderr, ``display_data``) goes out on iopub with the
request as its parent, as for ``execute_request``; ``remote_output_done`` follows all of it, so the
client relays until it has both the reply and that marker (or, for a request the kernel does not
know, its ``idle`` status). Engines we start (``python -m remote_magics.engine``) handle our
requests on the main thread without ipykernel's busy/idle statuses; a kernel we attach to
publishes them as for any request.
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import re
import secrets
import threading
from typing import Iterable

PROTOCOL_VERSION = 12  # 2: long frames digested piecewise; 3: live ops, channels; 4: output_done;
#                       5: big frames streamed as remote_chunk messages; 6: modules moved into
#                       wire/ and engine/ (pickled references name the new paths); 7: settled
#                       replies, threads keep their run as parent, versions in the info reply;
#                       8: objects scoped to a client secret in the content, replays refused;
#                       9: detached jobs, persistent engines;
#                       10: names and bind requests (the remote kernel's state lives in the
#                       engine); 11: the data port, same-host lends (pull_ok), quiet replies,
#                       releases carried by the next request, channel acknowledgements;
#                       12: a run carries the kept uploads released before it (release_uploads)

RUN_REQUEST = "remote_run_request"
RUN_REPLY = "remote_run_reply"
FETCH_REQUEST = "remote_fetch_request"
FETCH_REPLY = "remote_fetch_reply"
RELEASE_REQUEST = "remote_release_request"
RELEASE_REPLY = "remote_release_reply"
INFO_REQUEST = "remote_info_request"
INFO_REPLY = "remote_info_reply"

NAMES_REQUEST = "remote_names_request"
NAMES_REPLY = "remote_names_reply"
BIND_REQUEST = "remote_bind_request"
BIND_REPLY = "remote_bind_reply"

OUTPUT_DONE = "remote_output_done"
#: A reply field: True when the request made no output at all (proved by the engine), so no
#: ``remote_output_done`` follows and the client finishes on the reply alone.
QUIET = "quiet"
OP_REQUEST = "remote_op_request"
OP_REPLY = "remote_op_reply"

DETACH_REQUEST = "remote_detach_request"
DETACH_REPLY = "remote_detach_reply"
JOBS_REQUEST = "remote_jobs_request"
JOBS_REPLY = "remote_jobs_reply"
JOB_OUTPUT_REQUEST = "remote_job_output_request"
JOB_OUTPUT_REPLY = "remote_job_output_reply"
JOB_CANCEL_REQUEST = "remote_job_cancel_request"
JOB_CANCEL_REPLY = "remote_job_cancel_reply"
JOB_COLLECT_REQUEST = "remote_job_collect_request"
JOB_COLLECT_REPLY = "remote_job_collect_reply"
PERSIST_REQUEST = "remote_persist_request"
PERSIST_REPLY = "remote_persist_reply"
SHUTDOWN_REQUEST = "remote_shutdown_request"
STATUS_REQUEST = "remote_status_request"

#: Our requests on the shell channel (their frames may be streamed).
REQUEST_TYPES = (RUN_REQUEST, FETCH_REQUEST, RELEASE_REQUEST, INFO_REQUEST, OP_REQUEST,
                 DETACH_REQUEST, JOB_COLLECT_REQUEST, PERSIST_REQUEST, NAMES_REQUEST, BIND_REQUEST)
REPLY_TYPES = (RUN_REPLY, FETCH_REPLY, RELEASE_REPLY, INFO_REPLY, OP_REPLY, DETACH_REPLY,
               JOB_COLLECT_REPLY, PERSIST_REPLY, NAMES_REPLY, BIND_REPLY)
#: Our requests on the control channel, answered by the control thread while a cell runs.
CONTROL_REQUEST_TYPES = (JOBS_REQUEST, JOB_OUTPUT_REQUEST, JOB_CANCEL_REQUEST, SHUTDOWN_REQUEST,
                         STATUS_REQUEST)
#: Job statuses; the last three are final.
JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
#: Entries of output a detached job keeps by default (the newest).
JOB_OUTPUT_LINES = 10_000
#: Seconds a persistent engine waits idle, with no client and no job, before it ends: a day.
IDLE_TIMEOUT = 86_400.0
#: Requests whose replies hold objects for the client until it settles them.
HOLDING_TYPES = (RUN_REQUEST, OP_REQUEST, JOB_COLLECT_REQUEST, NAMES_REQUEST)
#: A value the client decoded whose ``ref`` size is at most this is released with the client's
#: next request (its ``release``), not by a message of its own: it costs the engine no memory to
#: speak of meanwhile.
CARRY_RELEASE_BYTES = 64 << 10
#: Unsettled replies an engine remembers at most (a client that never settles cannot grow it).
UNSETTLED_KEEP = 10_000
#: iopub message types that are output, relayed also when they come late.
OUTPUT_TYPES = ("stream", "display_data", "update_display_data", "execute_result", "error")

#: IPython's exit autocall in a cell's namespace: a remote cell that reads one is offered
#: lookups, which the engine answers itself (``engine.lookup.AskExit``: the reply's
#: ``ask_exit``).
EXITS = frozenset({"exit", "quit"})

#: Operations of a live proxy (``remote_op_request``'s ``op``).
LIVE_OPS = ("getattr", "setattr", "delattr", "getitem", "setitem", "delitem", "call", "len",
            "bool", "contains", "iter", "next", "anext", "await", "binop", "unop", "dir", "preview",
            "keys", "str",
            "summary", "enter", "exit")
#: The operations that show the value (``print(p)``, a preview): they run under the notebook's
#: settings, as a call does (`with np.printoptions(precision=2): print(p)`: hunt 39 H39-12).
SHOWING_OPS = frozenset(("str", "preview"))
#: Operations whose result Python needs as a plain local value: returned as JSON, whatever the policy.
JSON_OPS = ("setattr", "delattr", "setitem", "delitem", "len", "bool", "contains", "dir",
            "preview", "keys", "str", "summary", "exit")

CHANNEL_DATA = "remote_channel_data"
CHANNEL_SEND = "remote_channel_send"
CHANNEL_CLOSE = "remote_channel_close"
CHANNEL_ACK = "remote_channel_ack"
#: The channel messages a notebook sends on control.
CHANNEL_CONTROL_TYPES = (CHANNEL_SEND, CHANNEL_CLOSE, CHANNEL_ACK)
#: Messages a remote cell may send ahead of the notebook's acknowledgements.
CHANNEL_WINDOW = 256
#: Bytes a remote cell may send ahead of the notebook's acknowledgements (one message always may).
CHANNEL_WINDOW_BYTES = 64 << 20
#: The notebook acknowledges every this many messages.
CHANNEL_ACK_EVERY = 64
PAGE = "remote_page"
#: The next input a remote cell set (``%load``, ``set_next_input``): ``{"text", "replace"}``.
NEXT_INPUT = "remote_next_input"
LOOKUP_REQUEST = "remote_lookup_request"
LOOKUP_ANSWER = "remote_lookup_answer"
#: Seconds a run waits for the notebook to answer a lookup before the name counts as undefined.
LOOKUP_TIMEOUT = 30.0
INPUT_REQUEST = "remote_input_request"
INPUT_ANSWER = "remote_input_answer"
TRANSFER = "remote_transfer"
LOG_RECORD = "remote_log_record"
#: IPython's history in a namespace: results ``_``, ``__``, ``___``, ``_5``, ``Out``, ``_oh``;
#: inputs ``_i``, ``_ii``, ``_iii``, ``_i5``, ``In``, ``_ih``; directories ``_dh``. A cell reads
#: them from the notebook; they never come back from a run.
HISTORY_NAME = re.compile(r"_{1,3}|_i{1,3}|_i?\d+|In|Out|_[ido]h")
#: The history names that are results (``_``, ``__``, ``___``, ``_5``): the notebook's objects.
RESULT_NAME = re.compile(r"_{1,3}|_\d+")
#: IPython's output cache (``Out`` and ``_oh``, one dict): a cell may change it in place.
OUTPUT_CACHE_NAMES = ("Out", "_oh")
#: The histories ``%reset TARGET`` flushes: a remote cell's flush of one is the notebook's
#: (a run reply's ``flushed`` lists them; the request's ``output_entries`` is how many results
#: the notebook's ``Out`` holds, which ``%reset out`` prints).
FLUSHED_HISTORIES = ("out", "in", "dhist")
#: A run reply's output named ``MODULE_GLOBAL + "module:name"`` is a global the cell rebound in a
#: module of the notebook's own (``confmod.pageDict = {...}``): set there, not in the namespace.
MODULE_GLOBAL = "__remote_magics_module__"
#: A run reply's output named ``IMPORTED + module`` is a module of yours the cell imported first
#: but bound under none of its names (``from m import Thing``, an ``import`` inside a function, one
#: another of your modules imports): the notebook's takes the state the cell left it in, and no
#: name is bound.
IMPORTED = "__remote_magics_imported__"
#: A call's reply names a global of your module the call changed in place among its changed
#: arguments as ``MODULE_KEY + "module:name"`` (``"m:cfgmod:state"``).
MODULE_KEY = "m:"
#: A run reply's output named ``FORMER + name`` is the object the notebook sent under ``name``,
#: which the cell changed in place and then rebound (``current.append(1); current = []``): the
#: notebook's object takes the change, for the names that still hold it; ``name`` is bound as
#: its own output says.
FORMER = "__remote_magics_former__"


def shown_name(name: str) -> str:
    """An output's name as a note shows it: a module's global as ``module.name``."""
    return name[len(MODULE_GLOBAL):].replace(":", ".", 1) if name.startswith(MODULE_GLOBAL) \
        else name
CELL_RAN = "remote_cell_ran"
CHUNK = "remote_chunk"
CHUNK_ACK = "remote_chunk_ack"
#: Frames longer than this (bytes) are streamed ahead of their message, in chunks of this size.
STREAM_CHUNK = 8 << 20
#: Transfers larger than this (bytes) show a progress bar.
PROGRESS_BYTES = 50_000_000

DOWNLOAD_POLICIES = ("all", "small", "none")
#: IPython's ``ast_node_interactivity`` settings (which statements of a cell show their values);
#: ``last_expr``, the first, is IPython's default, which a run request does not name.
INTERACTIVITY = ("last_expr", "all", "last", "none", "last_expr_or_assign")
#: With download "small", values up to this serialized size (bytes) come back by default.
DEFAULT_BYTES = 1 << 20


def check_download(download: str) -> None:
    """Raise ValueError unless ``download`` is one of :data:`DOWNLOAD_POLICIES`."""
    if download not in DOWNLOAD_POLICIES:
        raise ValueError(f"download must be one of {', '.join(DOWNLOAD_POLICIES)}, "
                         f"not {download!r}")


#: A kernel's ports in a connection file, in the order a served engine's URL implies them.
PORT_NAMES = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
#: The engine's data port in a connection file, where one is chosen for it (an ssh target's,
#: which forwards it); None there means none may be used (:mod:`.dataport`).
DATA_PORT = "data_port"


def connection_info(ip: str, key: str, ports: dict, **extra: object) -> dict:
    """A Jupyter connection file's dict: TCP on ``ip``, HMAC-SHA256 with ``key``, ``ports``."""
    return {"transport": "tcp", "ip": ip, "key": key, "signature_scheme": "hmac-sha256",
            **ports, **extra}


def client_of(msg: dict) -> str:
    """The secret of the client that sent ``msg`` ("" if it names none): what scopes its objects.

    Not the Jupyter session id, which every message on iopub shows in its parent header; the
    secret travels only in the content of the client's own messages (shell and control).
    """
    client = msg["content"].get("client")
    return client if isinstance(client, str) else ""


#: Fields of an object descriptor; any but ``id`` and ``type`` may be null. ``globals``: for
#: a function, the global names its code reads or sets (what a run calling it needs).
#: ``iterable`` (for a callable: whether its kind iterates, as an Enum class does) and ``code``
#: (for a function or class: its names, docstring and signature, ``store.code_card``).
DESCRIPTOR_FIELDS = ("id", "type", "len", "shape", "dtype", "size", "size_exact", "globals",
                     "iterator", "async_iterator", "awaitable", "callable", "iterable", "code",
                     "shadows", "descriptor")
#: The public names of a proxy of its own (``p.fetch()``, ``p.shape``): a descriptor's
#: ``shadows`` lists those the remote value has too, and for those the value's own attribute
#: is what the proxy gives, as plainly (``body.target``, a Series' ``dtype``).
PROXY_NAMES = ("fetch", "release", "check", "target", "owner", "type_name", "globals_read",
               "remote_len", "shape", "dtype", "nbytes", "reason")


def versions() -> dict[str, str | None]:
    """This process's versions of what values need on both sides: Python, cloudpickle, numpy."""
    import platform
    import sys

    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("cloudpickle", "numpy"):
        module = sys.modules.get(name)
        version = getattr(module, "__version__", None)
        if version is None:  # not imported: its installed version, without importing it
            import importlib.metadata

            try:
                version = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                version = None
        found[name] = version
    return found


def held_ids(content: dict) -> list[str]:
    """The ids of the objects a reply holds for the client: its Outputs' refs (a run's names
    and result, an operation's output or items), one per Output: an object held twice is listed
    twice."""
    outputs = [*(content.get("outputs") or ()), *(content.get("items") or ()),
               content.get("result"), content.get("output")]
    return [out["ref"]["id"] for out in outputs
            if isinstance(out, dict) and isinstance(out.get("ref"), dict) and out["ref"].get("id")]


def encodable(content: object) -> object:
    """``content`` with each text UTF-8 cannot encode (a lone surrogate: half an emoji from
    ``json.loads('"\\ud83d"')``, in an error's message) written with a backslash escape, so
    that the message carrying it still goes (hunt 26 H26-24: the reply was lost, and the names
    the cell bound with it)."""
    if isinstance(content, str):
        try:
            content.encode("utf-8")
        except UnicodeEncodeError:
            return content.encode("utf-8", "backslashreplace").decode("utf-8")
        return content
    if isinstance(content, dict):
        return {encodable(key): encodable(value) for key, value in content.items()}
    if isinstance(content, (list, tuple)):
        return [encodable(item) for item in content]
    return content


def reply_type(request_type: str) -> str:
    """The reply's message type for a request's message type."""
    return request_type[: -len("_request")] + "_reply"


#: A frame longer than this enters the digest as the SHA-256 of each piece of this size.
DIGEST_CHUNK = 1 << 22

#: What separates a Jupyter message's routing identities from its signature and header.
DELIMITER = b"<IDS|MSG>"

HMAC_SHA256 = "hmac-sha256"
BLAKE3 = "blake3"
_BLAKE3_PREFIX = "b3:"
#: AES-256-GMAC (GCM's MAC over bytes it does not encrypt, NIST SP 800-38D): with AES and
#: carry-less multiply in the CPU, four times BLAKE3's speed on one core (22 against 6 GB/s).
GMAC = "aes-gmac"
_GMAC_PREFIX = "gm:"
_HEX = re.compile("[0-9a-f]+")
#: Bytes a GMAC digest covers before a frames digest takes one (below, HMAC-SHA256 is faster).
GMAC_MIN_BYTES = 1 << 16
#: Bytes given to GMAC per call: it holds the GIL while it runs, so other threads get it between.
_GMAC_PIECE = 1 << 20
#: A digest over at least this many bytes uses BLAKE3's threads (below, starting them costs more).
_BLAKE3_THREADED = 1 << 20


def _blake3_module():
    """The ``blake3`` package, or None: an optional speed-up, never needed (engines are shipped
    into kernels that lack it)."""
    try:
        import blake3  # optional: see digest_schemes
    except ImportError:
        return None
    return blake3


def _gcm_module():
    """``cryptography``'s ciphers, or None: optional as ``blake3`` is."""
    try:
        from cryptography.hazmat.primitives import ciphers  # optional: see digest_schemes
    except ImportError:
        return None
    return ciphers


class Gmac:
    """An AES-256-GMAC of bytes fed in order (:meth:`update`) under a 32-byte key and a 12-byte
    nonce that this key must never see twice (a repeated nonce would give the key away)."""

    def __init__(self, key: bytes, nonce: bytes) -> None:
        ciphers = _gcm_module()
        if ciphers is None:
            raise ValueError("an AES-GMAC digest asked for, but the cryptography package is "
                             "not here")
        self._gcm = ciphers.Cipher(ciphers.algorithms.AES(key),
                                   ciphers.modes.GCM(nonce)).encryptor()

    def update(self, data) -> None:
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        for start in range(0, view.nbytes, _GMAC_PIECE):
            self._gcm.authenticate_additional_data(view[start:start + _GMAC_PIECE])

    def tag(self) -> bytes:
        self._gcm.finalize()
        return self._gcm.tag


def digest_schemes() -> list[str]:
    """The keyed digests this process can make and check, the fastest first."""
    return (([GMAC] if _gcm_module() is not None else [])
            + ([BLAKE3] if _blake3_module() is not None else []) + [HMAC_SHA256])


def agreed_scheme(offered: object) -> str:
    """The fastest digest both this process and a peer offering ``offered`` (a list) can make."""
    offered = offered if isinstance(offered, list) else []
    return next((s for s in digest_schemes() if s in offered), HMAC_SHA256)


_derived: dict[bytes, bytes] = {}


def derived_key(key: bytes, use: bytes) -> bytes:
    """A 32-byte key derived from the connection key (any length) for one ``use`` only."""
    derived = _derived.get(use + b"\0" + key)
    if derived is None:
        derived = _derived[use + b"\0" + key] = hashlib.sha256(
            b"remote_magics " + use + b"\0" + key).digest()
    return derived


def _gmac_digest(key: bytes, frames: Iterable, nonce: bytes) -> str:
    mac = Gmac(derived_key(key, b"frames gmac"), nonce)
    for frame in frames:  # lengths included, so frames cannot be re-split
        view = memoryview(frame)
        mac.update(view.nbytes.to_bytes(8, "little"))
        mac.update(view)
    return _GMAC_PREFIX + nonce.hex() + mac.tag().hex()


def _blake3_digest(blake3, key: bytes, frames: Iterable) -> str:
    views = []
    for frame in frames:
        view = memoryview(frame)
        views.append(view if view.ndim == 1 and view.itemsize == 1 else view.cast("B"))
    total = sum(view.nbytes for view in views)
    mac = blake3.blake3(key=derived_key(key, b"frames blake3"),
                        max_threads=blake3.blake3.AUTO if total >= _BLAKE3_THREADED else 1)
    for view in views:  # lengths included, so frames cannot be re-split
        mac.update(view.nbytes.to_bytes(8, "little"))
        mac.update(view)  # the GIL is released while it hashes
    return _BLAKE3_PREFIX + mac.hexdigest()

_digest_pool = None


def _sha256(view: memoryview) -> bytes:
    return hashlib.sha256(view).digest()


def digest_pool():
    """The threads, one per core, that hash long frames' pieces (and copy streamed chunks)."""
    global _digest_pool
    if _digest_pool is None:
        import concurrent.futures
        import os

        _digest_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=os.cpu_count() or 1, thread_name_prefix="remote_magics-digest")
    return _digest_pool


#: Signatures an engine remembers, to refuse a message it has accepted before (Jupyter's too).
HISTORY_SIZE = 1 << 16


class Replayed(ValueError):
    """A correctly signed message whose signature was accepted before: a replay, to drop.

    ``message`` is the message, parsed, so that its sender can be told it was dropped.
    """

    def __init__(self, message: dict) -> None:
        super().__init__(f"a {message.get('msg_type')} accepted before (replayed)")
        self.message = message


class SignatureHistory:
    """The signatures of the last ``size`` messages accepted: a message seen before is refused.

    As Jupyter's ``Session.digest_history``, but the oldest is forgotten first (Jupyter's drops
    a random tenth when full), so a replay is refused until ``size`` newer messages have been
    accepted after its original. Safe to share between threads. ``refused`` counts replays.
    """

    def __init__(self, size: int = HISTORY_SIZE) -> None:
        self.size = size
        self.refused = 0
        self._seen: set[bytes] = set()
        self._order: collections.deque[bytes] = collections.deque()
        self._lock = threading.Lock()

    def accept(self, signature: bytes) -> bool:
        """Remember ``signature``; False if it is remembered already (the message is a replay)."""
        with self._lock:
            if signature in self._seen:
                self.refused += 1
                return False
            self._seen.add(signature)
            self._order.append(signature)
            if len(self._order) > self.size:
                self._seen.discard(self._order.popleft())
            return True

    def __len__(self) -> int:
        return len(self._order)


def unpack_message(session, parts: list, history: SignatureHistory | None = None) -> dict:
    """A verified Jupyter message from its frames after the identities (``session``: jupyter's).

    Like ``Session.deserialize`` without its parsing of every date: dates are never used here,
    and parsing them was a third of a null cell's time on each side. Raises ValueError for a
    message whose signature is wrong, and :class:`Replayed` for one whose signature ``history``
    has accepted before (only verified signatures enter it; with no key there is no history).
    """
    signature, *fields = (bytes(part.buffer) if hasattr(part, "buffer") else bytes(part)
                          for part in parts[:5])
    if session.auth is not None:
        mac = session.auth.copy()
        for data in fields:
            mac.update(data)
        if not hmac.compare_digest(mac.hexdigest().encode(), signature):
            raise ValueError("bad signature")
    header = session.unpack(fields[0])
    msg = {"header": header, "msg_id": header.get("msg_id"),
           "msg_type": header.get("msg_type"), "parent_header": session.unpack(fields[1]),
           "metadata": session.unpack(fields[2]), "content": session.unpack(fields[3]),
           "buffers": [part.buffer if hasattr(part, "buffer") else memoryview(part)
                       for part in parts[5:]]}
    if history is not None and session.auth is not None and not history.accept(signature):
        raise Replayed(msg)
    return msg


def frames_digest(key: bytes, frames: Iterable, scheme: str = HMAC_SHA256) -> str:
    """HMAC-SHA256 of the frames (lengths included, so frames cannot be re-split); "" with no key.

    A frame longer than :data:`DIGEST_CHUNK` enters the HMAC as the SHA-256 digests of its
    pieces (hash, then MAC: still a keyed MAC over every byte). The pieces are hashed on one
    thread per core, since hashlib releases the GIL: the digest bounds bulk throughput otherwise.
    With ``scheme`` :data:`BLAKE3` (only where :func:`digest_schemes` offers it), a keyed BLAKE3
    over the same lengths and bytes instead, ``"b3:<hex>"``. With :data:`GMAC`, frames of at
    least :data:`GMAC_MIN_BYTES` in all get an AES-GMAC over the same, under a nonce drawn for
    this digest alone and written in it, ``"gm:<nonce hex><tag hex>"``; fewer get the HMAC.
    """
    if not key:
        return ""
    if scheme == GMAC:
        frames = [memoryview(frame) for frame in frames]
        if sum(view.nbytes for view in frames) >= GMAC_MIN_BYTES:
            return _gmac_digest(key, frames, secrets.token_bytes(12))
        scheme = HMAC_SHA256
    if scheme == BLAKE3:
        blake3 = _blake3_module()
        if blake3 is None:
            raise ValueError("a blake3 digest asked for, but the blake3 package is not here")
        return _blake3_digest(blake3, key, frames)
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for frame in frames:
        view = memoryview(frame)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
        mac.update(view.nbytes.to_bytes(8, "little"))
        if view.nbytes <= DIGEST_CHUNK:
            mac.update(view)
            continue
        pieces = [view[i:i + DIGEST_CHUNK] for i in range(0, view.nbytes, DIGEST_CHUNK)]
        mac.update(b"".join(digest_pool().map(_sha256, pieces)))
    return mac.hexdigest()


def digest_ok(key: bytes, frames: Iterable, digest: str | None) -> bool:
    """Whether ``digest`` is the right one for ``frames`` under ``key`` (constant-time compare)."""
    if not key:
        return True
    digest = digest or ""
    scheme = HMAC_SHA256
    if digest.startswith(_GMAC_PREFIX):  # every scheme is a MAC with our key: no downgrade
        nonce = digest[len(_GMAC_PREFIX):len(_GMAC_PREFIX) + 24]
        if _gcm_module() is None or len(digest) != len(_GMAC_PREFIX) + 56 \
                or not _HEX.fullmatch(digest[len(_GMAC_PREFIX):]):
            return False  # we never offered it (so no peer of ours made it), or not one
        return hmac.compare_digest(_gmac_digest(key, frames, bytes.fromhex(nonce)), digest)
    if digest.startswith(_BLAKE3_PREFIX):
        if _blake3_module() is None:
            return False  # we never offered it, so no peer of ours made it
        scheme = BLAKE3
    return hmac.compare_digest(frames_digest(key, frames, scheme), digest)
