"""An agent on the official `anthropic` Python SDK: `task.case` is `messages` or
`messages_stream`, `task.prompt` the user message."""
import anthropic

from common import answer, refused, task

t = task()
client = anthropic.Anthropic()  # ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY from the environment
request = dict(
    model="claude-sonnet-4-5",
    max_tokens=256,
    system="You are terse.",
    messages=[{"role": "user", "content": t["prompt"]}],
)
try:
    if t["case"] == "messages":
        m = client.messages.create(**request)
    elif t["case"] == "messages_stream":
        pieces = []
        with client.messages.stream(**request) as stream:
            for text in stream.text_stream:
                pieces.append(text)
            m = stream.get_final_message()
        assert "".join(pieces) == m.content[0].text, (pieces, m.content)
    else:
        raise SystemExit(f"unknown case {t['case']!r}")
    answer(
        f"{m.content[0].text}\nstop={m.stop_reason}\nusage={m.usage.input_tokens}/{m.usage.output_tokens}\n"
    )
except anthropic.APIStatusError as e:
    refused(e.status_code, e.response.headers, e.response.json())
