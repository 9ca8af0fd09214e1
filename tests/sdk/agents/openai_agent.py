"""An agent on the official `openai` Python SDK: `task.case` is `chat`, `chat_stream` or
`responses_stream`, `task.prompt` the user message."""
import openai

from common import answer, refused, task

t = task()
client = openai.OpenAI()  # OPENAI_BASE_URL and OPENAI_API_KEY from the environment
messages = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": t["prompt"]},
]
try:
    if t["case"] == "chat":
        r = client.chat.completions.create(model="gpt-4.1-mini", messages=messages)
        answer(f"{r.choices[0].message.content}\nfinish={r.choices[0].finish_reason}\n")
    elif t["case"] == "chat_stream":
        text, finish, usage = "", None, None
        stream = client.chat.completions.create(
            model="gpt-4.1-mini",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
        for chunk in stream:
            for choice in chunk.choices:
                text += choice.delta.content or ""
                finish = choice.finish_reason or finish
            if chunk.usage:
                usage = chunk.usage
        answer(
            f"{text}\nfinish={finish}\nusage={usage.prompt_tokens}/{usage.completion_tokens}\n"
        )
    elif t["case"] == "responses_stream":
        deltas, done = [], None
        stream = client.responses.create(model="gpt-4.1-mini", input=t["prompt"], stream=True)
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
            elif event.type == "response.completed":
                done = event.response
        answer(
            f"{''.join(deltas)}\ndeltas={len(deltas)}\nstatus={done.status}\n"
            f"output_text={done.output_text}\nusage={done.usage.input_tokens}/{done.usage.output_tokens}\n"
        )
    else:
        raise SystemExit(f"unknown case {t['case']!r}")
except openai.APIStatusError as e:
    refused(e.status_code, e.response.headers, e.response.json())
