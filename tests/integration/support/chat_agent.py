"""An agent on plain HTTP (standard library): one chat completion, one streamed, then a
write if the task asks for one. Writes what it got to out/answer.txt; exits 1 on an error."""
import json, os, sys, urllib.request

task = json.load(sys.stdin).get("task", {})
base = os.environ["OPENAI_BASE_URL"]


def post(path, body):
    headers = {"content-type": "application/json",
               "authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
    if task.get("cookie"):
        headers["cookie"] = task["cookie"]
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers=headers)
    return urllib.request.urlopen(req, timeout=20)


messages = [{"role": "user", "content": task.get("question", "hi")}]
try:
    with post("/chat/completions", {"model": "m", "messages": messages}) as r:
        plain = json.load(r)["choices"][0]["message"]["content"]
        cookie = r.headers.get("set-cookie")
    streamed = ""
    with post("/chat/completions", {"model": "m", "messages": messages, "stream": True}) as r:
        for line in r:
            line = line.decode().strip()
            if line.startswith("data: ") and line != "data: [DONE]":
                streamed += json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
    if task.get("write"):
        post("/files", {"purpose": "x"})
except urllib.error.HTTPError as e:
    print("HTTP %s: %s" % (e.code, e.read().decode()[:300]), file=sys.stderr)
    sys.exit(1)
os.makedirs("out", exist_ok=True)
open("out/answer.txt", "w").write("plain=%s\nstreamed=%s\nset-cookie=%s\n" % (plain, streamed, cookie))
