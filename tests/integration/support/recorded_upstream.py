"""A real HTTPS upstream that answers as the services the SDK fixtures recorded.

Usage: recorded_upstream.py CERT KEY LOG CASSETTE... Prints its port on the first line,
then serves until killed. A request is answered by the first `http` interaction of the
cassettes with its method and path whose recorded JSON body is contained in the request's
(bodies, then SSE events with their `event:` names, verbatim); anything else is a 404.
Every request is appended to LOG as one JSON line with the credentials it carried.
"""
import http.server, json, ssl, sys
from urllib.parse import urlsplit

cert, key, log, *cassettes = sys.argv[1:]
recorded = []
for path in cassettes:
    for i in json.load(open(path)).get("interactions", []):
        if "http" in i:
            recorded.append(i["http"])


def contained(small, big):
    if isinstance(small, dict):
        return isinstance(big, dict) and all(k in big and contained(v, big[k]) for k, v in small.items())
    return small == big


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        n = int(self.headers.get("content-length", 0))
        raw = self.rfile.read(n) if n else b""
        body = json.loads(raw) if raw else None
        with open(log, "a") as f:
            f.write(json.dumps({"method": self.command, "path": self.path, "body": body,
                                "authorization": self.headers.get("authorization"),
                                "x-api-key": self.headers.get("x-api-key")}) + "\n")
        for h in recorded:
            req = h["request"]
            if req["method"] != self.command or urlsplit(req["url"]).path != urlsplit(self.path).path:
                continue
            if "body" in req and not contained(req["body"], body):
                continue
            return self.reply(h["response"])
        self.send_response(404)
        self.send_header("content-length", "0")
        self.end_headers()

    def reply(self, r):
        self.send_response(r["status"])
        for k, v in r.get("headers", {}).items():
            if k.lower() not in ("content-length", "transfer-encoding"):
                self.send_header(k, v)
        if "events" in r:
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for e in r["events"]:
                text = (f"event: {e['event']}\n" if e.get("event") else "") + f"data: {e['data']}\n\n"
                chunk = text.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        out = json.dumps(r.get("body")).encode()
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = answer


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
