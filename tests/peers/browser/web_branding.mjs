// The sign-in page with a customization archive applied: the brand name as
// heading and title, the tag line, the logo (decoded: it has its width), the
// tab icon and the background image. Argument: one JSON object with base
// (the web app's URL), brandName, tagLine, logoWidth.
import { launch, run, check } from './chromium.mjs';

const cfg = JSON.parse(process.argv[2]);

await run('web_branding', async () => {
  const context = await launch();
  const page = await context.newPage();
  await page.goto(cfg.base);
  await page.getByRole('heading', { level: 1, name: cfg.brandName }).waitFor({ timeout: 15_000 });
  check((await page.title()) === cfg.brandName, `title is the brand name: ${await page.title()}`);
  check((await page.locator('#brand-tag-line').textContent()) === cfg.tagLine, 'tag line shown');
  const logo = page.locator('#brand-logo');
  await logo.waitFor({ state: 'visible', timeout: 15_000 });
  await page.waitForFunction(() => document.getElementById('brand-logo').complete, null, { timeout: 15_000 });
  const width = await logo.evaluate((img) => img.naturalWidth);
  check(width === Number(cfg.logoWidth), `logo decoded, ${width} px wide`);
  const background = await page.evaluate(() => getComputedStyle(document.body).backgroundImage);
  check(background.includes('/branding/background'), `background image: ${background}`);
  const loaded = await page.evaluate(async () => {
    const r = await fetch('/branding/background');
    const bitmap = await createImageBitmap(await r.blob());
    return `${r.headers.get('content-type')} ${bitmap.width}x${bitmap.height}`;
  });
  check(loaded === 'image/png 64x36', `background served and decodable: ${loaded}`);
  // The join form is still there and usable.
  check(await page.getByLabel('Meeting ID', { exact: true }).isVisible(), 'join form shown');
  console.log(`branded page: "${cfg.brandName}", logo ${width} px, ${loaded}`);
});
