"""A real HTTPS upstream for live-mode tests: an OpenAI-style chat completions API.

Usage: https_upstream.py CERT KEY LOG ANSWER. Prints its port on the first line, then
serves until killed. Every request it gets is appended to LOG as one JSON line.
`{x-token}` in ANSWER is replaced by the request's `x-token` header (an upstream that
echoes its credential).
"""
import http.server, json, ssl, sys

cert, key, log, template = sys.argv[1:5]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(n) or b"{}")
        answer = template.replace("{x-token}", self.headers.get("x-token", ""))
        with open(log, "a") as f:
            f.write(json.dumps({"path": self.path, "authorization": self.headers.get("authorization"),
                                "cookie": self.headers.get("cookie"), "body": body}) + "\n")
        if self.path != "/v1/chat/completions":
            self.send_response(404)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        if body.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            half = len(answer) // 2
            for data in [
                json.dumps({"choices": [{"index": 0, "delta": {"content": answer[:half]}}]}),
                json.dumps({"choices": [{"index": 0, "delta": {"content": answer[half:]}}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}),
                "[DONE]",
            ]:
                chunk = ("data: %s\n\n" % data).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        out = json.dumps({"id": "c1", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        # Credentials an upstream sets: the agent gets them, a recording never holds them.
        self.send_header("set-cookie", "sid=upstream-session; Path=/")
        self.send_header("x-session-token", "tok-plain-value")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
