// The chat page in a real browser: headless Chromium (Debian's) driven by puppeteer-core types
// a message, waits for the streamed reply (which must be the greedy answer `aero run --chat`
// gives), and takes a screenshot. Skips, saying why, without Chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { missing, synthModel, startServer, aeroRun } from "./harness.mjs";

const browsers = [process.env.CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].filter(Boolean);
const chromium = browsers.find((p) => existsSync(p));
const skip = missing() || (chromium ? false : "no Chromium found (apt-get install chromium, or set CHROMIUM)");
let puppeteer, model, server, browser;

before(async () => {
  if (skip) return;
  puppeteer = (await import("puppeteer-core")).default;
  model = synthModel();
  server = await startServer(model.model, ["--parallel", "2", "--ctx", "512", "--model-alias", "tiny-chat"]);
  browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ["--no-sandbox", "--disable-gpu"] });
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
  if (model) model.cleanup();
});

test("typing a message streams the model's reply into the page", { skip, timeout: 120000 }, async () => {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(server.url + "/");
  await page.waitForFunction(() => document.getElementById("model").textContent.startsWith("tiny-chat"));
  // Greedy, 16 tokens, through the settings panel.
  await page.$eval("#temperature", (e) => { e.value = "0"; });
  await page.$eval("#max_tokens", (e) => { e.value = "16"; });
  await page.type("#input", "Hello there");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => {
    const stats = document.querySelector(".msg.assistant .stats");
    return stats && stats.textContent.includes("tokens/s");
  }, { timeout: 60000 });
  const reply = await page.$eval(".msg.assistant .body", (e) => e.textContent);
  assert.equal(reply, aeroRun(model.model, "Hello there", 16, { chat: true }));
  const shot = join(tmpdir(), "aero-chat-page.png");
  await page.screenshot({ path: shot });
  assert.ok(existsSync(shot));
  console.log(`chat page screenshot: ${shot}`);
  assert.deepEqual(errors, []);
});
