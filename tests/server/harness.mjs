// Shared by the client tests of `aero serve`: a small model made by `aero synth`, a live
// server on a loopback port, and `aero run` as the single-sequence reference.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const aero = process.env.AERO_BINARY || join(here, "../../build/bin/aero");
export const shared = process.env.AERO_SHARED || join(here, "../../../shared");
const vocab = join(shared, "fixtures/tokenizer/ggml-vocab-llama-spm.gguf");

// Why the tests cannot run here, or null.
export function missing() {
  if (!existsSync(aero)) return `aero binary not found at ${aero} (set AERO_BINARY)`;
  if (!existsSync(vocab)) return `shared fixtures not found at ${shared} (set AERO_SHARED)`;
  if (!existsSync(join(here, "node_modules/openai"))) return "npm packages not installed (npm ci --prefix tests/server)";
  return null;
}

// A random-weight model of 4 layers of 256 with Llama 2's tokenizer, in f32: on quantized weights
// batched and lone runs take product kernels that quantize activations differently (see
// load.test.mjs and tests/server/scheduler_test.cpp).
export function synthModel() {
  const dir = mkdtempSync(join(tmpdir(), "aero-serve-test-"));
  const model = join(dir, "tiny.gguf");
  execFileSync(aero, ["synth", model, "--arch", "llama", "--preset", "tiny", "--type", "F32", "--vocab", vocab], { stdio: "ignore" });
  return { model, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

// Starts `aero serve MODEL --port 0 ARGS` and resolves once it listens.
export async function startServer(model, args = []) {
  const proc = spawn(aero, ["serve", model, "--port", "0", "-t", "2", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${stderr}`)), 60000);
    proc.stderr.on("data", (d) => {
      stderr += d;
      const m = stderr.match(/on (http:\/\/[\d.]+:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}):\n${stderr}`)); });
  });
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  return {
    url,
    proc,
    stderr: () => stderr,
    exited,
    // SIGTERM, then the exit status (the server must finish what runs and exit 0).
    async stop() {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 30000);
      const status = await exited;
      clearTimeout(timer);
      return status;
    },
  };
}

// `aero run --greedy`: what one request gives alone on the single-sequence path.
export function aeroRun(model, prompt, maxTokens, { chat = false } = {}) {
  const args = ["run", model, "-p", prompt, "--greedy", "-n", String(maxTokens), "-t", "2"];
  if (chat) args.push("--chat");
  const out = execFileSync(aero, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  return out.endsWith("\n") ? out.slice(0, -1) : out;
}

export async function metrics(url, key) {
  const res = await fetch(url + "/metrics", { headers: key ? { Authorization: `Bearer ${key}` } : {} });
  if (res.status !== 200) throw new Error(`/metrics: HTTP ${res.status}`);
  const text = await res.text();
  const get = (name) => {
    const m = text.match(new RegExp("^" + name.replace(/[{}"=]/g, "\\$&") + " (\\S+)$", "m"));
    return m ? Number(m[1]) : undefined;
  };
  return { text, get };
}

export async function waitFor(predicate, ms = 5000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await predicate()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

export const prompts = [
  "The quick brown fox",
  "Once upon a time, in a land far away,",
  "1, 2, 3, 4,",
  "Question: what is the capital of France? Answer:",
  "def fibonacci(n):",
  "A long time ago in a galaxy far, far away",
  "Roses are red, violets are blue,",
  "The weather today is",
];
