// A guest joins by Meeting ID and passcode (its microphone a tone from a WAV
// file) and listens: every 250 ms, the level in dB of each of some
// frequencies in what the meeting sends, for a while. Arguments: one JSON
// object with base, callId, passcode, toneWav, hearHz (comma-separated),
// listenMs. Prints `levels [[dB per frequency], ...]`.
import { launch, run, joinAsGuest } from './chromium.mjs';

const cfg = JSON.parse(process.argv[2]);

await run('web_listen', async () => {
  const context = await launch({ fakeAudio: cfg.toneWav });
  const page = await context.newPage();
  await joinAsGuest(page, cfg, 'Browser guest');
  console.log('joined');
  const series = await page.evaluate(async ({ hearHz, listenMs }) => {
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const v = document.getElementById('remote-video');
    while (!v.srcObject || v.srcObject.getAudioTracks().length === 0) await sleep(50);
    const ctx = new AudioContext();
    const source = ctx.createMediaStreamSource(v.srcObject);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0;
    source.connect(analyser);
    const bins = new Float32Array(analyser.frequencyBinCount);
    const at = (hz) => Math.round(hz / (ctx.sampleRate / analyser.fftSize));
    const out = [];
    const start = performance.now();
    while (performance.now() - start < listenMs) {
      await sleep(250);
      analyser.getFloatFrequencyData(bins);
      out.push(hearHz.map((hz) => Math.round(Math.max(-200, bins[at(hz)]))));
    }
    return out;
  }, { hearHz: String(cfg.hearHz).split(',').map(Number), listenMs: Number(cfg.listenMs) });
  console.log(`levels ${JSON.stringify(series)}`);
  await page.getByRole('button', { name: 'Leave' }).click();
  await context.close();
});
