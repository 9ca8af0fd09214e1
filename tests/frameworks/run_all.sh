#!/usr/bin/env bash
# Runs every framework agent in tests/frameworks/ in every mode and writes the traces to OUTDIR
# (default /tmp/framework-traces), named FRAMEWORK.BEHAVIOUR.CONTENT.FORMAT-EXT:
#   FRAMEWORK  pydantic_ai | langgraph | openai_agents
#   BEHAVIOUR  broken (false "saved" claim, no write_file) | fixed (write_file, then the claim)
#   CONTENT    content | nocontent (--no-content) | nosensitive (openai_agents only: --no-sensitive-data)
#   FORMAT-EXT otlp.json (otlp-json), otlp.jsonl (otlp-jsonl), protobuf.jsonl (protobuf-json)
# Each run works in its own OUTDIR/workspaces/NAME/, where --fixed leaves out/report.md.
# Those runs export all spans in one batch at the end (one line in the .jsonl files); the
# FRAMEWORK.broken.content.simple.*.jsonl runs add --simple: one exported batch, so one line, per span.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mkdir -p "${1:-/tmp/framework-traces}" && cd "${1:-/tmp/framework-traces}" && pwd)
python="$(bash "$here/install.sh")"
case "$python" in /*) ;; *) python="$(cd "$here/../.." && pwd)/$python" ;; esac

for framework in pydantic_ai langgraph openai_agents; do
    contents="content nocontent"
    [ "$framework" = openai_agents ] && contents="$contents nosensitive"
    for behaviour in broken fixed; do
        for content in $contents; do
            for fmt in otlp-json otlp-jsonl protobuf-json; do
                case $fmt in
                    otlp-json) ext=otlp.json ;;
                    otlp-jsonl) ext=otlp.jsonl ;;
                    protobuf-json) ext=protobuf.jsonl ;;
                esac
                name="$framework.$behaviour.$content"
                flags=()
                [ "$behaviour" = fixed ] && flags+=(--fixed)
                [ "$content" = nocontent ] && flags+=(--no-content)
                [ "$content" = nosensitive ] && flags+=(--no-sensitive-data)
                work="$out/workspaces/$name.$ext"
                rm -rf "$work" && mkdir -p "$work"
                (cd "$work" && "$python" "$here/${framework}_agent.py" --trace "$out/$name.$ext" --format "$fmt" "${flags[@]}" >/dev/null)
                echo "$out/$name.$ext"
            done
        done
    done
    for fmt in otlp-jsonl protobuf-json; do
        case $fmt in
            otlp-jsonl) ext=otlp.jsonl ;;
            protobuf-json) ext=protobuf.jsonl ;;
        esac
        name="$framework.broken.content.simple"
        work="$out/workspaces/$name.$ext"
        rm -rf "$work" && mkdir -p "$work"
        (cd "$work" && "$python" "$here/${framework}_agent.py" --trace "$out/$name.$ext" --format "$fmt" --simple >/dev/null)
        echo "$out/$name.$ext"
    done
done
