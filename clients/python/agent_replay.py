"""agent_replay — the Python client an agent uses to talk to agent-replay.

One code path for production and replay (SPEC §8): an agent calls ``read_input``,
``start_run``, ``call_tool``, ``record_event``, ``record_artifact`` and ``close_run``
the same way everywhere (or wraps its work in ``with agent_replay.run(...) as run:``),
and a *backend* decides where the calls go.

* Under the harness (``AGENT_REPLAY_SOCKET`` is set) they go to the gateway over a
  Unix socket, as newline-delimited JSON-RPC 2.0 (SPEC §2). Tool calls are answered
  from the fixture's cassette, so the agent never reaches a real tool: the ``impl``
  given to ``call_tool`` is ignored, ``start_run`` is a no-op (the harness opened the
  run) and the harness owns the run's close path.
* In production (no socket) the :class:`ProductionBackend` runs the tool
  implementations itself and writes (SPEC §7, §8, §10 rule 18):

  - run records to a JSON Lines ledger: a ``RUNNING`` record at ``start_run`` and a
    terminal one at ``close_run``. Each record carries every §7 field (``null`` when
    unknown) and is appended as one ``os.write`` of one line under
    ``fcntl.flock(LOCK_EX)``, fsynced when terminal. The ledger is ``ledger=``, else
    ``$AGENT_REPLAY_LEDGER``, else ``.agent-replay/ledger.jsonl`` in the directory of
    the nearest ``agent-replay.toml`` above the working directory (the working
    directory itself when there is none);
  - the run's trace to ``<traces>/<run_id>.jsonl`` (``traces=``, else
    ``$AGENT_REPLAY_TRACES``, else ``.agent-replay/traces`` next to the default
    ledger): a ``start`` line (the RUNNING record, the envelope, a snapshot of the
    envelope's ``state_refs``), then ``tool_call``, ``event`` and ``artifact`` lines and a
    ``close`` line. Traces hold tool arguments and results *unredacted* (secrets
    included; ``agent-replay generate`` redacts) and are created mode 0600.

Tool implementations (production only) are called as ``impl(arguments)``: one
positional argument, the arguments dict, so argument names need not be Python
identifiers. A return value that is already an MCP ``CallToolResult`` (a dict with a
``content`` list) is kept verbatim; a dict becomes ``structuredContent`` plus its JSON as
text, a string a text block, ``None`` an empty result. The agent gets the normalised
``CallToolResult`` back in both modes. An implementation that raises is recorded with
``isError: true`` and the exception is re-raised (under the harness the same recording
comes back as a result with ``isError: true``: prefer returning error results to
raising for failures the agent is expected to handle).

The close path runs on every exit in production: ``with run(...)`` closes ``failed``
(``failure_class: "unknown"``, the exception text as ``failure_reason``) when the block
raises, an ``atexit`` hook closes any run still open when the process exits, and a
SIGTERM handler (installed only where SIGTERM has its default action) closes it
``aborted`` before the process dies of the signal. Only SIGKILL and ``os._exit`` escape;
``agent-replay watchdog`` closes those runs.

Standard library only, Python 3.9+, POSIX. The module-level functions use a lazily
created default ``Client``; create your own ``Client`` to hold several runs at once.
"""

from __future__ import annotations

import atexit
import fcntl
import itertools
import _thread
import math
import os
import sys
import time

# An agent pays for every module imported here before its first call, and under the
# harness only the gateway's few needs count: base64, datetime, hashlib, uuid, signal and
# threading serve the production backend and are imported where used; the socket is the
# C module's (the `socket` package adds ~3 ms of imports for features not used here);
# typing is for type checkers only (~4 ms), annotations being strings.
try:
    import _socket as _sockets
except ImportError:  # an interpreter without the C module
    import socket as _sockets  # type: ignore[no-redef]
# `json` imports `re` and `enum` (~10 ms): the wire needs only the C codec `json` itself
# uses, so `json` is imported (by `_stdjson`) where nothing faster serves: production
# traces, error messages, an interpreter without `_json`.
try:
    import _json as _cjson
except ImportError:
    _cjson = None  # type: ignore[assignment]


def _stdjson():  # type: ignore[no-untyped-def]
    import json

    return json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol, Set, Tuple

__all__ = [
    "Backend",
    "Client",
    "GatewayBackend",
    "GatewayError",
    "ProductionBackend",
    "Run",
    "ToolError",
    "call_tool",
    "close_run",
    "default_client",
    "envelope_bytes",
    "list_tools",
    "read_input",
    "record_artifact",
    "record_event",
    "register_tool",
    "run",
    "start_run",
]

SOCKET_ENV = "AGENT_REPLAY_SOCKET"
INPUT_ENV = "AGENT_REPLAY_INPUT"
RUN_ID_ENV = "AGENT_REPLAY_RUN_ID"
LEDGER_ENV = "AGENT_REPLAY_LEDGER"
TRACES_ENV = "AGENT_REPLAY_TRACES"
CODE_VERSION_ENV = "AGENT_REPLAY_CODE_VERSION"

CONFIG_FILE = "agent-replay.toml"


def _is_database_url(value: str) -> bool:
    return value.startswith(("postgres://", "postgresql://"))


DEFAULT_LEDGER = os.path.join(".agent-replay", "ledger.jsonl")
DEFAULT_TRACES = os.path.join(".agent-replay", "traces")
DEFAULT_TIMEOUT_SECONDS = 60

# JSON-RPC error codes the gateway uses (SPEC §2, §10 rule 15); the production backend
# raises the same errors for the same mistakes, so both paths fail alike.
REFUSED = -32000
UNRECORDED_CALL = -32001
NOT_ALLOWED = -32002
INVALID_PARAMS = -32602

# What an agent may claim with close_run in production, and the ledger status it gives.
LEDGER_STATUS = {
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "timed_out": "TIMED_OUT",
    "aborted": "ABORTED",
}

