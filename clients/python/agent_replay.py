"""agent_replay — the Python client an agent uses to talk to agent-replay.

One code path for production and replay (SPEC §8): an agent calls ``read_input``,
``call_tool``, ``record_event``, ``record_artifact`` and ``close_run`` the same way
everywhere, and a *backend* decides where the calls go.

* Under the harness (``AGENT_REPLAY_SOCKET`` is set) they go to the gateway over a
  Unix socket, as newline-delimited JSON-RPC 2.0 (SPEC §2). Tool calls are answered
  from the fixture's cassette, so the agent never reaches a real tool.
* In production (no socket) a backend will write a ledger record and a JSON Lines
  trace (SPEC §7-§8). It does not exist yet: using the client without a socket
  raises a ``RuntimeError`` that says so, rather than silently calling nothing.

Standard library only, Python 3.9+. The module-level functions use a lazily created
default ``Client``; create your own ``Client`` to hold several connections.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import sys
import threading
from typing import Any, BinaryIO, Dict, List, Optional, Protocol

__all__ = [
    "Backend",
    "Client",
    "GatewayBackend",
    "GatewayError",
    "ToolError",
    "call_tool",
    "close_run",
    "default_client",
    "list_tools",
    "read_input",
    "record_artifact",
    "record_event",
    "start_run",
]

SOCKET_ENV = "AGENT_REPLAY_SOCKET"
INPUT_ENV = "AGENT_REPLAY_INPUT"

# JSON-RPC error codes the gateway uses for tools/call (SPEC §2, §10 rule 15).
UNRECORDED_CALL = -32001
NOT_ALLOWED = -32002
INVALID_PARAMS = -32602


class GatewayError(Exception):
    """A JSON-RPC error answer from the gateway.

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
        """``data.reason`` when the gateway gave one (unrecorded, not_allowed, ...)."""
        return self.data.get("reason") if isinstance(self.data, dict) else None


class ToolError(GatewayError):
    """A ``tools/call`` the gateway refused: unrecorded, not allowed, invalid params.

    Distinct from a tool that answered with ``isError: true``: that is a normal
    ``CallToolResult`` the agent must handle itself, exactly as in production.
    """

    @property
    def closest(self) -> Optional[Dict[str, Any]]:
        """The nearest recorded interaction (``data.closest``), to explain a miss."""
        return self.data.get("closest") if isinstance(self.data, dict) else None


class Backend(Protocol):
    """Where the client's calls go. The gateway is one; production capture is the next."""

    def start_run(self, **fields: Any) -> Dict[str, Any]: ...
    def list_tools(self) -> List[Dict[str, Any]]: ...
    def call_tool(self, name: str, arguments: Dict[str, Any]) -> Dict[str, Any]: ...
    def record_event(self, name: str, data: Any) -> None: ...
    def record_artifact(self, path: str) -> Dict[str, Any]: ...
    def close_run(
        self, status: str, output: Any, failure_class: Optional[str], failure_reason: Optional[str]
    ) -> None: ...


class GatewayBackend:
    """Speaks JSON-RPC 2.0, one object per line, over the harness's Unix socket.

    One connection, opened on first use; requests are sent one at a time (a lock
    keeps threads from interleaving lines) and each reads exactly one response line,
    which is how the gateway answers (in order, per connection).
    """

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._sock: Optional[socket.socket] = None
        self._reader: Optional[BinaryIO] = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise RuntimeError(
                f"agent_replay: cannot connect to the gateway at {self.socket_path!r}: {exc}"
            ) from exc
        self._sock = sock
        self._reader = sock.makefile("rb")

    def request(self, method: str, params: Dict[str, Any]) -> Any:
        """Send one request and return its ``result``; raise GatewayError on ``error``."""
        with self._lock:
            if self._sock is None:
                self._connect()
            assert self._sock is not None and self._reader is not None
            req_id = next(self._ids)
            line = json.dumps(
                {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params},
                ensure_ascii=False,
                separators=(",", ":"),
            )
            self._sock.sendall(line.encode("utf-8") + b"\n")
            raw = self._reader.readline()
        if not raw:
            raise RuntimeError(f"agent_replay: the gateway closed the connection during {method}")
        try:
            response = json.loads(raw)
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

    def start_run(self, **fields: Any) -> Dict[str, Any]:
        # The harness opened the run before starting the agent: nothing to send.
        return {"run_id": os.environ.get("AGENT_REPLAY_RUN_ID")}

    def list_tools(self) -> List[Dict[str, Any]]:
        result = self.request("tools/list", {})
        return list((result or {}).get("tools", []))

    def call_tool(self, name: str, arguments: Dict[str, Any]) -> Dict[str, Any]:
        return self.request("tools/call", {"name": name, "arguments": arguments})

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
        if self._reader is not None:
            self._reader.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = self._reader = None


