// The web app's pages, driven as a person would: by accessible labels and
// roles (the contract). Arguments: one JSON object with base (the web app's
// URL), callId, passcode, link (the space's join link with its secret), spaceName, user, password.
import { launch, run, check } from './chromium.mjs';

const cfg = JSON.parse(process.argv[2]);

async function joinMessage(page) {
  const alert = page.locator('#join-message');
  await alert.filter({ hasText: /\S/ }).waitFor({ timeout: 15_000 });
  return (await alert.textContent()).trim();
}

await run('web_app', async () => {
  const context = await launch();
  const page = await context.newPage();

  // Home: the labelled fields and the button.
  await page.goto(cfg.base);
  for (const label of ['Meeting ID', 'Passcode', 'Your name']) {
    check(await page.getByLabel(label, { exact: true }).isVisible(), `home: field "${label}" visible`);
  }
  check(await page.getByRole('button', { name: 'Join meeting' }).isVisible(), 'home: "Join meeting" button');
  check(await page.getByRole('button', { name: 'Sign in' }).isVisible(), 'home: "Sign in" button');

  // A wrong meeting ID: a clear message, and no camera asked for.
  await page.getByLabel('Meeting ID', { exact: true }).fill('987654321');
  await page.getByLabel('Your name', { exact: true }).fill('Guest');
  await page.getByRole('button', { name: 'Join meeting' }).click();
  let msg = await joinMessage(page);
  check(/no meeting with that Meeting ID/i.test(msg), `wrong ID message: ${msg}`);
  check(!(await page.getByRole('button', { name: 'Leave' }).isVisible()), 'wrong ID: not in a meeting');
  console.log(`wrong meeting ID: "${msg}"`);

  // The right ID with a wrong passcode: refused.
  await page.getByLabel('Meeting ID', { exact: true }).fill(cfg.callId);
  await page.getByLabel('Passcode', { exact: true }).fill('000000');
  await page.getByRole('button', { name: 'Join meeting' }).click();
  await page.locator('#join-message').filter({ hasText: /passcode/i }).waitFor({ timeout: 15_000 });
  msg = await joinMessage(page);
  check(/passcode is not right/i.test(msg), `wrong passcode message: ${msg}`);
  check(!(await page.getByRole('button', { name: 'Leave' }).isVisible()), 'wrong passcode: not in a meeting');
  console.log(`wrong passcode: "${msg}"`);

  // A join link without the secret asks for the name and the passcode only.
  await page.goto(`${cfg.base}/meeting/${cfg.callId}`);
  await page.locator('#meeting-name').filter({ hasText: cfg.spaceName }).waitFor({ timeout: 15_000 });
  check(await page.getByLabel('Passcode', { exact: true }).isVisible(), 'link without secret: passcode asked');
  check(!(await page.getByLabel('Meeting ID', { exact: true }).isVisible()), 'link: meeting ID not asked');

  // With the secret (the link meetingEntryDetail gives out): no passcode
  // asked, and the join is not refused for it.
  await page.goto(cfg.link);
  await page.locator('#meeting-name').filter({ hasText: cfg.spaceName }).waitFor({ timeout: 15_000 });
  check(!(await page.getByLabel('Passcode', { exact: true }).isVisible()), 'link with secret: no passcode asked');
  await page.getByLabel('Your name', { exact: true }).fill('Linked guest');
  await page.getByRole('button', { name: 'Join meeting' }).click();
  const leave = page.getByRole('button', { name: 'Leave' });
  await Promise.race([
    leave.waitFor({ timeout: 20_000 }),
    page.locator('#join-message').filter({ hasText: /\S/ }).waitFor({ timeout: 20_000 }),
  ]);
  if (await leave.isVisible()) {
    console.log('join link with secret: in the meeting');
    await leave.click();
  } else {
    msg = await joinMessage(page);
    check(!/passcode/i.test(msg) && !/no meeting/i.test(msg), `join link with secret refused: ${msg}`);
    console.log(`join link with secret: past the passcode ("${msg}")`);
  }

  // Sign in: a wrong password is refused, the right one shows "My spaces".
  await page.goto(cfg.base);
  await page.getByLabel('Username').fill(cfg.user);
  await page.getByLabel('Password', { exact: true }).fill('wrong');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#sign-in-message').filter({ hasText: /wrong username or password/i }).waitFor({ timeout: 15_000 });
  await page.getByLabel('Username').fill(cfg.user);
  await page.getByLabel('Password', { exact: true }).fill(cfg.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'My spaces' }).waitFor({ timeout: 15_000 });
  const item = page.getByRole('listitem').filter({ hasText: cfg.spaceName });
  await item.waitFor({ timeout: 15_000 });
  await item.getByRole('button', { name: /^Join/ }).click();
  await page.waitForURL(/\/meeting\//, { timeout: 15_000 });
  await page.locator('#meeting-name').filter({ hasText: cfg.spaceName }).waitFor({ timeout: 15_000 });
  check(!(await page.getByLabel('Passcode', { exact: true }).isVisible()), 'my space: member joins without passcode');
  check(await page.getByLabel('Your name', { exact: true }).inputValue() === cfg.user, 'my space: name filled in');
  console.log('sign in: My spaces lists the space; Join opens it without a passcode');
  await context.close();
});