# Every §7 field, in the spec's order.
RECORD_FIELDS = (
    "run_id", "run_type", "fixture_id", "task_id", "attempt", "agent_name",
    "started_at", "closed_at", "code_version", "model", "prompt_version",
    "tool_allowlist", "timeout_seconds", "input_sha256", "state_refs", "artifact_refs",
    "status", "failure_class", "failure_reason", "verdict", "reasons", "mode",
    "duration_ms", "tool_calls",
)

if TYPE_CHECKING:
    Impl = Callable[[Dict[str, Any]], Any]
    _Interface = Protocol
else:
    Impl = object  # a callable taking the arguments dict; spelled out for type checkers
    _Interface = object


class GatewayError(Exception):
    """A JSON-RPC error answer from the gateway (or the same refusal in production).

    Kept as data (code, message, data) so an agent can decide what to do — e.g. treat
    ``-32001`` (unrecorded call) differently from ``-32602`` (its own bad params).
    """

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    def __str__(self) -> str:
        reason = self.reason
        suffix = f" ({reason})" if reason else ""
        return f"[{self.code}] {self.message}{suffix}"

    @property
    def reason(self) -> Optional[str]:
        """``data.reason`` when one was given (unrecorded, not_allowed, ...)."""
        return self.data.get("reason") if isinstance(self.data, dict) else None


class ToolError(GatewayError):
    """A ``tools/call`` that was refused: unrecorded, not allowed, invalid params.

    Distinct from a tool that answered with ``isError: true``: that is a normal
    ``CallToolResult`` the agent must handle itself, exactly as in production.
    """

    @property
    def closest(self) -> Optional[Dict[str, Any]]:
        """The nearest recorded interaction (``data.closest``), to explain a miss."""
        return self.data.get("closest") if isinstance(self.data, dict) else None


# ------------------------------------------------------------------------ helpers


