// Launches the system's headless Chromium with the flags PEERS.md lists
// (loopback only, fake camera and microphone) through playwright-core.
import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function launch({ fakeAudio, fakeVideo } = {}) {
  const args = [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream', '--allow-loopback-in-peer-connection',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
    '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1',
  ];
  if (fakeAudio) args.push(`--use-file-for-fake-audio-capture=${fakeAudio}`);
  if (fakeVideo) args.push(`--use-file-for-fake-video-capture=${fakeVideo}`);
  const userDataDir = mkdtempSync(join(tmpdir(), 'confero-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args,
    ignoreHTTPSErrors: true,
    permissions: ['camera', 'microphone'],
  });
  return context;
}

// Runs `body` and reports each check; exits non-zero on the first failure.
export async function run(name, body) {
  const timer = setTimeout(() => { console.error(`${name}: timed out`); process.exit(3); }, 90_000);
  try {
    await body();
    console.log(`${name}: ok`);
    clearTimeout(timer);
    process.exit(0);
  } catch (e) {
    console.error(`${name}: FAILED: ${e.stack || e}`);
    process.exit(1);
  }
}

export function check(cond, what) {
  if (!cond) throw new Error(what);
}

// Joins the meeting `callId` from the home page as a guest typing
// `passcode`, and waits until the meeting is on screen.
export async function joinAsGuest(page, { base, callId, passcode }, name) {
  await page.goto(base);
  await page.getByLabel('Meeting ID', { exact: true }).fill(callId);
  await page.getByLabel('Passcode', { exact: true }).fill(passcode);
  await page.getByLabel('Your name', { exact: true }).fill(name);
  await page.getByRole('button', { name: 'Join meeting' }).click();
  await page.getByRole('button', { name: 'Leave' }).waitFor({ timeout: 30_000 });
}
