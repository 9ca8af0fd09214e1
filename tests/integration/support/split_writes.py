"""An agent whose HTTP client writes each request's head and body in two segments with
Nagle's algorithm on (urllib3 through a proxy does this): the body waits until the head is
acknowledged. Sends ROUNDS recorded chat requests to $OPENAI_BASE_URL over one connection
and writes each round trip's milliseconds, one per line, to out/round_trips.txt; exits 1
when the median round trip took 20 ms or more (a delayed ACK is at least 40 ms)."""
import sys
import os
import socket
import time

ROUNDS = 20
base = os.environ["OPENAI_BASE_URL"]
authority = base.split("//", 1)[1].split("/", 1)[0]
prefix = "/" + base.split("//", 1)[1].split("/", 1)[1]
host, port = authority.rsplit(":", 1)
body = b'{"model": "gpt-4.1", "messages": [{"role": "user", "content": "two segments"}]}'
head = (
    "POST %s/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
    "Content-Length: %d\r\n\r\n" % (prefix, authority, len(body))
).encode()
sock = socket.create_connection((host, int(port)))
reader = sock.makefile("rb")
times = []
for _ in range(ROUNDS):
    started = time.perf_counter()
    sock.sendall(head)
    sock.sendall(body)
    status = reader.readline()
    assert b" 200 " in status, status
    length = 0
    while True:
        line = reader.readline()
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
        if line == b"\r\n":
            break
    reader.read(length)
    times.append((time.perf_counter() - started) * 1000)
os.makedirs("out", exist_ok=True)
with open("out/round_trips.txt", "w") as f:
    f.write("".join("%.3f\n" % t for t in times))
times.sort()
median = times[len(times) // 2]
if median >= 20:
    sys.exit("the median round trip was %.1f ms: the body waited for a delayed ACK" % median)
