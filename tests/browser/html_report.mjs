// Opens an agent-replay HTML report in headless Chromium and prints what the page shows,
// as JSON, for tests/integration/browser.rs to judge: the summary, how many fixtures are
// visible under the default filter and with every verdict ticked, what one failed
// fixture's reasons say, whether its call timeline unfolds, and a screenshot.
//
//   node html_report.mjs REPORT.html SCREENSHOT.png
//
// playwright-core comes from NODE_PATH (target/sdk-node/node_modules, tests/sdk/install.sh);
// the browser is the system's Chromium (CHROMIUM, default /usr/bin/chromium).
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

// ES modules ignore NODE_PATH: resolve playwright-core from there explicitly.
const require = createRequire(`${process.env.NODE_PATH || "."}/`);
const { chromium } = require("playwright-core");

const [report, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  const requests = [];
  page.on("request", (r) => { if (!r.url().startsWith("file:")) requests.push(r.url()); });
  await page.goto(pathToFileURL(report).href);
  const visible = () =>
    page.$$eval("section.fixture", (s) => s.filter((x) => !x.hidden).map((x) => x.dataset.verdict));
  const summary = await page.textContent("p.summary");
  const filters = await page.$$eval("#filter input", (i) => i.map((x) => [x.name, x.checked]));
  const byDefault = await visible();
  const first = page.locator("section.fixture:not([hidden])").first();
  const firstText = await first.innerText();
  // Unfold the first call of its timeline, if any.
  const call = first.locator("details details").first();
  let unfolded = null;
  if (await call.count()) {
    await call.locator("summary").first().click();
    unfolded = await call.evaluate((d) => d.open);
  }
  await page.screenshot({ path: screenshot });
  // Tick everything: every fixture shows.
  for (const [name, checked] of filters) {
    if (!checked) await page.check(`#filter input[name="${name}"]`);
  }
  const all = await visible();
  // Untick `failed`: no failed fixture stays.
  let withoutFailed = all;
  if (filters.some(([n]) => n === "failed")) {
    await page.uncheck('#filter input[name="failed"]');
    withoutFailed = await visible();
  }
  console.log(JSON.stringify({ summary, filters, byDefault, all, withoutFailed, firstText, unfolded, requests }));
} finally {
  await browser.close();
}
