// A browser as a WebRTC peer for the Rust tests, driven over stdin/stdout:
// headless Chromium (PEERS.md flags) with a fake camera and a WAV file as its
// microphone makes an offer (non-trickle), prints it as one JSON line, reads
// the answer as one JSON line, then listens for SECONDS and prints what it
// received: RTP statistics, the level of each frequency asked for in the
// remote audio (WebAudio FFT), the mean colour of the remote video, and the
// codec (MIME type) of each RTP stream.
//
// usage: node webrtc-peer.cjs TONE_WAV SECONDS FREQ[,FREQ...]
const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');
const http = require('http');
const readline = require('readline');

const [wav, seconds, freqs] = process.argv.slice(2);
const listenFor = Number(seconds || 10) * 1000;
const frequencies = (freqs || '').split(',').filter(Boolean).map(Number);

function line(rl) {
  return new Promise((resolve) => rl.once('line', resolve));
}

(async () => {
  const server = http.createServer((_, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!doctype html><title>peer</title><video id="v" autoplay muted playsinline></video>');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`, '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns', '--autoplay-policy=no-user-gesture-required',
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1',
    ],
  });
  const rl = readline.createInterface({ input: process.stdin });
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    const offer = await page.evaluate(async () => {
      const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
      window.pc = pc;
      const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
      for (const track of media.getTracks()) pc.addTransceiver(track, { direction: 'sendrecv' });
      window.remote = new MediaStream();
      pc.ontrack = (e) => window.remote.addTrack(e.track);
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') return resolve();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
        setTimeout(resolve, 3000);
      });
      return pc.localDescription.sdp;
    });
    console.log(JSON.stringify({ offer }));
    const answer = JSON.parse(await line(rl));
    if (answer.error) throw new Error(answer.error);
    const result = await page.evaluate(async ({ sdp, listenFor, frequencies }) => {
      await window.pc.setRemoteDescription({ type: 'answer', sdp });
      const video = document.getElementById('v');
      video.srcObject = window.remote;
      const ctx = new AudioContext({ sampleRate: 48000 });
      await ctx.resume();
      const source = ctx.createMediaStreamSource(window.remote);
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0;
      source.connect(analyser);
      // Chromium plays remote WebRTC audio only through an element.
      const audio = new Audio();
      audio.srcObject = window.remote;
      audio.muted = true;
      audio.play().catch(() => {});
      await new Promise((r) => setTimeout(r, listenFor));
      const bins = new Float32Array(analyser.frequencyBinCount);
      const levels = {};
      // The best of a few looks: the mix follows who speaks.
      for (let k = 0; k < 10; k++) {
        analyser.getFloatFrequencyData(bins);
        for (const f of frequencies) {
          const i = Math.round(f / (ctx.sampleRate / analyser.fftSize));
          const db = Math.max(bins[i - 1], bins[i], bins[i + 1]);
          levels[f] = Math.max(levels[f] ?? -Infinity, db);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      let colour = null;
      if (video.videoWidth > 0) {
        const canvas = document.createElement('canvas');
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        const g = canvas.getContext('2d');
        g.drawImage(video, 0, 0);
        const d = g.getImageData(0, 0, canvas.width, canvas.height).data;
        const sum = [0, 0, 0];
        for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
        const n = d.length / 4;
        colour = sum.map((s) => Math.round(s / n));
      }
      const stats = {};
      const report = await window.pc.getStats();
      const codecs = {};
      report.forEach((s) => { if (s.type === 'codec') codecs[s.id] = s.mimeType; });
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' || s.type === 'outbound-rtp') {
          stats[`${s.type}:${s.kind}`] = {
            bytes: s.bytesReceived ?? s.bytesSent, packets: s.packetsReceived ?? s.packetsSent,
            framesDecoded: s.framesDecoded, framesEncoded: s.framesEncoded, codec: codecs[s.codecId] ?? s.codecId,
          };
        }
        if (s.type === 'transport') stats.transport = { dtls: s.dtlsState, ice: s.iceState, srtp: s.srtpCipher };
      });
      return { levels, colour, size: [video.videoWidth, video.videoHeight], stats, state: window.pc.connectionState };
    }, { sdp: answer.answer, listenFor, frequencies });
    console.log(JSON.stringify(result));
  } finally {
    rl.close();
    await browser.close();
    server.close();
  }
})().catch((e) => {
  console.log(JSON.stringify({ error: String(e && e.stack || e) }));
  process.exit(1);
});
