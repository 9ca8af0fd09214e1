// An agent on the official `openai` Node SDK: a streamed chat completion (`task.prompt`).
// The SDK is loaded from SDK_NODE_MODULES (the tests' pinned install under target/),
// as an ES module, the way an application's `import OpenAI from "openai"` would.
import { readFileSync, mkdirSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const { default: OpenAI, APIError } = await import(
  pathToFileURL(`${process.env.SDK_NODE_MODULES}/openai/index.mjs`).href
);

const task = JSON.parse(readFileSync(0, "utf8")).task;
const client = new OpenAI(); // OPENAI_BASE_URL and OPENAI_API_KEY from the environment
mkdirSync("out", { recursive: true });
try {
  const stream = await client.chat.completions.create({
    model: "gpt-4.1-mini",
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content: task.prompt },
    ],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "", finish = null, usage = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      text += choice.delta.content ?? "";
      finish = choice.finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  writeFileSync(
    "out/answer.txt",
    `${text}\nfinish=${finish}\nusage=${usage.prompt_tokens}/${usage.completion_tokens}\n`,
  );
} catch (e) {
  if (!(e instanceof APIError) || e.status === undefined) throw e;
  writeFileSync(
    "out/error.txt",
    `status=${e.status}\nx-agent-replay=${e.headers?.get?.("x-agent-replay") ?? e.headers?.["x-agent-replay"]}\ntype=${e.error?.type}\n`,
  );
  process.exit(3);
}
