// Bad input never takes the server down or leaks a slot: each case gets its status and
// OpenAI's error object (Ollama's on /api/), and the server answers a good request afterwards.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { spawnSync } from "node:child_process";
import { aero, missing, synthModel, startServer, metrics, waitFor } from "./harness.mjs";

const skip = missing() || false;
const KEY = "sk-test-key";
let model, server;

before(async () => {
  if (skip) return;
  model = synthModel();
  server = await startServer(model.model, ["--parallel", "2", "--ctx", "256", "--api-key", KEY]);
});
after(async () => {
  if (server) assert.deepEqual(await server.stop(), { code: 0, signal: null });
  if (model) model.cleanup();
});

const auth = { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" };
const chat = (extra = {}) => JSON.stringify({ model: "m", messages: [{ role: "user", content: "Hi" }], max_tokens: 4, ...extra });

async function post(path, body, headers = auth) {
  const res = await fetch(server.url + path, { method: "POST", headers, body });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* checked below */ }
  return { status: res.status, json, text };
}

async function stillServes() {
  const r = await post("/v1/chat/completions", chat({ temperature: 0 }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.object, "chat.completion");
}

function assertOpenAiError(r, status, param) {
  assert.equal(r.status, status, r.text);
  assert.ok(r.json && r.json.error, `no error object: ${r.text}`);
  assert.equal(typeof r.json.error.message, "string");
  assert.ok(r.json.error.message.length > 0);
  assert.ok("type" in r.json.error && "param" in r.json.error && "code" in r.json.error);
  if (param !== undefined) assert.equal(r.json.error.param, param);
}

const cases = [
  ["malformed JSON", "/v1/chat/completions", '{"model": "m", "messages": [', 400, null],
  ["not an object", "/v1/chat/completions", "[1, 2, 3]", 400, null],
  ["empty body", "/v1/chat/completions", "", 400, null],
  ["messages of the wrong type", "/v1/chat/completions", JSON.stringify({ model: "m", messages: "hello" }), 400, "messages"],
  ["temperature of the wrong type", "/v1/chat/completions", chat({ temperature: "warm" }), 400, "temperature"],
  ["temperature out of range", "/v1/chat/completions", chat({ temperature: 7 }), 400, "temperature"],
  ["max_tokens negative", "/v1/chat/completions", chat({ max_tokens: -1 }), 400, "max_tokens"],
  ["unknown field", "/v1/chat/completions", chat({ frobnicate: true }), 400, "frobnicate"],
  ["n = 2", "/v1/chat/completions", chat({ n: 2 }), 400, "n"],
  ["tools", "/v1/chat/completions", chat({ tools: [{ type: "function", function: { name: "f" } }] }), 400, "tools"],
  ["prompt over the context", "/v1/completions", JSON.stringify({ model: "m", prompt: "word ".repeat(300) }), 400, "prompt"],
  ["messages over the context", "/v1/chat/completions",
    JSON.stringify({ model: "m", messages: [{ role: "user", content: "word ".repeat(300) }] }), 400, "messages"],
  ["token id outside the vocabulary", "/v1/completions", JSON.stringify({ model: "m", prompt: [1, 99999999] }), 400, "prompt"],
  ["missing prompt", "/v1/completions", JSON.stringify({ model: "m" }), 400, "prompt"],
  ["deep nesting", "/v1/chat/completions", '{"model": "m", "messages": ' + "[".repeat(50000) + "]".repeat(50000) + "}", 400, null],
];

for (const [name, path, body, status, param] of cases) {
  test(`${name}: ${status}, and the server still serves`, { skip }, async () => {
    const r = await post(path, body);
    assertOpenAiError(r, status, param);
    if (name.includes("context")) assert.equal(r.json.error.code, "context_length_exceeded");
    await stillServes();
  });
}

test("oversized body: 413, and the server still serves", { skip }, async () => {
  const r = await post("/v1/chat/completions", chat({ messages: [{ role: "user", content: "x".repeat(9 << 20) }] }));
  assertOpenAiError(r, 413);
  await stillServes();
});

test("missing or wrong API key: 401; the page and /health stay open", { skip }, async () => {
  for (const headers of [{ "Content-Type": "application/json" }, { Authorization: "Bearer nope", "Content-Type": "application/json" }]) {
    const r = await post("/v1/chat/completions", chat(), headers);
    assertOpenAiError(r, 401);
    assert.equal(r.json.error.code, "invalid_api_key");
  }
  assert.equal((await fetch(server.url + "/v1/models")).status, 401);
  const ollama = await post("/api/chat", chat(), { "Content-Type": "application/json" });
  assert.equal(ollama.status, 401);
  assert.equal(typeof ollama.json.error, "string");  // Ollama's clients read {"error": "..."}
  assert.equal((await fetch(server.url + "/health")).status, 200);
  assert.equal((await fetch(server.url + "/")).status, 200);
  await stillServes();
});

test("unknown URL: 404 with an error object", { skip }, async () => {
  const res = await fetch(server.url + "/v1/nothing", { headers: auth });
  assertOpenAiError({ status: res.status, json: await res.json(), text: "" }, 404);
});

test("Ollama bad input gets Ollama's error shape", { skip }, async () => {
  const r = await post("/api/chat", '{"model": "m", "messages": 5}');
  assert.equal(r.status, 400);
  assert.equal(typeof r.json.error, "string");
  await stillServes();
});

test("a client that disconnects mid-stream frees its slot at once", { skip }, async () => {
  const before = await metrics(server.url, KEY);
  const cancelledBefore = before.get('aero_sequences_total{outcome="cancelled"}');
  // A raw socket, so the test decides exactly when the connection goes.
  const body = JSON.stringify({ model: "m", prompt: "Once upon a time", max_tokens: 240, stream: true, temperature: 0 });
  const { hostname, port } = new URL(server.url);
  const socket = net.connect(Number(port), hostname);
  socket.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\n` +
               `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  await new Promise((resolve) => socket.once("data", resolve));  // the stream has begun
  socket.destroy();
  assert.ok(await waitFor(async () => {
    const m = await metrics(server.url, KEY);
    return m.get("aero_slots_busy") === 0 && m.get('aero_sequences_total{outcome="cancelled"}') === cancelledBefore + 1;
  }, 2000), "the slot was not freed");
  await stillServes();
});

test("a client that disconnects while waiting for a non-streamed answer frees its slot too", { skip }, async () => {
  const controller = new AbortController();
  const pending = fetch(server.url + "/v1/completions", {
    method: "POST", headers: auth, signal: controller.signal,
    body: JSON.stringify({ model: "m", prompt: "Once upon a time", max_tokens: 240, temperature: 0 }),
  }).catch(() => null);
  await waitFor(async () => (await metrics(server.url, KEY)).get("aero_slots_busy") > 0, 2000);
  controller.abort();
  await pending;
  assert.ok(await waitFor(async () => (await metrics(server.url, KEY)).get("aero_slots_busy") === 0, 2000));
  await stillServes();
});

test("a second server on the same port fails with one line instead of sharing it", { skip }, async () => {
  const port = new URL(server.url).port;
  const r = spawnSync(aero, ["serve", model.model, "--port", port, "-t", "1"], { encoding: "utf8", timeout: 60000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /aero: error: cannot listen on 127\.0\.0\.1:\d+/);
  await stillServes();
});
