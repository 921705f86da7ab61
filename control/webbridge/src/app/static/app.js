// The Confero web app: join by meeting ID and passcode or a join link, sign
// in for "My spaces", and the meeting itself. Media goes straight to the call
// bridge; this page only exchanges the SDP offer and answer (non-trickle: all
// candidates are gathered before the offer is sent) with the web bridge.

const $ = (id) => document.getElementById(id);

const state = { pc: null, stream: null, token: null, poll: null, micMuted: false, cameraOff: false };

async function api(method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  let data = {};
  try { data = await r.json(); } catch { data = {}; }
  return { ok: r.ok, status: r.status, data };
}

function show(id, on) { $(id).hidden = !on; }

// The join link, if this page is one: /meeting/<callId>?secret=...
function joinLink() {
  const m = location.pathname.match(/^\/meeting\/([^/]+)\/?$/);
  if (!m) return null;
  return { callId: decodeURIComponent(m[1]), secret: new URLSearchParams(location.search).get('secret') || '' };
}

async function prepareLink(link) {
  show('meeting-id-row', false);
  $('meeting-id').value = link.callId;
  const q = new URLSearchParams({ id: link.callId });
  if (link.secret) q.set('secret', link.secret);
  const r = await api('GET', `/api/meeting?${q}`);
  if (!r.ok) {
    $('join-message').textContent = r.data.message || 'This meeting cannot be joined.';
    $('join-button').disabled = r.status === 404;
    show('passcode-row', false);
    return;
  }
  $('meeting-name').textContent = r.data.name;
  show('meeting-name', true);
  show('passcode-row', r.data.passcodeRequired);
}

function waitForIce(pc) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === 'complete') { pc.removeEventListener('icegatheringstatechange', done); resolve(); } };
    pc.addEventListener('icegatheringstatechange', done);
    setTimeout(resolve, 5000);
  });
}

function stopMedia() {
  if (state.poll) clearInterval(state.poll);
  state.poll = null;
  if (state.pc) state.pc.close();
  state.pc = null;
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  state.stream = null;
  state.token = null;
}

async function join(event) {
  event.preventDefault();
  const message = $('join-message');
  message.textContent = '';
  const link = joinLink();
  const meetingId = $('meeting-id').value.trim();
  const name = $('display-name').value.trim();
  if (!meetingId) { message.textContent = 'Please enter the Meeting ID.'; return; }
  if (!name) { message.textContent = 'Please enter your name.'; return; }
  // Ask first whether the meeting exists: a wrong ID costs no camera.
  const q = new URLSearchParams({ id: meetingId });
  if (link && link.secret) q.set('secret', link.secret);
  const found = await api('GET', `/api/meeting?${q}`);
  if (!found.ok) { message.textContent = found.data.message || 'This meeting cannot be joined.'; return; }
  $('join-button').disabled = true;
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    const pc = new RTCPeerConnection({ iceServers: [] });
    state.pc = pc;
    const audio = state.stream.getAudioTracks()[0];
    const video = state.stream.getVideoTracks()[0];
    pc.addTransceiver(audio || 'audio', { direction: 'sendrecv', streams: [state.stream] });
    pc.addTransceiver(video || 'video', { direction: 'sendrecv', streams: [state.stream] });
    const remote = new MediaStream();
    $('remote-video').srcObject = remote;
    pc.addEventListener('track', (e) => remote.addTrack(e.track));
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc);
    const r = await api('POST', '/api/join', {
      meetingId,
      passcode: $('passcode').value,
      secret: link ? link.secret : '',
      name,
      offer: pc.localDescription.sdp,
    });
    if (!r.ok) {
      stopMedia();
      message.textContent = r.data.message || 'Could not join the meeting.';
      return;
    }
    state.token = r.data.token;
    await pc.setRemoteDescription({ type: 'answer', sdp: r.data.answer });
    $('self-view').srcObject = state.stream;
    enterMeeting();
  } catch (e) {
    stopMedia();
    message.textContent = `Could not join the meeting: ${e.message || e}`;
  } finally {
    $('join-button').disabled = false;
  }
}

