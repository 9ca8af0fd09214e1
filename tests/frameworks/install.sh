#!/usr/bin/env bash
# Installs the pinned agent frameworks whose own OpenTelemetry instrumentation the scripts in
# tests/frameworks/ drive offline (pydantic-ai, LangGraph + OpenInference, OpenAI Agents SDK +
# OpenInference), with the official OTLP encoders and the real OpenAI model clients that --replay
# uses (pydantic-ai's and the Agents SDK's own, langchain-openai for LangGraph), into a throwaway
# virtualenv at $TARGET/frameworks-venv ($TARGET is $CARGO_TARGET_DIR, else target/).
# Idempotent: a stamp holding the pins (and constraints.txt) makes a second run a no-op; change a
# pin and the next run reinstalls. Prints the venv's python on stdout.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-target}

# Top-level pins. constraints.txt beside this file pins every transitive dependency too.
# langchain-core stays at 1.8.3: 1.8.4 needs a langchain-protocol newer than the registry has.
PY_PINS="pydantic-ai-slim==2.68.0 \
opentelemetry-sdk==1.45.2 \
opentelemetry-exporter-otlp-proto-common==1.45.2 \
opentelemetry-exporter-otlp-json-file==0.66b1 \
protobuf==7.36.2 \
langgraph==1.2.24 \
langchain-core==1.8.3 \
langchain-openai==1.8.1 \
openinference-instrumentation-langchain==0.1.80 \
openai-agents==0.24.0 \
openai==3.60.0 \
openinference-instrumentation-openai-agents==2.6.0"

constraints=tests/frameworks/constraints.txt
venv="$target/frameworks-venv"
stamp="$venv/.agent-replay-frameworks-stamp"
want="$PY_PINS $(sha256sum "$constraints" | cut -d' ' -f1)"

if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "tests/frameworks/install.sh: installing $PY_PINS into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c "$constraints" $PY_PINS
    echo "$want" >"$stamp"
fi
echo "$venv/bin/python"
