"""A misbehaving agent (tests/integration/misbehaving.rs): one bad habit per run.

It reads the task envelope from stdin; `task.behaviour` names the habit, the other keys of
`task` tune it, and `task.report` is a file outside the workspace where it appends one JSON
line per thing it observed (the test reads it). It speaks the gateway protocol directly
over the Unix socket in `$AGENT_REPLAY_SOCKET` (no client library), one JSON-RPC object per
line. Its first argument is a marker unique to the test row: every process it forks keeps
that command line, so the test can tell whether anything of the run is left behind.

Any behaviour waits `task.delay_s` seconds first (a neighbour fixture that starts late).

When a step that should have worked did not, it says so on stderr and exits 3, so the
run's `exit_code: 0` check fails and the harness's report names what went wrong.
"""
import errno
import json
import os
import resource
import signal
import socket
import sys
import time

ENVELOPE = json.load(sys.stdin)
TASK = ENVELOPE.get("task", {})
REPORT = TASK.get("report")


def note(**facts):
    if not REPORT:
        return
    try:
        with open(REPORT, "a") as f:
            f.write(json.dumps(facts) + "\n")
    except OSError as e:
        sys.stderr.write("misbehaving_agent: cannot note %s: %s\n" % (json.dumps(facts)[:200], e))


def fail(why):
    note(failed=why)
    sys.stderr.write("misbehaving_agent: " + why + "\n")
    sys.stderr.flush()
    os._exit(3)


class Conn:
    """One gateway connection; replies read with recv (no extra descriptor)."""

    def __init__(self, path=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path or os.environ["AGENT_REPLAY_SOCKET"])
        self.buf = bytearray()
        self.next_id = 1

    def send_raw(self, data):
        self.sock.sendall(data)

    def reply(self, timeout=20):
        self.sock.settimeout(timeout)
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                fail("the gateway closed the connection before replying (got %r)" % bytes(self.buf[:200]))
            self.buf += chunk
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        return json.loads(line)

    def request(self, method, params):
        rid = self.next_id
        self.next_id += 1
        line = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        self.send_raw(json.dumps(line).encode() + b"\n")
        return self.reply()


def expect_result(reply, what):
    if "result" not in reply or "error" in reply:
        fail("%s: expected a result, got %s" % (what, json.dumps(reply)[:500]))
    return reply["result"]


def expect_error(reply, what, code=None):
    err = reply.get("error")
    if not isinstance(err, dict) or (code is not None and err.get("code") != code):
        fail("%s: expected error %s, got %s" % (what, code, json.dumps(reply)[:500]))
    return err


def close(conn, status="succeeded", output=None):
    return conn.request("run/close", {"status": status, "output": output or {}})


def sleep_forever():
    while True:
        time.sleep(3600)


def fork_sleeper(seconds, before=None):
    """A child that keeps this process's command line (no exec) and sleeps."""
    pid = os.fork()
    if pid == 0:
        try:
            if before:
                before()
            time.sleep(seconds)
        finally:
            os._exit(0)
    return pid


# ---- behaviours ---------------------------------------------------------------------

def flood():
    stream = sys.stdout.buffer if TASK["stream"] == "stdout" else sys.stderr.buffer
    chunk = b"y" * (1 << 20)
    left = TASK["bytes"]
    while left > 0:
        n = min(left, len(chunk))
        stream.write(chunk[:n])
        left -= n
    stream.flush()
    note(flooded=TASK["bytes"], stream=TASK["stream"])
    expect_result(close(Conn()), "run/close after the flood")


