"""opencode-share from Python: a thin ctypes wrapper around the native library.

Blocking calls (``init``, ``sync``, ``create``, ``remove``, ``flush``, ``shutdown``, ``stats``)
release the GIL while the library works. ``create_async``, ``remove_async`` and ``flush_async``
are coroutines built on the library's asynchronous entry points: no thread waits for them.

Every failure raises :class:`ShareError`, whose ``code`` is the status name of the C API
(``"SHARE_ERR_INVALID_ARGUMENT"``, ...) and whose message is the library's.

The library calls back on a thread of its own; those callbacks only record a scalar (an
operation id and its status, or "events are waiting") and hand the work to the event loop or
to this module's event thread, which take the data with a call.
"""

import asyncio
import atexit
import json
import os
import threading

from . import _native

__version__ = "0.2.0"

__all__ = [
    "ShareError",
    "init",
    "sync",
    "create",
    "remove",
    "flush",
    "shutdown",
    "stats",
    "list_shares",
    "remove_known",
    "version",
    "take_events",
    "set_event_handler",
    "create_async",
    "remove_async",
    "flush_async",
    "library_path",
]

_lib = _native.load(_native.library_path())


class ShareError(Exception):
    """A failed call: ``code`` is the status name, ``status`` its number."""

    def __init__(self, status, message):
        self.status = status
        self.code = _native.STATUS_NAMES.get(status, f"SHARE_STATUS_{status}")
        self.message = message
        super().__init__(f"{self.code}: {message}" if message else self.code)


def library_path():
    """The file of the native library this module loaded."""
    return _lib._name


def _text(value, what):
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value.encode("utf-8")


def _last_error():
    return _lib.share_last_error().decode("utf-8", "replace")


def _check(status):
    if status != 0:
        raise ShareError(status, _last_error())


def _take_string(call):
    """Runs ``call(out)`` for a ``char **out_json``; returns the decoded text, freeing it."""
    out = _native.c_void_p()
    status = call(_native.ctypes.byref(out))
    try:
        _check(status)
        return _native.ctypes.string_at(out.value).decode("utf-8") if out.value else None
    finally:
        if out.value:
            _lib.share_string_free(out.value)


def version():
    """The library's version, "MAJOR.MINOR.PATCH"."""
    return _lib.share_version().decode("ascii")


def init(config=None, *, spool_dir=None):
    """Starts the library. ``config`` is a dict (see docs/c-api.md, Configuration), a JSON
    text, or None for every default. ``spool_dir`` (a path; the same as the config key) names the
    durable spool's folder: what a crash or an exit without shutdown left unsent is sent by the
    next init on it, and the ledger of shares (:func:`list_shares`) lives there.

    Redaction (docs/redaction.md) is on unless ``"redact": False``: before upload, credentials of
    well-known formats in any string of a content (cloud keys, VCS and package tokens, model
    provider keys, chat and payment tokens, private-key blocks, JWTs, passwords in URLs,
    ``Authorization:`` headers, ``API_KEY=...`` assignments) become ``[redacted: RULE-ID]``.
    Not redacted: paths, user and host names, e-mail addresses and other personal data, and
    credentials of no known format or context. Extend it with ``"redact_patterns"`` (id to a
    Rust ``regex``; group 1, if any, is replaced) and ``"redact_allow"`` (values kept), or for
    every user with a rule in src/redact/ours.toml."""
    if spool_dir is not None:
        if isinstance(config, (str, bytes)):
            config = json.loads(config) if config.strip() else {}
        config = dict(config or {}, spool_dir=os.fspath(spool_dir))
    if config is None:
        text = None
    elif isinstance(config, (str, bytes)):
        text = _text(config, "config")
    else:
        text = json.dumps(config).encode("utf-8")
    _check(_lib.share_init(text))


def sync(key, content):
    """Hands over one storage write; returns at once. ``content`` is any JSON-serialisable value,
    or a ``str``/``bytes`` holding JSON text (sent as it is: to sync the JSON string "hi" pass
    ``'"hi"'``)."""
    if isinstance(content, (str, bytes)):
        text = _text(content, "content")
    else:
        text = json.dumps(content, separators=(",", ":")).encode("utf-8")
    _check(_lib.share_sync(_text(key, "key"), text))


def create(session_id):
    """Creates the share of ``session_id`` (blocking, retried within timeout_ms): a dict with
    ``url`` and ``secret`` (and ``id`` under the "next" protocol)."""
    sid = _text(session_id, "session_id")
    return json.loads(_take_string(lambda out: _lib.share_create(sid, out)))


def remove(session_id, secret):
    """Removes the share: drops its pending work, waits for its requests, deletes it."""
    _check(_lib.share_remove(_text(session_id, "session_id"), _text(secret, "secret")))


def remove_known(session_id):
    """Removes the share of ``session_id`` with the secret the ledger holds (see
    :func:`list_shares`), for a host that no longer has the session, e.g. after a restart on the
    same ``spool_dir``. Raises ``ShareError`` (``SHARE_ERR_INVALID_ARGUMENT``) if the ledger has
    no share of it. The share leaves the ledger once the service confirms (2xx, 404 or 410);
    otherwise the next init on the folder sends the delete again."""
    _check(_lib.share_remove_known(_text(session_id, "session_id")))


