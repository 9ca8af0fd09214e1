"""An unchanged MCP agent: the official MCP Python SDK (ClientSession, stdio_client).

Its MCP configuration is the one line §13 asks for: the server is started as
`agent-replay mcp-shim --server NAME -- UPSTREAM...`. The task (stdin) names the server,
the upstream command and the calls; the results go into the run's output. The run is
closed over the gateway socket when there is one (under the harness).
"""
import asyncio
import json
import os
import socket
import sys

from mcp import ClientSession, StdioServerParameters, stdio_client


async def session(task):
    params = StdioServerParameters(
        command="agent-replay",
        args=["mcp-shim", "--server", task["server"], "--", *task["upstream"]],
    )
    results = []
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            await s.initialize()
            listed = await s.list_tools()
            names = sorted(t.name for t in listed.tools)
            for name, arguments in task["calls"]:
                r = await s.call_tool(name, arguments)
                text = " ".join(getattr(b, "text", "") for b in r.content)
                results.append({"tool": name, "is_error": bool(r.is_error), "text": text,
                                "structured": r.structured_content})
    return names, results


def close(output):
    path = os.environ.get("AGENT_REPLAY_SOCKET")
    if not path:
        print(json.dumps(output))
        return
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        msg = {"jsonrpc": "2.0", "id": 1, "method": "run/close",
               "params": {"status": "succeeded", "output": output}}
        s.sendall((json.dumps(msg) + "\n").encode())
        s.recv(65536)


def main():
    envelope = json.load(sys.stdin)
    task = envelope["task"]
    names, results = asyncio.run(session(task))
    close({"tools": names, "results": results})


if __name__ == "__main__":
    main()