def connections():
    count = TASK["count"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))
    conns = []
    for i in range(count):
        try:
            conns.append(Conn())
        except OSError as e:
            fail("connection %d of %d refused: %s" % (i + 1, count, e))
    note(opened=len(conns))
    # Each connection is a live one: the first, one in the middle and the last answer.
    for c in (conns[0], conns[count // 2], conns[-1]):
        expect_result(c.request("tools/list", {}), "tools/list on one of %d connections" % count)
    expect_result(close(conns[-1]), "run/close on connection %d" % count)
    note(closed=True)
    # Exit with every connection still open (after `hold_s` seconds, if asked).
    time.sleep(TASK.get("hold_s", 0))


def huge_line():
    total = TASK["bytes"]
    conn = Conn()
    head = b'{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{"pad":"'
    tail = b'"}}\n'
    chunk = b"x" * (1 << 20)
    left = total - len(head) - len(tail)
    try:
        conn.send_raw(head)
        while left > 0:
            n = min(left, len(chunk))
            conn.send_raw(chunk[:n])
            left -= n
        conn.send_raw(tail)
    except OSError as e:
        fail("the gateway stopped reading the oversized line with %d bytes still to send: %s" % (left, e))
    note(sent=total)
    err = expect_error(conn.reply(timeout=60), "the 1 GB line", -32600)
    note(oversized_error=err)
    expect_result(close(conn), "run/close on the connection that sent the 1 GB line")
    note(closed=True)


def half_line():
    conn = Conn()
    conn.send_raw(b'{"jsonrpc": "2.0", "id": 1, "method": "run/cl')
    note(sent_half=True)
    sleep_forever()


def close_twice():
    conn = Conn()
    expect_result(close(conn, "succeeded", {"summary": "first"}), "the first run/close")
    err = expect_error(close(conn, "failed", {}), "the second run/close")
    note(second_close=err)
    # The connection is still usable after both.
    expect_result(conn.request("tools/list", {}), "tools/list after two closes")


def close_then_call():
    conn = Conn()
    expect_result(close(conn), "run/close")
    for i in range(TASK["reads"]):
        result = expect_result(conn.request("tools/call", {"name": "search", "arguments": {"q": "after"}}),
                               "recorded read %d after run/close" % (i + 1))
        if result.get("content", [{}])[0].get("text") != "hit":
            fail("read after close answered %s" % json.dumps(result))
    # A side effect after claiming success: unrecorded, refused, and it must count.
    err = expect_error(conn.request("tools/call", {"name": "send_email", "arguments": {"to": "x"}}),
                       "unrecorded write after run/close", -32001)
    note(write_after_close=err.get("data", {}).get("reason"))


def fork_children():
    expect_result(close(Conn()), "run/close")
    pids = [fork_sleeper(300) for _ in range(TASK["children"])]
    note(forked=len(pids))
    # Exit 0 at once, every child still sleeping.


def emfile():
    conn = Conn()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft > 65536:
        resource.setrlimit(resource.RLIMIT_NOFILE, (65536, hard))
    held = []
    while True:
        try:
            held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as e:
            if e.errno not in (errno.EMFILE, errno.ENFILE):
                fail("open failed with %s, not EMFILE" % e)
            break
    # Not one descriptor left: a new connection must fail...
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
        fail("a socket could still be made with %d descriptors open" % len(held))
    except OSError as e:
        if e.errno != errno.EMFILE:
            fail("socket() failed with %s, not EMFILE" % e)
    # ...but the connection opened before still closes the run.
    expect_result(close(conn), "run/close with every descriptor in use")
    count = len(held)
    for fd in held:
        os.close(fd)
    note(held=count, closed=True)


def ignore_term():
    marker_file = TASK["report"]

    def on_term(signum, frame):
        with open(marker_file, "a") as f:
            f.write(json.dumps({"sigterm": os.getpid()}) + "\n")

    signal.signal(signal.SIGTERM, on_term)
    conn = Conn()
    expect_result(conn.request("tools/list", {}), "tools/list")
    # A child that ignores SIGTERM as well (a disposition survives fork).
    fork_sleeper(300, before=lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN))
    note(ignoring_sigterm=True)
    sleep_forever()


def escape_session():
    def new_session():
        os.setsid()

    def new_group():
        os.setpgid(0, 0)

    fork_sleeper(300, before=new_session)
    fork_sleeper(300, before=new_group)
    # A double-forked orphan in a session of its own: its parent exits at once.
    middle = os.fork()
    if middle == 0:
        os.setsid()
        fork_sleeper(300)
        os._exit(0)
    os.waitpid(middle, 0)
    # The agent itself: leave the group the harness gave it, if the kernel lets it.
    for what, how in (("setsid", os.setsid), ("setpgid", lambda: os.setpgid(0, 0))):
        try:
            how()
            note(**{what: "ok"})
        except OSError as e:
            note(**{what: str(e)})
    note(pgid=os.getpgid(0), sid=os.getsid(0))
    expect_result(close(Conn()), "run/close")


def fixture_writer():
    fixture_id = os.environ["AGENT_REPLAY_FIXTURE"]
    cheat = TASK["cheat"]
    os.makedirs("out", exist_ok=True)
    with open("out/report.md", "w") as f:
        f.write(cheat)
    # Relative paths up out of the workspace.
    escaped = []
    for rel in ("../mb-escape-up1.txt", "../../mb-escape-up2-%s.txt" % sys.argv[1]):
        try:
            with open(rel, "w") as f:
                f.write("escaped\n")
            escaped.append(os.path.realpath(rel))
        except OSError as e:
            note(relative_write=rel, error=str(e))
    note(escaped=escaped)
    # Find the fixture directory: some process's working directory holds fixtures/<id>/
    # (strict mode's row hands it over in `task.fixture_dir`, /proc showing nothing there).
    found = TASK.get("fixture_dir")
    for pid in [] if found else os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink("/proc/%s/cwd" % pid)
        except OSError:
            continue
        d = os.path.join(cwd, "fixtures", fixture_id)
        if os.path.isfile(os.path.join(d, "expected.json")) and os.path.isfile(os.path.join(d, "input.json")):
            found = d
            break
    note(fixture_dir=found)
    if found:
        # Make the golden agree with the cheat and the validator accept anything, rewrite
        # the fixture's own workspace, plant a file: none of it may change this run's
        # verdict or its workspace diff.
        for rel, content in (("golden/report.md", cheat),
                             ("validators/check.py", "import sys\nsys.exit(0)\n"),
                             ("workspace/state/tasks.json", '{"T-1": {"status": "tampered"}}\n'),
                             ("workspace/planted.txt", "planted\n"),
                             ("planted.txt", "planted\n")):
            try:
                with open(os.path.join(found, rel), "w") as f:
                    f.write(content)
                note(tampered=rel)
            except OSError as e:
                note(tamper_refused=rel, error=str(e))
    expect_result(close(Conn(), "succeeded", {"artifact_refs": ["out/report.md"]}), "run/close")


def delete_socket():
    path = os.environ["AGENT_REPLAY_SOCKET"]
    early = Conn() if TASK.get("connect_first") else None
    os.unlink(path)
    note(unlinked=path)
    try:
        late = Conn(path)
        note(late_connect="connected")
        expect_result(close(late), "run/close on a new connection")
    except OSError as e:
        note(late_connect=str(e))
    if early:
        expect_result(close(early), "run/close on the connection opened before the unlink")
        note(closed=True)


BEHAVIOURS = {
    "flood": flood,
    "connections": connections,
    "huge_line": huge_line,
    "half_line": half_line,
    "close_twice": close_twice,
    "close_then_call": close_then_call,
    "fork_children": fork_children,
    "emfile": emfile,
    "ignore_term": ignore_term,
    "escape_session": escape_session,
    "fixture_writer": fixture_writer,
    "delete_socket": delete_socket,
}

if __name__ == "__main__":
    behaviour = TASK.get("behaviour")
    if behaviour not in BEHAVIOURS:
        fail("unknown behaviour %r" % behaviour)
    time.sleep(TASK.get("delay_s", 0))
    BEHAVIOURS[behaviour]()
    note(done=behaviour)
    sys.stdout.flush()
    os._exit(0)
