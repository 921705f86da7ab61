// A guest in a meeting uses its controls, one every few seconds so the test
// can see each take effect on the call leg: "Mute microphone", the "Layout"
// selector (Speaker only), "Stop camera", then "Leave". Arguments: one JSON
// object with base, callId, passcode, stepMs.
import { launch, run, check, joinAsGuest } from './chromium.mjs';

const cfg = JSON.parse(process.argv[2]);
const step = Number(cfg.stepMs || 2500);

await run('web_controls', async () => {
  const context = await launch();
  const page = await context.newPage();
  await joinAsGuest(page, cfg, 'Controls guest');
  // The participant list names us.
  await page.getByRole('list', { name: 'Participants' }).getByText('Controls guest').waitFor({ timeout: 10_000 });
  await page.waitForTimeout(step);
  await page.getByRole('button', { name: 'Mute microphone' }).click();
  await page.getByRole('button', { name: 'Unmute microphone' }).waitFor({ timeout: 5_000 });
  await page.waitForTimeout(step);
  await page.getByLabel('Layout', { exact: true }).selectOption('speakerOnly');
  await page.waitForTimeout(step);
  await page.getByRole('button', { name: 'Stop camera' }).click();
  await page.getByRole('button', { name: 'Start camera' }).waitFor({ timeout: 5_000 });
  await page.waitForTimeout(step);
  await page.getByRole('button', { name: 'Leave' }).click();
  const left = await page
    .getByText('You have left the meeting.')
    .waitFor({ timeout: 5_000 })
    .then(() => true, () => false);
  check(left, 'no "You have left the meeting." after Leave');
  await context.close();
});
