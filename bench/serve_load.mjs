// Load generator for bench/serve_vs_llama_server.sh: STREAMS concurrent clients, each sending
// REQUESTS completions of TOKENS tokens one after another to an OpenAI-compatible server;
// prints aggregate generation tokens/s (completion tokens / wall time) and time to first byte.
// Usage: node bench/serve_load.mjs URL STREAMS REQUESTS TOKENS
const [url, streams, requests, tokens] = [process.argv[2], ...process.argv.slice(3).map(Number)];
const words = ["river", "stone", "cloud", "lamp", "garden", "engine", "violet", "harbor", "winter", "signal"];
let generated = 0;
const started = performance.now();
await Promise.all(Array.from({ length: streams }, async (_, s) => {
  for (let r = 0; r < requests; r++) {
    // Distinct prompts: no stream reuses another's cached prefix.
    const prompt = `Story ${s}-${r}: the ${words[s % 10]} and the ${words[(s + r * 3) % 10]} met one morning, and`;
    const res = await fetch(url + "/v1/completions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: "bench", prompt, max_tokens: tokens, temperature: 0.8, seed: s * 1000 + r }),
    });
    const j = await res.json();
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}: ${JSON.stringify(j)}`);
    generated += j.usage.completion_tokens;
  }
}));
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ streams, requests: streams * requests, generated, seconds, tokens_per_second: generated / seconds }));