def envelope_bytes(envelope: Dict[str, Any]) -> bytes:
    """The exact bytes a run's ``input_sha256`` covers and its trace's ``input`` holds.

    Compact JSON (``,`` and ``:`` separators, no whitespace), keys in the envelope's own
    order, UTF-8 without ``\\u`` escapes for non-ASCII, no trailing newline. Parsing these
    bytes with an order-preserving reader and serialising them compactly gives them back
    (floats aside whose exponent spelling differs between languages, e.g. ``1e-07``).
    """
    return _stdjson().dumps(envelope, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def sha256_hex(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def now_rfc3339() -> str:
    """RFC 3339 UTC with milliseconds and ``Z``: ``2026-05-08T10:00:00.123Z``."""
    import datetime as _dt

    now = _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _sanitize(value: Any) -> Any:
    """A JSON-safe copy: non-finite floats become null, unknown objects their str()."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_sanitize(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, (bytes, bytearray)):
        import base64

        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def _dumps(value: Any) -> str:
    """One compact JSON text; never fails on what a tool returned (recording must not
    crash the agent): non-finite numbers and foreign objects are made JSON first."""
    json = _stdjson()
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return json.dumps(_sanitize(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def append_line(path: str, line: bytes, *, sync: bool = False, mode: int = 0o644) -> None:
    """Append one JSON line to a JSON Lines file shared with other writers.

    The file is opened ``O_APPEND`` and locked with ``flock(LOCK_EX)`` (the lock the
    Rust ledger takes too), so lines of concurrent writers never interleave. A torn
    last line left by a crash is cut off first, so a torn line is only ever the last. The line
    goes out in one ``os.write`` (looping only on a short write); ``sync`` fsyncs it.
    """
    if not line.endswith(b"\n"):
        line += b"\n"
    _appending.depth = getattr(_appending, "depth", 0) + 1
    try:
        _append_locked(path, line, sync, mode)
    finally:
        _appending.depth -= 1
        if _appending.depth == 0 and getattr(_appending, "sigterm", False):
            # SIGTERM arrived while this thread held the lock: handle it now.
            _appending.sigterm = False
            import signal  # already loaded: the handler that set the flag imported it

            _on_sigterm(signal.SIGTERM, None)


# Per thread: how deep in append_line it is, and whether SIGTERM waits for it to finish
# (the handler runs on the main thread and would deadlock on a lock that thread holds).
_appending = _thread._local()


def _append_locked(path: str, line: bytes, sync: bool, mode: int) -> None:
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), mode)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
            # A writer killed mid-write left a torn last line. Under the lock nobody else
            # is writing: it is a dead writer's unacknowledged record, cut off here so a
            # torn line is only ever the last one.
            os.ftruncate(fd, _whole_lines_len(fd, size))
        view = memoryview(line)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock


def _whole_lines_len(fd: int, size: int) -> int:
    """How much of the file is whole lines: up to and with its last newline."""
    end = size
    while end > 0:
        start = max(0, end - 65536)
        chunk = os.pread(fd, end - start, start)
        i = chunk.rfind(b"\n")
        if i >= 0:
            return start + i + 1
        end = start
    return 0


def _find_project_dir(start: str) -> str:
    """The directory of the nearest agent-replay.toml at or above start, else start."""
    current = os.path.abspath(start)
    while True:
        if os.path.isfile(os.path.join(current, CONFIG_FILE)):
            return current
        parent = os.path.dirname(current)
        if parent == current:
            return os.path.abspath(start)
        current = parent


def call_tool_result(value: Any) -> Dict[str, Any]:
    """A tool implementation's return value as an MCP ``CallToolResult``."""
    if isinstance(value, dict) and isinstance(value.get("content"), list):
        return value
    if value is None:
        return {"content": [], "isError": False}
    if isinstance(value, str):
        return {"content": [{"type": "text", "text": value}], "isError": False}
    result: Dict[str, Any] = {"content": [{"type": "text", "text": _dumps(value)}]}
    if isinstance(value, dict):
        result["structuredContent"] = value
    result["isError"] = False
    return result


def _error_result(exc: BaseException) -> Dict[str, Any]:
    return {"content": [{"type": "text", "text": f"{type(exc).__name__}: {exc}"}], "isError": True}


def _workspace_path(workspace: str, path: str) -> Optional[Tuple[str, str]]:
    """(relative, real) for a path inside the workspace, else None (absolute, ``..``,
    or a symlink leading out). Mirrors the gateway's rule for ``run/artifact``."""
    rel = path
    while rel.startswith("./"):
        rel = rel[2:]
    if not rel or os.path.isabs(rel) or ".." in rel.split("/"):
        return None
    real = os.path.realpath(os.path.join(workspace, rel))
    if real != workspace and not real.startswith(workspace + os.sep):
        return None
    return rel, real


def _hash_file(path: str) -> Tuple[str, int]:
    import hashlib

    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# ------------------------------------------------------------------------ backends


class Backend(_Interface):
    """Where the client's calls go: the gateway under the harness, files in production."""

    def start_run(self, envelope: Dict[str, Any], raw: bytes, **options: Any) -> Dict[str, Any]: ...
    def list_tools(self) -> List[Dict[str, Any]]: ...
    def call_tool(
        self, name: str, arguments: Dict[str, Any], impl: Optional[Impl] = None, effect: Optional[str] = None
    ) -> Dict[str, Any]: ...
    def record_event(self, name: str, data: Any) -> None: ...
    def record_artifact(self, path: str) -> Dict[str, Any]: ...
    def close_run(
        self, status: str, output: Any, failure_class: Optional[str], failure_reason: Optional[str]
    ) -> None: ...


# The wire's encoder: compact, UTF-8 as is, exactly what ``json.dumps(obj,
# ensure_ascii=False, separators=(",", ":"))`` writes. ``JSONEncoder.encode`` builds a C
# encoder per call; where CPython has one (``_json.make_encoder``) it is built once here
# instead, and rebuilt after a failed encode (which can leave entries in its
# circular-reference markers).
def _not_serializable(o: Any) -> Any:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def _c_wire_encoder() -> Optional[Callable[[Any], str]]:
    make = getattr(_cjson, "make_encoder", None)
    quote = getattr(_cjson, "encode_basestring", None)
    if make is None or quote is None:
        return None
    try:
        # (markers, default, encoder, indent, key_separator, item_separator, sort_keys,
        # skipkeys, allow_nan), as json.encoder passes them.
        encode = make({}, _not_serializable, quote, None, ":", ",", False, False, True)
    except TypeError:  # another signature in another CPython
        return None
    return lambda obj: "".join(encode(obj, 0))


_c_encode = _c_wire_encoder()


def _wire_encode(obj: Any) -> str:
    global _c_encode
    if _c_encode is None:
        return _stdjson().dumps(obj, ensure_ascii=False, separators=(",", ":"))
    try:
        return _c_encode(obj)
    except BaseException:
        _c_encode = _c_wire_encoder()
        raise


# How long a request polls for its reply before it sleeps (see GatewayBackend._poll).
_POLL_SECONDS = 100e-6
_MSG_DONTWAIT = getattr(_sockets, "MSG_DONTWAIT", 0)

class _ScanContext:
    """What ``_json.make_scanner`` reads of a ``JSONDecoder``: its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


try:
    _scan_once: Optional[Callable[[str, int], Tuple[Any, int]]] = _cjson.make_scanner(_ScanContext())  # type: ignore[union-attr]
except (AttributeError, TypeError):
    _scan_once = None

_JSON_WS = " \t\n\r"


def _loads(text: str) -> Any:
    """``json.loads(text)``: one JSON text with optional whitespace around it."""
    if _scan_once is not None:
        start = len(text) - len(text.lstrip(_JSON_WS))
        try:
            value, end = _scan_once(text, start)
        except StopIteration:
            pass
        else:
            if end == len(text) or not text[end:].strip(_JSON_WS):
                return value
    return _stdjson().loads(text)  # the slow way, with its errors


def _wire_decode(text: str) -> Any:
    """``json.loads`` of one reply line (the gateway writes UTF-8 JSON and a newline)."""
    if _scan_once is not None:
        try:
            value, end = _scan_once(text, 0)
        except StopIteration:
            pass
        else:
            if text[end:] in ("\n", ""):
                return value
    return _loads(text)  # whitespace or extra data after it: the slow way


class GatewayBackend:
    """Speaks JSON-RPC 2.0, one object per line, over the harness's Unix socket.

    One connection, opened on first use and kept for the process's life; requests are
    sent one at a time (a lock keeps threads from interleaving lines) and each reads
    exactly one response line, which is how the gateway answers (in order, per
    connection). Replies are read with plain ``recv`` calls of up to 64 KiB: a reply
    that arrives whole, the usual case, is one system call and no copy; the first is
    polled for briefly before the process sleeps.
    """

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._sock: Optional[_sockets.socket] = None
        # Bytes received after the last complete line (none, with one request at a time).
        self._pending = bytearray()
        self._poll_first = False
        self._ids = itertools.count(1)
        self._lock = _thread.allocate_lock()

    def _connect(self) -> None:
        sock = _sockets.socket(_sockets.AF_UNIX, _sockets.SOCK_STREAM)
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise RuntimeError(
                f"agent_replay: cannot connect to the gateway at {self.socket_path!r}: {exc}"
            ) from exc
        self._sock = sock
        self._pending = bytearray()
        # On one CPU the gateway cannot answer while this process polls: sleep at once.
        try:
            cpus = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cpus = os.cpu_count() or 1
        self._poll_first = bool(_MSG_DONTWAIT) and hasattr(os, "sched_yield") and cpus > 1

    def _poll(self) -> bytes:
        """The first bytes of a reply, polled for up to ``_POLL_SECONDS`` before
        sleeping in ``recv``: the gateway answers within microseconds, and a process
        that went to sleep is slow to wake (tens of microseconds on a VM)."""
        sock = self._sock
        assert sock is not None
        if self._poll_first:
            deadline = time.perf_counter() + _POLL_SECONDS
            while True:
                try:
                    return sock.recv(1 << 16, _MSG_DONTWAIT)
                except BlockingIOError:
                    if time.perf_counter() >= deadline:
                        break
                    os.sched_yield()  # to the gateway, should it share this CPU
        return sock.recv(1 << 16)

    def _read_line(self) -> bytes:
        """The next line with its newline; at EOF what was left (``b""`` when nothing)."""
        assert self._sock is not None
        pending = self._pending
        if not pending:
            chunk = self._poll()
            if not chunk or chunk.find(b"\n") == len(chunk) - 1:
                return chunk
            pending += chunk
        start = 0
        while True:
            i = pending.find(b"\n", start)
            if i >= 0:
                line = bytes(pending[: i + 1])
                del pending[: i + 1]
                return line
            start = len(pending)
            chunk = self._sock.recv(1 << 16)
            if not chunk:
                line = bytes(pending)
                pending.clear()
                return line
            pending += chunk

    def request(self, method: str, params: Dict[str, Any]) -> Any:
        """Send one request and return its ``result``; raise GatewayError on ``error``."""
        return self._exchange(
            '{"jsonrpc":"2.0","id":%d,"method":%s,"params":%s}\n',
            (_wire_encode(method), _wire_encode(params)),
            method,
        )

    def _exchange(self, template: str, parts: Tuple[str, str], method: str) -> Any:
        """Send ``template % (id, *parts)`` (one request line) and return its ``result``."""
        with self._lock:
            sock = self._sock
            if sock is None:
                self._connect()
                sock = self._sock
            assert sock is not None
            req_id = next(self._ids)
            sock.sendall((template % (req_id, *parts)).encode("utf-8"))
            raw = self._read_line()
        if not raw:
            raise RuntimeError(f"agent_replay: the gateway closed the connection during {method}")
        try:
            # The gateway writes UTF-8 without a BOM: no encoding to detect.
            response = _wire_decode(raw.decode("utf-8"))
        except ValueError as exc:
            raise RuntimeError(f"agent_replay: unreadable gateway response to {method}: {raw[:200]!r}") from exc
        if not isinstance(response, dict):
            raise RuntimeError(f"agent_replay: gateway response to {method} is not an object")
        if response.get("id") != req_id:
            raise RuntimeError(
                f"agent_replay: gateway answered id {response.get('id')!r} to request {req_id} ({method})"
            )
        error = response.get("error")
        if error is not None:
            err_cls = ToolError if method == "tools/call" else GatewayError
            if not isinstance(error, dict):
                raise err_cls(-32603, str(error), None)
            raise err_cls(int(error.get("code", -32603)), str(error.get("message", "")), error.get("data"))
        return response.get("result")

    def start_run(self, envelope: Optional[Dict[str, Any]] = None, raw: Optional[bytes] = None, **options: Any) -> Dict[str, Any]:
        # The harness opened the run (and wrote its RUNNING record) before starting the
        # agent: nothing to send.
        return {"run_id": os.environ.get(RUN_ID_ENV)}

    def list_tools(self) -> List[Dict[str, Any]]:
        result = self.request("tools/list", {})
        return list((result or {}).get("tools", []))

    def call_tool(
        self, name: str, arguments: Dict[str, Any], impl: Optional[Impl] = None, effect: Optional[str] = None
    ) -> Dict[str, Any]:
        # impl and effect are production-only: the cassette answers here. The envelope
        # is spelled out: only the name and the arguments go through the encoder.
        return self._exchange(
            '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%s,"arguments":%s}}\n',
            (_wire_encode(name), _wire_encode(arguments)),
            "tools/call",
        )

    def record_event(self, name: str, data: Any) -> None:
        self.request("run/event", {"name": name, "data": data})

    def record_artifact(self, path: str) -> Dict[str, Any]:
        return self.request("run/artifact", {"path": path})

    def close_run(
        self,
        status: str,
        output: Any,
        failure_class: Optional[str],
        failure_reason: Optional[str],
    ) -> None:
        self.request(
            "run/close",
            {
                "status": status,
                "output": output,
                "failure_class": failure_class,
                "failure_reason": failure_reason,
            },
        )

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._pending = bytearray()


class _OpenRun:
    """The production backend's state for one run."""

    def __init__(self, record: Dict[str, Any], ledger: str, trace: str, workspace: str) -> None:
        self.record = record
        self.ledger = ledger
        self.trace = trace
        self.workspace = workspace
        self.started = time.monotonic()
        self.seq = itertools.count(1)
        self.tool_calls = 0
        self.artifact_refs: List[str] = []
        self.closed = False
        # Re-entrant: the SIGTERM handler may close the run while the main thread is
        # between two statements of a write.
        self.lock = _thread.RLock()


# Production backends with a run still open, for the exit hooks. Strong references: a
# Client dropped while its run is open must still have that run closed at exit.
_live_backends: "Set[ProductionBackend]" = set()
_hooks_installed = False
_hooks_lock = _thread.allocate_lock()
_last_uncaught: List[str] = []


def _close_abandoned(status: str, reason: str) -> None:
    for backend in list(_live_backends):
        try:
            backend.abandon(status, "unknown", reason)
        except Exception as exc:  # the exit path must go on for the other runs
            print(f"agent_replay: could not close run: {exc}", file=sys.stderr)


def _atexit_hook() -> None:
    reason = "the process exited without closing the run"
    if _last_uncaught:
        reason += f" (uncaught {_last_uncaught[-1]})"
    _close_abandoned("failed", reason)


def _on_sigterm(signum: int, frame: Any) -> None:
    if getattr(_appending, "depth", 0):
        _appending.sigterm = True
        return
    import signal

    _close_abandoned("aborted", "terminated by SIGTERM before closing the run")
    # Die of the signal, as the default action would have: the exit status stays honest.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_exit_hooks(handle_signals: bool) -> None:
    global _hooks_installed
    import signal
    import threading

    with _hooks_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
        atexit.register(_atexit_hook)
        previous = sys.excepthook

        def excepthook(exc_type: Any, exc: Any, tb: Any) -> None:
            _last_uncaught.append(f"{exc_type.__name__}: {exc}")
            previous(exc_type, exc, tb)

        sys.excepthook = excepthook
        if (
            handle_signals
            and threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        ):
            signal.signal(signal.SIGTERM, _on_sigterm)


class ProductionBackend:
    """Runs tools itself and writes the ledger record and the trace (SPEC §7, §8).

    One run at a time: ``start_run`` while a run is open is an error (use one ``Client``
    per concurrent run). Calls after ``close_run`` still work and are still traced, as
    the gateway keeps answering after ``run/close``.
    """

    def __init__(self, ledger: Optional[str] = None, traces: Optional[str] = None, handle_signals: bool = True) -> None:
        self.ledger = ledger
        self.traces = traces
        self.handle_signals = handle_signals
        self._run: Optional[_OpenRun] = None

    # -- state

    @property
    def current(self) -> Optional[_OpenRun]:
        return self._run

    def is_open(self) -> bool:
        return self._run is not None and not self._run.closed

    def _need_run(self) -> _OpenRun:
        if self._run is None:
            raise RuntimeError("agent_replay: no run started: call start_run() first")
        return self._run

    def _trace(self, run: _OpenRun, obj: Dict[str, Any], sync: bool = False) -> None:
        append_line(run.trace, _dumps(obj).encode("utf-8"), sync=sync, mode=0o600)

    # -- the run

    def start_run(
        self,
        envelope: Dict[str, Any],
        raw: bytes,
        *,
        agent: Optional[str] = None,
        task_id: Optional[str] = None,
        attempt: Optional[int] = None,
        model: Optional[str] = None,
        prompt_version: Optional[str] = None,
        code_version: Optional[str] = None,
        ledger: Optional[str] = None,
        traces: Optional[str] = None,
        snapshot: Iterable[str] = (),
        workspace: Optional[str] = None,
    ) -> Dict[str, Any]:
        if self.is_open():
            raise RuntimeError(
                f"agent_replay: run {self._run.record['run_id']} is still open; close it before starting another "  # type: ignore[union-attr]
                "(or use one Client per concurrent run)"
            )
        root = os.path.realpath(workspace or os.getcwd())
        base = _find_project_dir(root)
        explicit = ledger or self.ledger
        if explicit and _is_database_url(explicit):
            raise ValueError(
                "agent_replay: ledger= is a database URL: the client writes a local JSONL file; "
                "give it a file and ship it with `agent-replay ledger push FILE --to postgres://...`"
            )
        env_ledger = os.environ.get(LEDGER_ENV)
        # A database URL there is the tools' ledger; this client writes the local file
        # that `agent-replay ledger push` ships into it.
        if env_ledger and _is_database_url(env_ledger):
            env_ledger = None
        ledger_path = os.path.abspath(explicit or env_ledger or os.path.join(base, DEFAULT_LEDGER))
        traces_dir = os.path.abspath(traces or self.traces or os.environ.get(TRACES_ENV) or os.path.join(base, DEFAULT_TRACES))

        def text(value: Any) -> Optional[str]:
            return None if value is None else str(value)

        def strings(value: Any) -> Optional[List[str]]:
            return [str(v) for v in value] if isinstance(value, list) else None

        env_attempt = envelope.get("attempt", 1)
        env_timeout = envelope.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        import uuid

        run_id = str(uuid.uuid4())
        record: Dict[str, Any] = {
            "run_id": run_id,
            "run_type": "production",
            "fixture_id": None,
            "task_id": text(task_id if task_id is not None else envelope.get("task_id")),
            "attempt": attempt if attempt is not None else (env_attempt if isinstance(env_attempt, int) else None),
            "agent_name": text(agent if agent is not None else envelope.get("agent")),
            "started_at": now_rfc3339(),
            "closed_at": None,
            "code_version": text(code_version if code_version is not None else os.environ.get(CODE_VERSION_ENV)),
            "model": text(model if model is not None else envelope.get("model")),
            "prompt_version": text(prompt_version if prompt_version is not None else envelope.get("prompt_version")),
            "tool_allowlist": strings(envelope.get("tool_allowlist")),
            "timeout_seconds": env_timeout if isinstance(env_timeout, (int, float)) and not isinstance(env_timeout, bool) else None,
            "input_sha256": sha256_hex(raw),
            "state_refs": strings(envelope.get("state_refs")) or [],
            "artifact_refs": [],
            "status": "RUNNING",
            "failure_class": None,
            "failure_reason": None,
            "verdict": None,
            "reasons": None,
            "mode": None,
            "duration_ms": None,
            "tool_calls": 0,
        }
        files, skipped = self._snapshot(root, list(record["state_refs"]) + [str(p) for p in snapshot])
        run = _OpenRun(record, ledger_path, os.path.join(traces_dir, f"{run_id}.jsonl"), root)
        # The ledger first: from here on the run exists and must be closed.
        append_line(ledger_path, _dumps(record).encode("utf-8"))
        self._run = run
        _live_backends.add(self)
        _install_exit_hooks(self.handle_signals)
        start = (
            '{"type":"start","run":' + _dumps(record)
            + ',"input":' + raw.decode("utf-8")
            + ',"workspace":' + _dumps(files) + "}"
        )
        append_line(run.trace, start.encode("utf-8"), mode=0o600)
        for path, why in skipped:
            self._trace(run, {"type": "event", "name": "snapshot_skipped", "data": {"path": path, "why": why}, "at": now_rfc3339()})
        return dict(record)

    @staticmethod
    def _snapshot(root: str, paths: List[str]) -> Tuple[Dict[str, Dict[str, str]], List[Tuple[str, str]]]:
        """The start snapshot: ``{rel: {"sha256", "content_b64"}}`` for every file under the
        given workspace paths (directories recursively); paths that cannot be had are
        returned apart with why."""
        import base64

        files: Dict[str, Dict[str, str]] = {}
        skipped: List[Tuple[str, str]] = []

        def add(rel: str, real: str) -> None:
            with open(real, "rb") as fh:
                data = fh.read()
            files[rel] = {"sha256": sha256_hex(data), "content_b64": base64.b64encode(data).decode("ascii")}

        for path in paths:
            inside = _workspace_path(root, path)
            if inside is None:
                skipped.append((path, "outside the workspace"))
                continue
            rel, real = inside
            if os.path.isfile(real):
                add(rel, real)
            elif os.path.isdir(real):
                for dirpath, dirnames, filenames in os.walk(real):
                    dirnames.sort()
                    for name in sorted(filenames):
                        full = os.path.join(dirpath, name)
                        if os.path.isfile(full) and not os.path.islink(full):
                            add(os.path.relpath(full, root).replace(os.sep, "/"), full)
            else:
                skipped.append((path, "missing"))
        return dict(sorted(files.items())), skipped

    def list_tools(self) -> List[Dict[str, Any]]:
        # Overridden by Client, which knows the registered tools.
        run = self._need_run()
        return [{"name": n} for n in run.record["tool_allowlist"] or []]

    def call_tool(
        self, name: str, arguments: Dict[str, Any], impl: Optional[Impl] = None, effect: Optional[str] = None
    ) -> Dict[str, Any]:
        run = self._need_run()
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise ToolError(INVALID_PARAMS, "invalid params: `name` must be a string and `arguments` an object",
                            {"tool": name, "reason": "invalid_params"})
        effect = effect or "write"
        if effect not in ("read", "write"):
            raise ValueError(f"agent_replay: effect must be 'read' or 'write', not {effect!r}")
        allowlist = run.record["tool_allowlist"]
        if allowlist is not None and name not in allowlist:
            with run.lock:
                run.tool_calls += 1
                self._trace(run, {"type": "event", "name": "tool_refused",
                                  "data": {"tool": name, "reason": "not_allowed"}, "at": now_rfc3339()})
            raise ToolError(NOT_ALLOWED, f"tool `{name}` is not in the tool_allowlist {allowlist}",
                            {"tool": name, "reason": "not_allowed"})
        if impl is None:
            raise RuntimeError(
                f"agent_replay: no implementation for tool {name!r} in production: pass impl= to call_tool "
                "or register_tool() it"
            )
        recorded_args = _loads(_dumps(arguments))  # as sent, before impl can mutate them
        with run.lock:
            seq = next(run.seq)
            run.tool_calls += 1
        at = now_rfc3339()
        began = time.monotonic()
        try:
            result = call_tool_result(impl(arguments))
        except BaseException as exc:
            self._trace_call(run, seq, name, recorded_args, _error_result(exc), effect, at, began)
            raise
        self._trace_call(run, seq, name, recorded_args, result, effect, at, began)
        return result

    def _trace_call(self, run: _OpenRun, seq: int, name: str, arguments: Any, result: Dict[str, Any],
                    effect: str, at: str, began: float) -> None:
        self._trace(run, {
            "type": "tool_call", "seq": seq, "tool": name, "arguments": arguments, "result": result,
            "effect": effect, "at": at, "duration_ms": int((time.monotonic() - began) * 1000),
        })

    def record_event(self, name: str, data: Any) -> None:
        run = self._need_run()
        if not isinstance(name, str):
            raise GatewayError(INVALID_PARAMS, "invalid params: `name` must be a string", {"reason": "invalid_params"})
        self._trace(run, {"type": "event", "name": name, "data": data, "at": now_rfc3339()})

    def record_artifact(self, path: str) -> Dict[str, Any]:
        run = self._need_run()
        inside = _workspace_path(run.workspace, path) if isinstance(path, str) else None
        if inside is None:
            raise GatewayError(
                INVALID_PARAMS,
                f"invalid params: artifact path `{path}` is outside the workspace (absolute, `..` or through a "
                "symlink); report paths relative to the working directory",
                {"reason": "invalid_params"},
            )
        rel, real = inside
        sha, size = _hash_file(real) if os.path.isfile(real) else (None, 0)
        with run.lock:
            if rel not in run.artifact_refs:
                run.artifact_refs.append(rel)
            self._trace(run, {"type": "artifact", "path": rel, "sha256": sha, "bytes": size})
        return {"sha256": sha, "bytes": size}

    def close_run(
        self, status: str, output: Any, failure_class: Optional[str], failure_reason: Optional[str]
    ) -> None:
        run = self._need_run()
        claimed = str(status).lower()
        if claimed not in LEDGER_STATUS:
            raise ValueError(
                f"agent_replay: unknown run status {status!r}; use one of {', '.join(LEDGER_STATUS)}"
            )
        with run.lock:
            if run.closed:
                self._trace(run, {"type": "event", "name": "duplicate_close",
                                  "data": {"status": status, "output": output, "failure_class": failure_class,
                                           "failure_reason": failure_reason}, "at": now_rfc3339()})
                raise GatewayError(REFUSED, "the run is already closed: close_run may be called once",
                                   {"reason": "already_closed"})
            at = now_rfc3339()
            self._trace(run, {"type": "close", "status": claimed, "output": output, "failure_class": failure_class,
                              "failure_reason": failure_reason, "at": at}, sync=True)
            refs = list(run.artifact_refs)
            if isinstance(output, dict) and isinstance(output.get("artifact_refs"), list):
                refs += [r for r in output["artifact_refs"] if isinstance(r, str) and r not in refs]
            run.record.update(
                closed_at=at,
                artifact_refs=refs,
                status=LEDGER_STATUS[claimed],
                failure_class=failure_class,
                failure_reason=failure_reason,
                duration_ms=int((time.monotonic() - run.started) * 1000),
                tool_calls=run.tool_calls,
            )
            append_line(run.ledger, _dumps(run.record).encode("utf-8"), sync=True)
            run.closed = True
        _live_backends.discard(self)

    def abandon(self, status: str, failure_class: str, failure_reason: str) -> bool:
        """Close the run if it is still open (the exit path); True when it closed it."""
        run = self._run
        if run is None or run.closed:
            return False
        with run.lock:
            if run.closed:
                return False
            self.close_run(status, None, failure_class, failure_reason)
        return True


def _default_backend(ledger: Optional[str] = None, traces: Optional[str] = None) -> Backend:
    """Pick the backend from the environment: the gateway when a socket is given."""
    path = os.environ.get(SOCKET_ENV)
    if path:
        return GatewayBackend(path)
    return ProductionBackend(ledger=ledger, traces=traces)


# -------------------------------------------------------------------------- client


_START_OPTIONS = frozenset(
    ("agent", "task_id", "attempt", "model", "prompt_version", "code_version", "ledger", "traces", "snapshot",
     "workspace")
)


class Client:
    """The agent's handle on the run: input, tools, events, artifacts, close.

    The backend is created on first use, so importing the module or reading the
    input never fails for lack of a gateway. ``ledger`` and ``traces`` only matter in
    production.
    """

    def __init__(self, backend: Optional[Backend] = None, *, ledger: Optional[str] = None,
                 traces: Optional[str] = None) -> None:
        self._backend = backend
        self._ledger = ledger
        self._traces = traces
        self._input: Optional[Dict[str, Any]] = None
        self._tools: Dict[str, Tuple[Impl, str]] = {}
        self._started = False
        self._closed = False

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = _default_backend(self._ledger, self._traces)
        return self._backend

    @property
    def production(self) -> bool:
        """True when calls are executed and recorded here rather than by the gateway."""
        return isinstance(self.backend, ProductionBackend)

    @property
    def closed(self) -> bool:
        """Whether this client's current run was closed (by the agent or the exit path)."""
        backend = self.backend
        if isinstance(backend, ProductionBackend) and backend.current is not None:
            return backend.current.closed
        return self._closed

    def read_input(self) -> Dict[str, Any]:
        """The task envelope (input.json), parsed once and cached.

        The harness pipes the exact bytes on stdin; stdin can be read only once, hence
        the cache. When stdin is empty or a terminal, ``AGENT_REPLAY_INPUT`` names a
        file holding the envelope (under the harness: a read-only copy of input.json).
        """
        if self._input is None:
            raw = b""
            stdin = sys.stdin
            if stdin is not None and not stdin.isatty():
                raw = stdin.buffer.read()
            if not raw.strip():
                path = os.environ.get(INPUT_ENV)
                if not path:
                    raise RuntimeError(
                        f"agent_replay: no task envelope on stdin and {INPUT_ENV} is unset"
                    )
                with open(path, "rb") as fh:
                    raw = fh.read()
            envelope = _loads(raw.decode("utf-8"))
            if not isinstance(envelope, dict):
                raise ValueError("agent_replay: the task envelope is not a JSON object")
            self._input = envelope
        return self._input

    def register_tool(self, name: str, impl: Impl, effect: str = "write") -> None:
        """Give a tool its production implementation, so ``call_tool(name, args)`` needs
        no ``impl=``. ``effect`` is ``read`` (no side effect) or ``write`` (the default:
        unknown is dangerous, SPEC §1.2). Ignored under the harness."""
        if effect not in ("read", "write"):
            raise ValueError(f"agent_replay: effect must be 'read' or 'write', not {effect!r}")
        self._tools[name] = (impl, effect)

    def start_run(self, envelope: Optional[Dict[str, Any]] = None, **options: Any) -> Dict[str, Any]:
        """Open the run and return its record (``run_id`` ...). A no-op under the gateway.

        ``envelope`` defaults to ``read_input()``. Options (production only):
        ``agent``, ``task_id``, ``attempt``, ``model``, ``prompt_version`` (override the
        envelope's), ``code_version`` (else ``$AGENT_REPLAY_CODE_VERSION``), ``ledger``,
        ``traces``, ``snapshot`` (extra workspace paths for the start snapshot, besides
        the envelope's ``state_refs``) and ``workspace`` (default: the working directory).
        An unknown option is a ``TypeError``.
        """
        unknown = set(options) - _START_OPTIONS
        if unknown:
            raise TypeError(f"agent_replay: start_run() got unknown options {sorted(unknown)}; "
                            f"known: {sorted(_START_OPTIONS)}")
        env = self.read_input() if envelope is None else envelope
        if not isinstance(env, dict):
            raise ValueError("agent_replay: the task envelope is not a JSON object")
        self._input = env
        record = self.backend.start_run(env, envelope_bytes(env), **options)
        self._started = True
        self._closed = False
        return record

    def _ensure_started(self) -> None:
        # In production a run must exist before anything is recorded; an agent that
        # forgot start_run (a no-op under the gateway) gets one opened implicitly.
        if not self._started and isinstance(self.backend, ProductionBackend) and self.backend.current is None:
            self.start_run()

    def list_tools(self) -> List[Dict[str, Any]]:
        """The tools this run may call (the allowlist; in production without one, the
        registered tools)."""
        backend = self.backend
        if isinstance(backend, ProductionBackend):
            self._ensure_started()
            allowlist = backend.current.record["tool_allowlist"] if backend.current else None  # type: ignore[union-attr]
            return [{"name": n} for n in (allowlist if allowlist is not None else sorted(self._tools))]
        return backend.list_tools()

    def call_tool(self, name: str, arguments: Optional[Dict[str, Any]] = None, impl: Optional[Impl] = None,
                  effect: Optional[str] = None) -> Dict[str, Any]:
        """Call a tool; return its MCP ``CallToolResult`` (check ``isError`` yourself).

        In production ``impl(arguments)`` runs (``impl`` defaults to the registered one)
        and the call is traced with ``effect`` (default: the registered one, else
        ``write``); under the harness the gateway answers and ``impl`` is ignored.
        Raises ToolError when the call is refused (unrecorded, not in the allowlist,
        invalid params); re-raises what ``impl`` raised after recording it as
        ``isError: true``.
        """
        args = {} if arguments is None else arguments
        backend = self._backend or self.backend
        if type(backend) is GatewayBackend:
            # Under the harness: nothing to start or register, straight to the wire.
            return backend.call_tool(name, args)
        if impl is None and name in self._tools:
            impl, registered_effect = self._tools[name]
            effect = effect or registered_effect
        self._ensure_started()
        return backend.call_tool(name, args, impl, effect)

    def record_event(self, name: str, data: Any = None) -> None:
        """Record a named event (checkpoint, warning) in the run's trace."""
        self._ensure_started()
        self.backend.record_event(name, {} if data is None else data)

    def record_artifact(self, path: str) -> Dict[str, Any]:
        """Declare a workspace file as a deliverable; returns ``{"sha256", "bytes"}``
        (``sha256`` null and ``bytes`` 0 when the file does not exist)."""
        self._ensure_started()
        return self.backend.record_artifact(path)

    def close_run(
        self,
        status: str,
        output: Any = None,
        failure_class: Optional[str] = None,
        failure_reason: Optional[str] = None,
    ) -> None:
        """Close the run with the status the agent claims (the verdict is the harness's).

        In production ``status`` is one of ``succeeded``, ``failed``, ``timed_out``,
        ``aborted`` (ledger ``SUCCEEDED``, ``FAILED``, ``TIMED_OUT``, ``ABORTED``); a second
        close raises GatewayError (``already_closed``), as the gateway answers.
        """
        self._ensure_started()
        self.backend.close_run(status, output, failure_class, failure_reason)
        self._closed = True

    def run(self, envelope: Optional[Dict[str, Any]] = None, **options: Any) -> "Run":
        """A context manager around one run: ``with client.run(agent="research") as run:``."""
        return Run(self, envelope, options)


class Run:
    """``with agent_replay.run(envelope, agent=...) as run:`` — a run that always closes.

    Entering starts the run (``start_run(envelope, **options)``). Leaving the block
    without having closed it closes it ``failed`` with ``failure_class: "unknown"``:
    with the exception text when the block raised (``aborted`` for KeyboardInterrupt),
    with "the run ended without close_run" when it did not. The exception propagates.
    The same happens under the gateway, so the harness sees the same close.
    """

    def __init__(self, client: Client, envelope: Optional[Dict[str, Any]], options: Dict[str, Any]) -> None:
        self.client = client
        self._envelope = envelope
        self._options = options
        self.record: Dict[str, Any] = {}

    @property
    def run_id(self) -> Optional[str]:
        return self.record.get("run_id")

    @property
    def envelope(self) -> Dict[str, Any]:
        return self.client.read_input()

    def __enter__(self) -> "Run":
        self.record = self.client.start_run(self._envelope, **self._options)
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self.client.closed:
            return False
        if exc_type is None:
            status, reason = "failed", "the run ended without close_run"
        elif issubclass(exc_type, KeyboardInterrupt):
            status, reason = "aborted", "KeyboardInterrupt"
        elif issubclass(exc_type, SystemExit):
            status, reason = "failed", f"SystemExit({exc.code!r}) before close_run"
        else:
            status, reason = "failed", f"{exc_type.__name__}: {exc}"
        try:
            self.client.close_run(status, None, "unknown", reason)
        except Exception:
            if exc_type is None:
                raise
            # Never hide the agent's own exception behind a failed close.
        return False

    def call_tool(self, name: str, arguments: Optional[Dict[str, Any]] = None, impl: Optional[Impl] = None,
                  effect: Optional[str] = None) -> Dict[str, Any]:
        return self.client.call_tool(name, arguments, impl=impl, effect=effect)

    def list_tools(self) -> List[Dict[str, Any]]:
        return self.client.list_tools()

    def record_event(self, name: str, data: Any = None) -> None:
        self.client.record_event(name, data)

    def record_artifact(self, path: str) -> Dict[str, Any]:
        return self.client.record_artifact(path)

    def close_run(self, status: str, output: Any = None, failure_class: Optional[str] = None,
                  failure_reason: Optional[str] = None) -> None:
        self.client.close_run(status, output, failure_class, failure_reason)

    close = close_run


# ------------------------------------------------------------- module-level API

_default: Optional[Client] = None
_default_lock = _thread.allocate_lock()


def default_client() -> Client:
    """The process-wide client behind the module-level functions."""
    global _default
    client = _default
    if client is not None:  # set once, never unset: no lock needed to read it
        return client
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def read_input() -> Dict[str, Any]:
    return default_client().read_input()


def start_run(envelope: Optional[Dict[str, Any]] = None, **options: Any) -> Dict[str, Any]:
    return default_client().start_run(envelope, **options)


def register_tool(name: str, impl: Impl, effect: str = "write") -> None:
    default_client().register_tool(name, impl, effect)


def list_tools() -> List[Dict[str, Any]]:
    return default_client().list_tools()


def call_tool(name: str, arguments: Optional[Dict[str, Any]] = None, impl: Optional[Impl] = None,
              effect: Optional[str] = None) -> Dict[str, Any]:
    return default_client().call_tool(name, arguments, impl=impl, effect=effect)


def record_event(name: str, data: Any = None) -> None:
    default_client().record_event(name, data)


def record_artifact(path: str) -> Dict[str, Any]:
    return default_client().record_artifact(path)


def close_run(
    status: str,
    output: Any = None,
    failure_class: Optional[str] = None,
    failure_reason: Optional[str] = None,
) -> None:
    default_client().close_run(status, output, failure_class, failure_reason)


def run(envelope: Optional[Dict[str, Any]] = None, **options: Any) -> Run:
    return default_client().run(envelope, **options)


for _fn in (read_input, start_run, register_tool, list_tools, call_tool, record_event, record_artifact,
            close_run, run):
    _fn.__doc__ = getattr(Client, _fn.__name__).__doc__
del _fn
