// The studio in a real browser (Debian's Chromium through playwright-core), against a real
// Moviola server. Usage: node studio.mjs BASE_URL VIDEO.mp4 IMAGE.png OUT_DIR
// Two people (two browser contexts) build a short video together: sign-up, project, sharing,
// upload with thumbnails, drag onto the timeline, each other's edits and cursors, an offline
// edit merged on reconnect, a job whose progress both see, export and download. Screenshots of
// the main screens go to OUT_DIR; the last line printed is JSON for the Rust test to check.
import { chromium } from "playwright-core";
import path from "node:path";
import fs from "node:fs";

const [base, video, image, out] = process.argv.slice(2);
fs.mkdirSync(out, { recursive: true });
const step = (s) => console.error(`studio: ${s}`);
const timeout = setTimeout(() => {
  console.error("studio: timed out");
  process.exit(1);
}, 400_000);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const viewport = { width: 1280, height: 720 };
let ok = false;
try {
  const ana = await browser.newContext({ viewport, acceptDownloads: true });
  const bo = await browser.newContext({ viewport });
  // Bo's /sync socket goes through a route the test can cut, like a dropped network.
  let boOffline = false;
  const boSockets = [];
  // Generous waits: CI runs this beside the other tests on two cores, with a debug server.
  ana.setDefaultTimeout(60_000);
  bo.setDefaultTimeout(60_000);
  const pageA = await ana.newPage();
  const pageB = await bo.newPage();
  for (const p of [pageA, pageB]) p.on("pageerror", (e) => console.error(`studio: page error: ${e}`));
  await pageB.routeWebSocket(/\/sync/, (ws) => {
    if (boOffline) return ws.close();
    const server = ws.connectToServer();
    boSockets.push([ws, server]);
  });

  async function signUp(page, name) {
    await page.goto(base);
    await page.getByRole("button", { name: "New here? Create an account" }).click();
    await page.fill("input[name=name]", name);
    await page.fill("input[name=email]", `${name}@example.com`);
    await page.fill("input[name=password]", "correct horse battery");
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByRole("button", { name: "Create project" }).waitFor();
  }
  step("sign up");
  await pageA.goto(base);
  await pageA.screenshot({ path: path.join(out, "sign-in.png") });
  await signUp(pageA, "ana");
  await signUp(pageB, "bo");
  await pageA.fill("input[name=project]", "Our film");
  await pageA.getByRole("button", { name: "Create project" }).click();
  await pageA.getByRole("toolbar", { name: "Timeline tools" }).waitFor();
  const projectId = new URL(pageA.url()).searchParams.get("project");

  step("share with bo");
  await pageA.getByRole("button", { name: "Share" }).click();
  await pageA.fill("input[name=share-email]", "bo@example.com");
  await pageA.getByRole("button", { name: "Add", exact: true }).click();
  await pageA.getByText("bo@example.com can now edit").waitFor();
  await pageA.getByRole("button", { name: "Share" }).click();

  step("tracks and upload");
  await pageA.getByRole("button", { name: "+ Video track" }).click();
  await pageA.getByRole("button", { name: "+ Text track" }).click();
  await pageA.locator(".lane.video").first().waitFor();
  await pageA.setInputFiles("input[name=upload]", [video, image]);
  const thumb = pageA.locator("li.asset img").first();
  await thumb.waitFor();
  await pageA.waitForFunction(() => [...document.querySelectorAll("li.asset img")].length >= 2 && [...document.querySelectorAll("li.asset img")].every((i) => i.complete && i.naturalWidth > 0));
  const videoAsset = pageA.locator("li.asset", { hasText: path.basename(video) });
  const imageAsset = pageA.locator("li.asset", { hasText: path.basename(image) });

  step("drag onto the timeline");
  const lane = pageA.locator(".lane.video").first();
  await videoAsset.dragTo(lane, { targetPosition: { x: 5, y: 20 } });
  await pageA.locator(".clip.video").first().waitFor();
  await imageAsset.dragTo(lane, { targetPosition: { x: 400, y: 20 } });
  await pageA.waitForFunction(() => document.querySelectorAll(".clip.video").length === 2);

  step("bo opens the project and sees ana's clips");
  await pageB.goto(`${base}/?project=${projectId}`);
  await pageB.waitForFunction(() => document.querySelectorAll(".clip.video").length === 2);

  step("cursors and presence");
  const laneB = pageB.locator(".lane.video").first();
  const box = await laneB.boundingBox();
  await pageB.mouse.move(box.x + 300, box.y + 10);
  await pageB.mouse.move(box.x + 320, box.y + 12);
  await pageA.locator('.peer-cursor[data-cursor="bo"]').waitFor();
  await pageA.locator('.presence .peer[data-peer="bo"]').waitFor();
  const boxA = await pageA.locator(".lane.video").first().boundingBox();
  await pageA.mouse.move(boxA.x + 200, boxA.y + 30);
  await pageA.mouse.move(boxA.x + 210, boxA.y + 30);
  await pageB.locator('.peer-cursor[data-cursor="ana"]').waitFor();
  await pageB.locator('.presence .peer[data-peer="ana"]').waitFor();

  step("edits both ways");
  // Bo adds a marker at the playhead (M); ana sees it. Ana splits her first clip at 1 s.
  await pageB.locator(".ruler").click({ position: { x: 40, y: 10 } });
  await pageB.keyboard.press("m");
  await pageA.waitForFunction(() => document.querySelectorAll(".marker").length === 1);
  await pageA.locator(".ruler").click({ position: { x: 80, y: 10 } });
  await pageA.locator(".clip.video").first().click({ position: { x: 20, y: 10 } });
  await pageA.keyboard.press("s");
  await pageB.waitForFunction(() => document.querySelectorAll(".clip.video").length === 3);
  // Undo and redo of ana's own split.
  await pageA.keyboard.press("Control+z");
  await pageB.waitForFunction(() => document.querySelectorAll(".clip.video").length === 2);
  await pageA.keyboard.press("Control+Shift+z");
  await pageB.waitForFunction(() => document.querySelectorAll(".clip.video").length === 3);

  step("bo goes offline, both edit, bo reconnects");
  boOffline = true;
  await bo.setOffline(true);
  for (const [ws, server] of boSockets.splice(0)) {
    ws.close();
    server.close();
  }
  await pageB.locator(".ruler").click({ position: { x: 120, y: 10 } });
  await pageB.keyboard.press("m");
  await pageA.locator(".ruler").click({ position: { x: 200, y: 10 } });
  await pageA.keyboard.press("m");
  await pageB.waitForFunction(() => document.querySelectorAll(".marker").length === 2);
  // Ana does not have bo's offline marker yet.
  await pageA.waitForTimeout(500);
  const beforeA = await pageA.locator(".marker").count();
  if (beforeA !== 2) throw new Error(`ana saw ${beforeA} markers while bo was offline`);
  boOffline = false;
  await bo.setOffline(false);
  await pageA.waitForFunction(() => document.querySelectorAll(".marker").length === 3, null, { timeout: 60_000 });
  await pageB.waitForFunction(() => document.querySelectorAll(".marker").length === 3, null, { timeout: 60_000 });

  step("a job both watch");
  await pageA.locator(".clip.video", { hasText: path.basename(image) }).click({ position: { x: 30, y: 10 } });
  await pageA.selectOption("select[name=job-kind]", "enhance.upscale");
  await pageA.getByRole("button", { name: "Estimate" }).click();
  await pageA.getByText(/credits \(you have/).waitFor();
  await pageA.screenshot({ path: path.join(out, "job-estimate.png") });
  await pageA.getByRole("button", { name: "Run job" }).click();
  for (const page of [pageA, pageB]) {
    await page.waitForFunction(
      () => {
        const li = document.querySelector(".panel[aria-label=Jobs] li.job");
        return li && li.querySelector(".state")?.textContent === "succeeded" && li.querySelector("progress")?.value === 1;
      },
      null,
      { timeout: 120_000 },
    );
  }
  // The placeholder became the result on both timelines.
  await pageB.waitForFunction(() => document.querySelectorAll(".clip.placeholder").length === 0 && document.querySelectorAll(".clip.video").length === 4);
  await pageB.screenshot({ path: path.join(out, "studio-bo.png") });

  step("scene cuts split the footage, from the studio");
  const videoClips = await pageB.locator(".clip.video").count();
  await pageA.locator(".clip.video", { hasText: path.basename(video) }).first().click({ position: { x: 10, y: 10 } });
  await pageA.selectOption("select[name=job-kind]", "analyze.scenes");
  await pageA.selectOption("select[name=scenes]", "split");
  await pageA.getByRole("button", { name: "Estimate" }).click();
  await pageA.getByRole("button", { name: "Run job" }).click();
  // The newest job row (the list is newest first) reaches done, and bo's clip is cut in two.
  await pageA.waitForFunction(
    () => {
      const li = document.querySelector(".panel[aria-label=Jobs] li.job");
      return li && li.textContent.includes("analyze.scenes") && li.querySelector(".state")?.textContent === "succeeded";
    },
    null,
    { timeout: 120_000 },
  );
  await pageB.waitForFunction((n) => document.querySelectorAll(".clip.video").length === n + 1, videoClips, { timeout: 30_000 });

  step("export and download");
  await pageA.selectOption("select[name=preset]", "square");
  await pageA.selectOption("select[name=format]", "h264");
  await pageA.selectOption("select[name=quality]", "draft");
  await pageA.getByRole("button", { name: "Export", exact: true }).click();
  const link = pageA.locator("a.download").first();
  await link.waitFor({ timeout: 180_000 });
  await pageA.screenshot({ path: path.join(out, "studio.png") });
  const [download] = await Promise.all([pageA.waitForEvent("download"), link.click()]);
  const file = path.join(out, download.suggestedFilename());
  await download.saveAs(file);
  await pageA.goto(base);
  await pageA.getByRole("button", { name: "Create project" }).waitFor();
  await pageA.screenshot({ path: path.join(out, "projects.png") });
  ok = true;
  console.log(JSON.stringify({ download: file, project: Number(projectId) }));
} catch (e) {
  console.error(`studio: FAILED: ${e?.stack ?? e}`);
} finally {
  clearTimeout(timeout);
  await browser.close();
  process.exit(ok ? 0 : 1);
}
