"""An agent calling an HTTPS API with `requests` or `httpx` (`task.client`), through the
HTTPS_PROXY the harness sets and trusting its CA through REQUESTS_CA_BUNDLE / SSL_CERT_FILE.

`task.steps` is a list of `{"method", "url", "json"?}`; each response body is written to
out/answer.txt as one sorted JSON line, and the first refusal (status >= 400) ends the run.
"""
import json

from common import answer, refused, task

t = task()
lines = []
if t["client"] == "requests":
    import requests

    session = requests.Session()
    send = lambda s: session.request(s["method"], s["url"], json=s.get("json"), timeout=10)
elif t["client"] == "httpx":
    import httpx

    client = httpx.Client(timeout=10)
    send = lambda s: client.request(s["method"], s["url"], json=s.get("json"))
else:
    raise SystemExit(f"unknown client {t['client']!r}")

for step in t["steps"]:
    r = send(step)
    if r.status_code >= 400:
        refused(r.status_code, r.headers, r.json())
    lines.append(f"{r.status_code} {json.dumps(r.json(), sort_keys=True)}")
answer("\n".join(lines) + "\n")
