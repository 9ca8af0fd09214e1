"""The floor of `cargo xtask bench http`: a bare Python HTTP/1.1 server with TCP_NODELAY
answering the same recorded body and stream. Prints its port; serves until killed.

Usage: bare_server.py BODY_FILE EVENTS_FILE (events: one SSE `data` per line)."""
import http.server, socket, sys

body = open(sys.argv[1], "rb").read()
events = open(sys.argv[2]).read().splitlines()


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("content-length", 0))
        stream = b'"stream": true' in self.rfile.read(n)
        if not stream:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for e in events:
            chunk = ("data: %s\n\n" % e).encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
