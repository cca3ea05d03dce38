// The real `openai` client against a live `aero serve`: chat and completions, streaming and
// not, greedy answers equal to `aero run --greedy`; the Ollama endpoints; health, models, metrics;
// a clean exit on SIGTERM that finishes the stream in flight.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { missing, synthModel, startServer, aeroRun, metrics, prompts } from "./harness.mjs";

const skip = missing() || false;
let OpenAI, model, server, client;

before(async () => {
  if (skip) return;
  OpenAI = (await import("openai")).default;
  model = synthModel();
  server = await startServer(model.model, ["--parallel", "4", "--ctx", "512", "--model-alias", "tiny"]);
  client = new OpenAI({ baseURL: server.url + "/v1", apiKey: "unused", maxRetries: 0 });
});
after(async () => {
  if (server && server.proc.exitCode === null) await server.stop();
  if (model) model.cleanup();
});

test("chat completion equals aero run --chat --greedy", { skip }, async () => {
  const r = await client.chat.completions.create({
    model: "tiny", messages: [{ role: "user", content: prompts[3] }], temperature: 0, max_tokens: 20,
  });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.model, "tiny");
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(r.choices[0].message.content, aeroRun(model.model, prompts[3], 20, { chat: true }));
  assert.ok(["stop", "length"].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test("streamed chat completion equals the same answer unstreamed, with usage last", { skip }, async () => {
  const request = { model: "tiny", messages: [{ role: "user", content: prompts[1] }], temperature: 0, max_tokens: 24 };
  const whole = await client.chat.completions.create(request);
  const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  let text = "", finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, "chat.completion.chunk");
    if (chunk.usage) usage = chunk.usage;
    if (!chunk.choices.length) continue;
    text += chunk.choices[0].delta.content ?? "";
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.ok(chunks > 3);
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.deepEqual(
    [usage.prompt_tokens, usage.completion_tokens],
    [whole.usage.prompt_tokens, whole.usage.completion_tokens]);
});

test("completions, streamed and not, equal aero run --greedy", { skip }, async () => {
  for (const prompt of [prompts[0], prompts[4]]) {
    const expected = aeroRun(model.model, prompt, 16);
    const r = await client.completions.create({ model: "tiny", prompt, temperature: 0, max_tokens: 16 });
    assert.equal(r.object, "text_completion");
    assert.equal(r.choices[0].text, expected);
    assert.equal(r.usage.completion_tokens, 16);
    assert.equal(r.choices[0].finish_reason, "length");
    const stream = await client.completions.create({ model: "tiny", prompt, temperature: 0, max_tokens: 16, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
    assert.equal(text, expected);
  }
});

test("seeded sampling repeats; stop strings end the answer before them", { skip }, async () => {
  const request = { model: "tiny", prompt: prompts[2], temperature: 1, top_k: 40, seed: 42, max_tokens: 16 };
  const a = await client.completions.create(request);
  const b = await client.completions.create(request);
  assert.equal(a.choices[0].text, b.choices[0].text);
  const full = aeroRun(model.model, prompts[5], 24);
  const stop = full.slice(10, 13);
  const r = await client.completions.create({ model: "tiny", prompt: prompts[5], temperature: 0, max_tokens: 24, stop: [stop] });
  assert.equal(r.choices[0].text, full.slice(0, full.indexOf(stop)));
  assert.equal(r.choices[0].finish_reason, "stop");
});

test("logprobs come with the chosen tokens", { skip }, async () => {
  const r = await client.chat.completions.create({
    model: "tiny", messages: [{ role: "user", content: "Hi" }], temperature: 0, max_tokens: 5, logprobs: true, top_logprobs: 3,
  });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  for (const t of content) {
    assert.equal(t.top_logprobs.length, 3);
    assert.equal(t.top_logprobs[0].token, t.token);  // greedy takes the most likely
    assert.ok(t.logprob <= 0);
  }
});

test("models, health and metrics", { skip }, async () => {
  const models = await client.models.list();
  assert.equal(models.data[0].id, "tiny");
  assert.equal((await (await fetch(server.url + "/health")).json()).status, "ok");
  const m = await metrics(server.url);
  assert.ok(m.get("aero_generated_tokens_total") > 0);
  assert.equal(m.get("aero_slots_total"), 4);
  assert.equal(m.get("aero_queue_depth"), 0);
  assert.match(m.text, /aero_requests_total\{route="\/v1\/chat\/completions",status="200"\} \d+/);
  assert.match(m.text, /# TYPE aero_generation_tokens_per_second gauge/);
});

test("Ollama's /api/chat, /api/generate and /api/tags", { skip }, async () => {
  const tags = await (await fetch(server.url + "/api/tags")).json();
  assert.equal(tags.models[0].name, "tiny");
  const expected = aeroRun(model.model, prompts[3], 12, { chat: true });
  const chat = await (await fetch(server.url + "/api/chat", {
    method: "POST",
    body: JSON.stringify({ model: "tiny", messages: [{ role: "user", content: prompts[3] }], stream: false,
                           options: { temperature: 0, num_predict: 12 } }),
  })).json();
  assert.equal(chat.message.content, expected);
  assert.equal(chat.done, true);
  assert.equal(chat.eval_count, 12);
  // Streamed: JSON lines, the last one done.
  const res = await fetch(server.url + "/api/generate", {
    method: "POST", body: JSON.stringify({ model: "tiny", prompt: prompts[0], raw: true, options: { temperature: 0, num_predict: 10 } }),
  });
  assert.equal(res.headers.get("content-type"), "application/x-ndjson");
  const lines = (await res.text()).trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(lines.at(-1).done, true);
  assert.ok(lines.slice(0, -1).every((l) => l.done === false));
  assert.equal(lines.map((l) => l.response).join(""), aeroRun(model.model, prompts[0], 10));
});

test("the chat page is served", { skip }, async () => {
  const res = await fetch(server.url + "/");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /text\/html/);
  const html = await res.text();
  assert.match(html, /<title>aero chat<\/title>/);
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href=/);  // nothing from elsewhere
});

test("SIGTERM finishes the stream in flight, then the server exits 0", { skip }, async () => {
  const stream = await client.chat.completions.create({
    model: "tiny", messages: [{ role: "user", content: "Tell me a long story." }], temperature: 0, max_tokens: 400, stream: true,
  });
  let text = "", finish = null, signalled = false;
  for await (const chunk of stream) {
    if (!signalled) {
      server.proc.kill("SIGTERM");
      signalled = true;
      await new Promise((r) => setTimeout(r, 200));
      // New work is refused while the last stream finishes.
      const late = await fetch(server.url + "/v1/completions", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model: "tiny", prompt: "x", max_tokens: 1 }),
      }).catch(() => null);
      if (late) assert.equal(late.status, 503);
    }
    text += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(finish, "length");
  const status = await server.exited;
  assert.deepEqual(status, { code: 0, signal: null });
  assert.match(server.stderr(), /aero: stopped/);
});
