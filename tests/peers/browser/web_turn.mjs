// A guest joins from a browser that may use relayed candidates only (its
// RTCPeerConnection's iceTransportPolicy forced to 'relay', as behind a
// firewall that lets nothing but the TURN server through): its media can
// only flow through the TURN server the call bridge names. It joins, waits until the meeting's video plays, stays a while so
// its audio reaches the call bridge, and reports the candidate pair it used.
// Arguments: one JSON object with base, callId, passcode, stayMs.
import { launch, run, check, joinAsGuest } from './chromium.mjs';

const cfg = JSON.parse(process.argv[2]);

await run('web_turn', async () => {
  const context = await launch();
  const page = await context.newPage();
  // Relay only, and keep every RTCPeerConnection the app makes, to read its stats.
  await page.addInitScript(() => {
    const Original = window.RTCPeerConnection;
    window.__pcs = [];
    window.RTCPeerConnection = function (config) {
      config = { ...config, iceTransportPolicy: 'relay' };
      const pc = new Original(config);
      window.__pcs.push({ pc, config });
      return pc;
    };
    window.RTCPeerConnection.prototype = Original.prototype;
  });
  await joinAsGuest(page, cfg, 'Relayed guest');
  await page.waitForFunction(() => {
    const v = document.getElementById('remote-video');
    return v.videoWidth > 0 && v.currentTime > 1;
  }, null, { timeout: 45_000 });
  const used = await page.evaluate(async () => {
    const { pc, config } = window.__pcs[window.__pcs.length - 1];
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
    const local = pair && stats.get(pair.localCandidateId);
    return { servers: config.iceServers, localType: local && local.candidateType, relayProtocol: local && local.relayProtocol,
             received: pair && pair.bytesReceived, sent: pair && pair.bytesSent };
  });
  console.log(`used ${JSON.stringify(used)}`);
  check(used.localType === 'relay', `the media did not go through the TURN server: ${JSON.stringify(used)}`);
  check(used.received > 0 && used.sent > 0, `no media both ways: ${JSON.stringify(used)}`);
  await page.waitForTimeout(Number(cfg.stayMs || 3000));
  await page.getByRole('button', { name: 'Leave' }).click();
  await context.close();
});
