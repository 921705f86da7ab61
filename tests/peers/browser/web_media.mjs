// A guest joins by Meeting ID and passcode with Chromium's fake devices (the
// microphone a tone from a WAV file, the camera a solid colour from a Y4M
// file), then reports what it receives: the level of two frequencies in the
// meeting's audio and a screenshot of the meeting. Arguments: one JSON object
// with base, callId, passcode, toneWav, cameraY4m, screenshot, hearHz (one
// frequency, or several comma-separated: every one must be heard), ownHz.
import { launch, run, check, joinAsGuest } from './chromium.mjs';

const cfg = JSON.parse(process.argv[2]);

await run('web_media', async () => {
  const context = await launch({ fakeAudio: cfg.toneWav, fakeVideo: cfg.cameraY4m });
  const page = await context.newPage();
  await joinAsGuest(page, cfg, 'Browser guest');
  // Video: the composed meeting arrives and plays.
  await page.waitForFunction(() => {
    const v = document.getElementById('remote-video');
    return v.videoWidth > 0 && v.currentTime > 1;
  }, null, { timeout: 30_000 });
  // Audio: the spectrum of what the meeting sends us, over two seconds.
  const levels = await page.evaluate(async ({ hearHz, ownHz }) => {
    const v = document.getElementById('remote-video');
    const ctx = new AudioContext();
    const source = ctx.createMediaStreamSource(v.srcObject);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    source.connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    const at = (hz) => Math.round(hz / (ctx.sampleRate / analyser.fftSize));
    const hears = hearHz.map(() => -Infinity);
    let own = -Infinity;
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 100));
      analyser.getFloatFrequencyData(bins);
      hearHz.forEach((hz, k) => { hears[k] = Math.max(hears[k], bins[at(hz)]); });
      own = Math.max(own, bins[at(ownHz)]);
    }
    // The faintest of the far ends is what must stand above our own tone.
    return { hear: Math.min(...hears), hears, own };
  }, { hearHz: String(cfg.hearHz).split(',').map(Number), ownHz: Number(cfg.ownHz) });
  console.log(`levels ${JSON.stringify(levels)}`);
  await page.screenshot({ path: cfg.screenshot });
  check(levels.hear > levels.own + 20, `the far end's tone is not above our own: ${JSON.stringify(levels)}`);
  // Stay a while so the far end records us.
  await page.waitForTimeout(Number(cfg.stayMs || 4000));
  await page.getByRole('button', { name: 'Leave' }).click();
  await context.close();
});
