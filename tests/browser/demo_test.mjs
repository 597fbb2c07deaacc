// The web demo in headless Chromium: load the page, generate with PMPD and see streamed
// tokens coloured by width, the speed and the average bits; switch the model spec to Low
// and see every token at the low width. Saves screenshots beside the given output path.
//   node demo_test.mjs http://127.0.0.1:PORT OUT_DIR
import { chromium } from "playwright-core";

const [url, outDir] = process.argv.slice(2);
const fail = (msg) => { console.error("FAIL: " + msg); process.exit(1); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
         "--no-first-run", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
  page.on("pageerror", (e) => fail("page error: " + e));
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("model").textContent.includes("widths"), null, { timeout: 10000 });

  async function generate(mode) {
    await page.check(`input[name=mode][value=${mode}]`);
    await page.evaluate(() => { document.body.dataset.done = ""; });
    await page.click("#go");
    await page.waitForFunction(() => document.body.dataset.done === "1", null, { timeout: 60000 });
    return page.evaluate(() => ({
      bits: [...document.querySelectorAll("#output span")].map((s) => Number(s.dataset.bits)),
      colours: [...document.querySelectorAll("#output span")].map((s) => getComputedStyle(s).backgroundColor),
      text: document.getElementById("output").textContent,
      speed: document.getElementById("speed").textContent,
      avg: document.getElementById("avgbits").textContent,
      prefill: document.getElementById("prefill").textContent,
      error: document.getElementById("error").textContent,
    }));
  }

  const pmpd = await generate("pmpd");
  console.log("pmpd:", JSON.stringify(pmpd));
  if (pmpd.error) fail("error shown: " + pmpd.error);
  if (pmpd.bits.length < 4) fail("too few streamed tokens");
  if (new Set(pmpd.bits).size < 2) fail("PMPD tokens should come at more than one width");
  if (new Set(pmpd.colours).size < 2) fail("tokens of different widths should have different colours");
  if (!(Number(pmpd.speed) > 0)) fail("no decode speed shown");
  if (!(Number(pmpd.avg) > 0)) fail("no average bits shown");
  await page.screenshot({ path: `${outDir}/demo.png` });

  const low = await generate("low");
  console.log("low:", JSON.stringify(low));
  const lowBits = await page.evaluate(async () => (await (await fetch("/v1/models")).json()).data[0].pmpd.low_bits);
  if (!low.bits.every((b) => b === lowBits)) fail(`mode Low should run every token at ${lowBits} bits`);
  if (Number(low.avg) >= Number(pmpd.avg)) fail("the average bits should drop with mode Low");
  await page.screenshot({ path: `${outDir}/demo-low.png` });
  console.log("browser test passed");
} finally {
  await browser.close();
}
