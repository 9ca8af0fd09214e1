#!/usr/bin/env bash
# Installs the pinned official SDKs that tests/integration/http_sdks.rs drives as agents, and
# the official MCP Python SDK with two real MCP servers for tests/integration/mcp.rs,
# and playwright-core for the HTML report's browser test (tests/integration/browser.rs), into
# a throwaway Python virtualenv at $TARGET/sdk-venv and a node_modules at $TARGET/sdk-node
# ($TARGET is $CARGO_TARGET_DIR, else target/). Idempotent: a stamp holding the pins makes
# a second run a no-op; change a pin and the next run reinstalls.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-target}

PY_PINS="openai==3.57.0 anthropic==2.16.0 httpx==0.29.0 requests==2.34.2 mcp==2.3.0 mcp-server-time==2026.10.19 aiohttp==3.14.5"
NODE_PINS="openai@7.59.0 @modelcontextprotocol/server-filesystem@2026.8.31 playwright-core@1.65.2"

venv="$target/sdk-venv"
node="$target/sdk-node"
stamp_py="$venv/.agent-replay-sdk-stamp"
stamp_node="$node/.agent-replay-sdk-stamp"

if [ "$(cat "$stamp_py" 2>/dev/null)" != "$PY_PINS" ]; then
    echo "tests/sdk/install.sh: installing $PY_PINS into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $PY_PINS
    echo "$PY_PINS" >"$stamp_py"
fi

if [ "$(cat "$stamp_node" 2>/dev/null)" != "$NODE_PINS" ]; then
    echo "tests/sdk/install.sh: installing $NODE_PINS into $node" >&2
    rm -rf "$node"
    mkdir -p "$node"
    echo '{"name": "agent-replay-sdk-tests", "private": true}' >"$node/package.json"
    npm install --prefix "$node" --no-audit --no-fund --silent --save-exact $NODE_PINS
    echo "$NODE_PINS" >"$stamp_node"
fi
