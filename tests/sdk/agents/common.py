"""What the SDK agents share: the task from stdin, and how they report what they got.

An agent writes what reached it into its workspace, where the fixture's contract reads it:
`out/answer.txt` after a successful exchange, `out/error.txt` when the endpoint refused the
request (then it exits 3). Nothing here talks to agent-replay: the SDKs find the endpoint
through the environment the harness sets (OPENAI_BASE_URL, ANTHROPIC_BASE_URL, HTTPS_PROXY,
SSL_CERT_FILE, ...), as an unchanged production agent would.
"""
import json
import os
import sys

REFUSED = 3


def task():
    return json.load(sys.stdin)["task"]


def answer(text):
    os.makedirs("out", exist_ok=True)
    with open("out/answer.txt", "w") as fh:
        fh.write(text)


def refused(status, headers, body):
    """The endpoint's answer to a request it would not replay, as the agent saw it."""
    try:
        kind = body["error"]["type"]
    except (TypeError, KeyError):
        kind = None
    os.makedirs("out", exist_ok=True)
    with open("out/error.txt", "w") as fh:
        fh.write(
            f"status={status}\nx-agent-replay={headers.get('x-agent-replay')}\ntype={kind}\n"
        )
    sys.exit(REFUSED)