function enterMeeting() {
  show('home', false);
  show('sign-in-section', false);
  show('my-spaces', false);
  show('meeting', true);
  refreshParticipants();
  state.poll = setInterval(refreshParticipants, 2000);
}

function leaveMeetingView(text) {
  stopMedia();
  show('meeting', false);
  show('home', true);
  refreshMe();
  $('join-message').textContent = text || '';
}

async function refreshParticipants() {
  if (!state.token) return;
  const r = await api('GET', '/api/leg/participants', undefined, state.token);
  if (r.status === 410 || r.status === 401) { leaveMeetingView('You have left the meeting.'); return; }
  if (!r.ok) return;
  const list = $('participants');
  list.replaceChildren(...r.data.participants.map((n) => { const li = document.createElement('li'); li.textContent = n; return li; }));
}

async function update(changes) {
  if (!state.token) return false;
  const r = await api('POST', '/api/leg', { action: 'update', changes }, state.token);
  $('meeting-message').textContent = r.ok ? '' : (r.data.message || 'That did not work.');
  return r.ok;
}

async function toggleMute() {
  const muted = !state.micMuted;
  if (!(await update({ rxAudioMute: muted }))) return;
  state.micMuted = muted;
  state.stream?.getAudioTracks().forEach((t) => { t.enabled = !muted; });
  $('mute').textContent = muted ? 'Unmute microphone' : 'Mute microphone';
}

async function toggleCamera() {
  const off = !state.cameraOff;
  if (!(await update({ rxVideoMute: off }))) return;
  state.cameraOff = off;
  state.stream?.getVideoTracks().forEach((t) => { t.enabled = !off; });
  $('camera').textContent = off ? 'Start camera' : 'Stop camera';
}

async function leave() {
  if (state.token) await api('POST', '/api/leg', { action: 'leave' }, state.token);
  leaveMeetingView('You have left the meeting.');
}

async function signIn(event) {
  event.preventDefault();
  const r = await api('POST', '/api/signin', { username: $('username').value.trim(), password: $('password').value });
  $('password').value = '';
  if (!r.ok) { $('sign-in-message').textContent = r.data.message || 'Could not sign in.'; return; }
  $('sign-in-message').textContent = '';
  await refreshMe();
}

async function signOut() {
  await api('POST', '/api/signout', {});
  await refreshMe();
}

async function refreshMe() {
  const r = await api('GET', '/api/me');
  const signedIn = r.ok;
  show('signed-in', signedIn);
  show('sign-in-section', !signedIn && !state.token);
  show('my-spaces', signedIn && !state.token);
  if (!signedIn) return;
  $('user-name').textContent = r.data.user;
  if (!$('display-name').value) $('display-name').value = r.data.user;
  const items = r.data.spaces.map((s) => {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.textContent = s.name;
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = 'Join';
    button.setAttribute('aria-label', `Join ${s.name}`);
    button.addEventListener('click', () => {
      const q = s.secret ? `?secret=${encodeURIComponent(s.secret)}` : '';
      location.assign(`/meeting/${encodeURIComponent(s.callId)}${q}`);
    });
    li.append(name, ' ', button);
    return li;
  });
  $('space-list').replaceChildren(...items);
}

$('join-form').addEventListener('submit', join);
$('sign-in-form').addEventListener('submit', signIn);
$('sign-out').addEventListener('click', signOut);
$('mute').addEventListener('click', toggleMute);
$('camera').addEventListener('click', toggleCamera);
$('layout').addEventListener('change', (e) => { if (e.target.value) update({ chosenLayout: e.target.value }); });
$('leave').addEventListener('click', leave);

const link = joinLink();
if (link) prepareLink(link);
refreshMe();
