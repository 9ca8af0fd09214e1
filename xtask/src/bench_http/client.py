"""The client side of `cargo xtask bench http`: the same Python `requests` session with
keep-alive against each server, and one raw socket for the stream.

Usage: client.py BASE_URL OUT_JSON [WRK_SECONDS]. BASE_URL ends before /chat/completions.
"""
import http.client, json, os, socket, statistics, subprocess, sys, time, urllib.parse

import requests

base, out = sys.argv[1], sys.argv[2]
wrk_seconds = int(sys.argv[3]) if len(sys.argv) > 3 else 0
CHAT = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "bench"}]}
STREAM = dict(CHAT, stream=True)

s = requests.Session()
url = base + "/chat/completions"
for _ in range(20):
    assert s.post(url, json=CHAT).status_code == 200
lat = []
body_len = 0
for _ in range(200):
    t = time.perf_counter()
    r = s.post(url, json=CHAT)
    body_len = len(r.content)
    lat.append((time.perf_counter() - t) * 1000)
    assert r.status_code == 200, r.text[:200]

u = urllib.parse.urlparse(base)
payload = json.dumps(STREAM).encode()
ttlb, chunks = [], []
for i in range(30):
    c = http.client.HTTPConnection(u.hostname, u.port)
    c.connect()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t = time.perf_counter()
    c.request("POST", u.path + "/chat/completions", body=payload, headers={"content-type": "application/json"})
    r = c.getresponse()
    data = r.read()
    ttlb.append((time.perf_counter() - t) * 1000)
    chunks = [l for l in data.decode().split("\n") if l.startswith("data: ")]
    c.close()

rps = None
if wrk_seconds:
    lua = os.path.join(os.path.dirname(out), "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n' % json.dumps(json.dumps(CHAT)))
    try:
        w = subprocess.run(["wrk", "-t1", "-c8", "-d%ds" % wrk_seconds, "-s", lua, url], capture_output=True, text=True, timeout=60)
        for line in w.stdout.splitlines():
            if line.startswith("Requests/sec:"):
                rps = float(line.split()[1])
    except FileNotFoundError:
        pass

json.dump({"median_ms": statistics.median(lat), "body_bytes": body_len, "stream_ttlb_ms": statistics.median(ttlb),
           "stream_data_lines": chunks, "rps": rps}, open(out, "w"))
