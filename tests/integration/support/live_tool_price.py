"""A `[live.tools.price]` command for tests/integration/live_tools.rs: one process per call,
the call's arguments on stdin as JSON (§12, rule 35).

What it answers is decided by the JSON file `$PRICE_STATE` names, which the test rewrites
between runs: `{"mode": "json", "answers": {"<sku>": <any JSON>}}` prints the sku's answer
as JSON; `"mode": "garbage"` prints HTML and two stderr lines; `"mode": "fail"` writes two
stderr lines and exits 3. Every call is appended to `$PRICE_LOG` as one JSON line (its
arguments, working directory, and whether it saw `PRICE_LEAK`), so the test can count the
calls and see where and how it ran.
"""
import json
import os
import sys


def main():
    arguments = json.load(sys.stdin)
    with open(os.environ["PRICE_STATE"]) as f:
        state = json.load(f)
    with open(os.environ["PRICE_LOG"], "a") as f:
        f.write(json.dumps({
            "arguments": arguments,
            "cwd": os.getcwd(),
            "workspace_file": os.path.isfile("marker.txt"),
            "leak": os.environ.get("PRICE_LEAK"),
        }) + "\n")
    mode = state.get("mode", "json")
    if mode == "garbage":
        print("<html><body>price service</body></html>")
        print("warming up", file=sys.stderr)
        print("price backend answered HTML (HTTP 502)", file=sys.stderr)
    elif mode == "fail":
        print("looking up the sku", file=sys.stderr)
        print(f"sku {arguments.get('sku')} is not sold here", file=sys.stderr)
        sys.exit(3)
    else:
        print(json.dumps(state["answers"][arguments["sku"]]))


if __name__ == "__main__":
    main()
