"""A raw MCP client (no SDK): starts `agent-replay mcp-shim --server time` and speaks
JSON-RPC lines to it, probing the handshakes of rule 42. What the shim answered becomes
the run's output (closed over the gateway socket)."""
import json
import os
import socket
import subprocess

shim = subprocess.Popen(["agent-replay", "mcp-shim", "--server", "time"],
                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")})


def ask(i, method, params=None):
    msg = {"jsonrpc": "2.0", "id": i, "method": method}
    if params is not None:
        msg["params"] = params
    shim.stdin.write(json.dumps(msg) + "\n")
    shim.stdin.flush()
    return json.loads(shim.stdout.readline())


meta = lambda v: {"_meta": {"io.modelcontextprotocol/protocolVersion": v}}
out = {
    "init_old": ask(1, "initialize", {"protocolVersion": "2025-03-26", "capabilities": {}}),
    "init_unknown": ask(2, "initialize", {"protocolVersion": "1999-01-01", "capabilities": {}}),
    "discover_other": ask(3, "server/discover", meta("2030-01-01")),
    "discover": ask(4, "server/discover", meta("2026-07-28")),
    "ping": ask(5, "ping"),
    "list": ask(6, "tools/list"),
    "call": ask(7, "tools/call", {"name": "get_current_time", "arguments": {"timezone": "UTC"}}),
    "unrecorded": ask(8, "tools/call", {"name": "get_current_time", "arguments": {"timezone": "Mars"}}),
    "unknown": ask(9, "resources/list"),
}
shim.stdin.close()
shim.wait()
with socket.socket(socket.AF_UNIX) as s:
    s.connect(os.environ["AGENT_REPLAY_SOCKET"])
    s.sendall((json.dumps({"jsonrpc": "2.0", "id": 1, "method": "run/close",
                           "params": {"status": "succeeded", "output": out}}) + "\n").encode())
    s.recv(65536)