def flush(timeout_ms=5000):
    """Waits until everything accepted before the call was sent or dropped; raises
    ``ShareError`` with code ``SHARE_ERR_TIMEOUT`` if the deadline came first."""
    _check(_lib.share_flush(int(timeout_ms)))


def shutdown(timeout_ms=5000):
    """Flushes up to ``timeout_ms``, then stops the library (it may be started again)."""
    _check(_lib.share_shutdown(int(timeout_ms)))


def stats():
    """The counters as a dict (after shutdown: the last run's final figures)."""
    return json.loads(_take_string(_lib.share_stats))


def list_shares():
    """The ledger: every share the library created or was told of whose deletion the service
    has not confirmed (with ``spool_dir``, across runs), by session id, as a list of dicts with
    ``session``, ``id``, ``url`` (None if never known), ``created`` and ``synced`` (ms since the
    Unix epoch, None if unknown), ``state`` (``"shared"`` or ``"removing"``), ``service`` and
    ``protocol``. Never the secret: the ledger keeps it in the spool file only."""
    return json.loads(_take_string(_lib.share_list))


# --- events -------------------------------------------------------------------------------

def take_events():
    """The waiting events, oldest first, as a list of dicts (kept only while a handler is set)."""
    return json.loads(_take_string(_lib.share_events_take))


class _Events:
    """One daemon thread that takes the events when the library says some are waiting and
    calls the handler with each. The library's callback only sets a flag."""

    def __init__(self):
        self.lock = threading.Lock()
        self.handler = None
        self.waiting = threading.Event()
        self.thread = None
        # made once and never freed: the library may hold it after a late shutdown
        self.notify = _native.EVENT_NOTIFY(lambda _user_data: self.waiting.set())

    def set(self, handler):
        with self.lock:
            self.handler = handler
            start = handler is not None and self.thread is None
            if start:
                self.thread = threading.Thread(target=self.run, name="opencode-share-events", daemon=True)
        if start:
            self.thread.start()
        if handler is None:
            _check(_lib.share_set_event_callback(_native.EVENT_NOTIFY(), None))
        else:
            _check(_lib.share_set_event_callback(self.notify, None))

    def run(self):
        while True:
            self.waiting.wait()
            self.waiting.clear()
            with self.lock:
                handler = self.handler
            if handler is None:
                continue
            try:
                events = take_events()
            except ShareError:
                continue
            for event in events:
                try:
                    handler(event)
                except Exception:  # a handler's bug must not stop the delivery of later events
                    import traceback

                    traceback.print_exc()


_events = _Events()


@atexit.register
def _stop_callbacks():
    """The library must not call into an interpreter that is shutting down: remove the sink."""
    _lib.share_set_event_callback(_native.EVENT_NOTIFY(), None)


def set_event_handler(handler):
    """Calls ``handler(event)`` for every event (a dict with a "type": synced, retry, failed,
    dropped, unshared, lost) on this module's event thread; None removes it and discards the
    waiting events."""
    _events.set(handler)


# --- asyncio --------------------------------------------------------------------------------

class _Ops:
    """Futures of asynchronous operations by op id. The library's callback runs on its own
    thread: it records the id and hands it to the future's loop with call_soon_threadsafe; the
    loop then takes the result (share_op_take) on its own thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.waiting = {}  # op id -> (loop, future)
        self.early = set()  # op ids whose callback came before start() registered them
        self.callback = _native.OP_CALLBACK(self.done)  # never freed, as for events

    def done(self, _user_data, op_id, _status):
        with self.lock:
            entry = self.waiting.pop(op_id, None)
            if entry is None:
                self.early.add(op_id)
                return
        self.hand_over(op_id, *entry)

    @staticmethod
    def hand_over(op_id, loop, future):
        try:
            loop.call_soon_threadsafe(_Ops.settle, op_id, future)
        except RuntimeError:  # the loop is closed: nobody waits, but free the result
            try:
                _take_string(lambda out: _lib.share_op_take(op_id, out))
            except ShareError:
                pass

    @staticmethod
    def settle(op_id, future):
        try:
            text = _take_string(lambda out: _lib.share_op_take(op_id, out))
        except ShareError as e:
            if not future.done():
                future.set_exception(e)
            return
        if not future.done():
            future.set_result(json.loads(text) if text else None)

    def start(self, call):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        op_id = _native.c_uint32()
        _check(call(self.callback, _native.ctypes.byref(op_id)))
        with self.lock:
            early = op_id.value in self.early
            if early:
                self.early.discard(op_id.value)
            else:
                self.waiting[op_id.value] = (loop, future)
        if early:
            self.hand_over(op_id.value, loop, future)
        return future


_ops = _Ops()


async def create_async(session_id):
    """``create`` without blocking the event loop."""
    sid = _text(session_id, "session_id")
    return await _ops.start(lambda cb, out: _lib.share_create_async(sid, cb, None, out))


async def remove_async(session_id, secret):
    """``remove`` without blocking: the local part is done as soon as it starts, the delete on a library thread."""
    sid, sec = _text(session_id, "session_id"), _text(secret, "secret")
    await _ops.start(lambda cb, out: _lib.share_remove_async(sid, sec, cb, None, out))


async def flush_async(timeout_ms=5000):
    """``flush`` without blocking: raises ``ShareError`` (SHARE_ERR_TIMEOUT) on the deadline."""
    await _ops.start(lambda cb, out: _lib.share_flush_async(int(timeout_ms), cb, None, out))