def _default_backend() -> Backend:
    """Pick the backend from the environment: the gateway when a socket is given."""
    path = os.environ.get(SOCKET_ENV)
    if path:
        return GatewayBackend(path)
    # Production capture (ledger record + JSON Lines trace, SPEC §7-§8) comes later.
    raise RuntimeError(
        f"agent_replay: {SOCKET_ENV} is unset and the production backend (ledger + trace) "
        "is not available yet; run this agent under `agent-replay run`"
    )


class Client:
    """The agent's handle on the run: input, tools, events, artifacts, close.

    The backend is created on first use, so importing the module or reading the
    input never fails for lack of a gateway.
    """

    def __init__(self, backend: Optional[Backend] = None) -> None:
        self._backend = backend
        self._input: Optional[Dict[str, Any]] = None

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = _default_backend()
        return self._backend

    def read_input(self) -> Dict[str, Any]:
        """The task envelope (input.json), parsed once and cached.

        The harness pipes the exact bytes on stdin; stdin can be read only once, hence
        the cache. When stdin is empty or a terminal, ``AGENT_REPLAY_INPUT`` names a
        read-only copy of the same file.
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
            envelope = json.loads(raw.decode("utf-8"))
            if not isinstance(envelope, dict):
                raise ValueError("agent_replay: the task envelope is not a JSON object")
            self._input = envelope
        return self._input

    def start_run(self, **fields: Any) -> Dict[str, Any]:
        """Open the run. A no-op under the gateway (the harness opened it)."""
        return self.backend.start_run(**fields)

    def list_tools(self) -> List[Dict[str, Any]]:
        """The tools this run may call (the fixture's allowlist)."""
        return self.backend.list_tools()

    def call_tool(self, name: str, arguments: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Call a tool; return its MCP ``CallToolResult`` (check ``isError`` yourself).

        Raises ToolError when the gateway refuses the call (unrecorded, not allowed,
        invalid params): in production such a call would have reached a real tool.
        """
        return self.backend.call_tool(name, {} if arguments is None else arguments)

    def record_event(self, name: str, data: Any = None) -> None:
        """Record a named event (checkpoint, warning) in the run's trace."""
        self.backend.record_event(name, {} if data is None else data)

    def record_artifact(self, path: str) -> Dict[str, Any]:
        """Declare a workspace file as a deliverable; returns ``{"sha256", "bytes"}``."""
        return self.backend.record_artifact(path)

    def close_run(
        self,
        status: str,
        output: Any = None,
        failure_class: Optional[str] = None,
        failure_reason: Optional[str] = None,
    ) -> None:
        """Close the run with the status the agent claims (the verdict is the harness's)."""
        self.backend.close_run(status, output, failure_class, failure_reason)


_default: Optional[Client] = None
_default_lock = threading.Lock()


def default_client() -> Client:
    """The process-wide client behind the module-level functions."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Client()
        return _default


def read_input() -> Dict[str, Any]:
    return default_client().read_input()


def start_run(**fields: Any) -> Dict[str, Any]:
    return default_client().start_run(**fields)


def list_tools() -> List[Dict[str, Any]]:
    return default_client().list_tools()


def call_tool(name: str, arguments: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return default_client().call_tool(name, arguments)


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


for _fn in (read_input, start_run, list_tools, call_tool, record_event, record_artifact, close_run):
    _fn.__doc__ = getattr(Client, _fn.__name__).__doc__
del _fn
