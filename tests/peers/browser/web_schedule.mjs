// The scheduling wizard, driven as a person would, by accessible labels:
// sign in, "Schedule meeting", the three steps (General, Time, Attendees),
// "Create"; the meeting shows under "My scheduled meetings"; one occurrence
// is cancelled. Arguments: one JSON object with base, user, password,
// template, role, attendee.
import { launch, run, check } from './chromium.mjs';

const cfg = JSON.parse(process.argv[2]);

await run('web_schedule', async () => {
  const context = await launch();
  const page = await context.newPage();
  await page.goto(cfg.base);
  await page.getByLabel('Username').fill(cfg.user);
  await page.getByLabel('Password', { exact: true }).fill(cfg.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'My scheduled meetings' }).waitFor({ timeout: 15_000 });

  await page.getByRole('button', { name: 'Schedule meeting' }).click();
  await page.getByRole('heading', { name: 'Schedule a meeting' }).waitFor({ timeout: 15_000 });
  check((await page.locator('#schedule-step').textContent()) === 'Step 1 of 3', 'step 1 of 3');
  await page.getByLabel('Name', { exact: true }).fill('Browser sync');
  check(await page.getByLabel('Space', { exact: true }).isVisible(), 'step 1: Space');
  await page.getByLabel('Space', { exact: true }).selectOption({ label: 'Create a space for this meeting' });
  const offered = await page.getByLabel('Template', { exact: true }).locator('option').allTextContents();
  check(JSON.stringify(offered) === JSON.stringify([cfg.template]), `templates offered: ${JSON.stringify(offered)}`);
  await page.getByLabel('Template', { exact: true }).selectOption({ label: cfg.template });
  await page.getByRole('button', { name: 'Next' }).click();

  check((await page.locator('#schedule-step').textContent()) === 'Step 2 of 3', 'step 2 of 3');
  await page.getByLabel('Date', { exact: true }).fill('2027-03-22');
  await page.getByLabel('From', { exact: true }).fill('10:00');
  await page.getByLabel('To', { exact: true }).fill('11:30');
  await page.getByLabel('To', { exact: true }).dispatchEvent('change');
  const duration = (await page.locator('#s-duration').textContent()).trim();
  check(duration === '01h 30m', `duration: ${duration}`);
  await page.getByLabel('Repeat', { exact: true }).selectOption({ label: 'Weekly' });
  await page.getByLabel('Occurrences', { exact: true }).fill('3');
  await page.getByRole('button', { name: 'Next' }).click();

  check((await page.locator('#schedule-step').textContent()) === 'Step 3 of 3', 'step 3 of 3');
  await page.getByLabel('Attendee', { exact: true }).fill(cfg.attendee);
  await page.getByLabel('Role', { exact: true }).selectOption({ label: cfg.role });
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await page.getByRole('list', { name: 'Attendees' }).getByText(cfg.attendee).waitFor({ timeout: 5_000 });
  if (cfg.find) {
    // "Find people": someone from the directory, added in the same role.
    await page.getByLabel('Find people', { exact: true }).fill(cfg.find);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    const found = page.getByRole('list', { name: 'People found' });
    await found.getByText(cfg.foundName).waitFor({ timeout: 15_000 });
    console.log(`found: ${JSON.stringify(await found.getByRole('listitem').allTextContents())}`);
    await page.getByRole('button', { name: `Add ${cfg.foundName}`, exact: true }).click();
    await page.getByRole('list', { name: 'Attendees' }).getByText(cfg.foundEmail).waitFor({ timeout: 5_000 });
  }
  await page.getByRole('button', { name: 'Create' }).click();

  await page.locator('#meetings-message').filter({ hasText: /created successfully/ }).waitFor({ timeout: 20_000 });
  const list = page.getByRole('list', { name: 'My scheduled meetings' });
  await list.getByText('Browser sync').first().waitFor({ timeout: 15_000 });
  const items = await list.getByRole('listitem').allTextContents();
  check(items.length === 3 && items.every((t) => /10:00 - 11:30 Browser sync/.test(t)), `listed: ${JSON.stringify(items)}`);
  console.log(`my scheduled meetings: ${JSON.stringify(items)}`);

  await page.getByRole('button', { name: 'Cancel Browser sync on 2027-03-29' }).click();
  await page.locator('#meetings-message').filter({ hasText: /Occurrence cancelled/ }).waitFor({ timeout: 20_000 });
  await page.waitForFunction(() => document.querySelectorAll('#meeting-list li').length === 2, null, { timeout: 15_000 });
  console.log('one occurrence cancelled');

  // Edit: the series moves to the afternoon; the cancelled occurrence stays cancelled.
  await list.getByRole('button', { name: 'Edit Browser sync' }).first().click();
  await page.getByRole('heading', { name: 'Schedule a meeting' }).waitFor({ timeout: 15_000 });
  check((await page.getByLabel('Name', { exact: true }).inputValue()) === 'Browser sync', 'edit: name filled');
  await page.getByRole('button', { name: 'Next' }).click();
  check((await page.getByLabel('From', { exact: true }).inputValue()) === '10:00', 'edit: time filled');
  await page.getByLabel('From', { exact: true }).fill('14:00');
  await page.getByLabel('To', { exact: true }).fill('15:30');
  await page.getByRole('button', { name: 'Next' }).click();
  await page.getByRole('list', { name: 'Attendees' }).getByText(cfg.attendee).waitFor({ timeout: 5_000 });
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#meetings-message').filter({ hasText: /Meeting updated/ }).waitFor({ timeout: 20_000 });
  await page.waitForFunction(
    () => [...document.querySelectorAll('#meeting-list li')].filter((li) => /14:00 - 15:30 Browser sync/.test(li.textContent)).length === 2,
    null, { timeout: 15_000 });
  console.log('meeting edited');
  await context.close();
});
