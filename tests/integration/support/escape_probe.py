"""An agent that tries one way out of its run (tests/integration/strict.rs).

It reads the task envelope from stdin; `task.probe` names the attempt and the other keys
of `task` its target. Exit 0 when the attempt worked, 3 (with the error on stderr) when
it did not: under strict mode every attempt must fail, in cassette mode every one works.
"""
import ctypes
import json
import os
import socket
import sys
import time
import urllib.request


def attempt(task):
    probe = task["probe"]
    if probe == "tcp":
        socket.create_connection(("127.0.0.1", task["port"]), timeout=3).close()
    elif probe == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"agent-replay probe", ("127.0.0.1", task["port"]))
        # A send succeeds whether or not anyone listens: the host's echo says it arrived.
        s.settimeout(3)
        s.recvfrom(512)
    elif probe == "dns":
        # A query sent to the host's resolver (here the test's, on a loopback port).
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
        s.sendto(query, ("127.0.0.1", task["port"]))
        s.settimeout(3)
        s.recvfrom(512)
    elif probe == "raw":
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
    elif probe == "abstract":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect("\0" + task["name"])
        s.sendall(b"agent-replay probe")
    elif probe == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(task["path"])
        s.sendall(b"agent-replay probe")
    elif probe == "proxy":
        os.environ["HTTP_PROXY"] = os.environ["http_proxy"] = task["proxy"]
        handler = urllib.request.ProxyHandler({"http": task["proxy"]})
        urllib.request.build_opener(handler).open("http://probe.invalid/", timeout=3).read()
    elif probe == "write":
        with open(task["path"], "w") as f:
            f.write("escaped")
    elif probe == "symlink":
        os.symlink(task["target"], "planted")
        with open("planted", "w") as f:
            f.write("escaped")
    elif probe == "read":
        with open(task["path"]) as f:
            f.read()
    elif probe == "daemon":
        # Double fork and setsid: the grandchild writes `path` after the run is over.
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(task["after_s"])
                with open(task["path"], "w") as f:
                    f.write("outlived the run")
                os._exit(0)
            os._exit(0)
        os.wait()
    elif probe == "ptrace":
        libc = ctypes.CDLL(None, use_errno=True)
        PTRACE_ATTACH, PTRACE_DETACH = 16, 17
        if libc.ptrace(PTRACE_ATTACH, task["pid"], None, None) != 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        os.waitpid(task["pid"], 0x40000000)  # __WALL
        libc.ptrace(PTRACE_DETACH, task["pid"], None, None)
    else:
        raise SystemExit(f"unknown probe {probe!r}")


def main():
    task = json.load(sys.stdin)["task"]
    try:
        attempt(task)
    except Exception as e:  # noqa: BLE001 - any failure is the answer
        print(f"probe {task['probe']} failed: {e!r}", file=sys.stderr)
        sys.exit(3)
    print(json.dumps({"escaped": task["probe"]}))


main()
