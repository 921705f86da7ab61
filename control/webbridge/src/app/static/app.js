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
    // The call bridge's TURN servers, for browsers that cannot reach it directly.
    const pc = new RTCPeerConnection({ iceServers: found.data.iceServers || [] });
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
  show('my-meetings', signedIn && !state.token && r.data.scheduling === true);
  if (!signedIn) { show('schedule', false); return; }
  if (r.data.scheduling) await refreshMeetings();
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

// Scheduling: "My scheduled meetings" and the three-step wizard. The
// scheduler decides what a user may see and do; this only shows it.
const wizard = { step: 1, options: null, attendees: [], editing: null };

function two(n) { return String(n).padStart(2, '0'); }

async function refreshMeetings() {
  const from = new Date();
  from.setHours(0, 0, 0, 0);
  const until = new Date(from.getTime() + 366 * 24 * 3600 * 1000);
  const q = new URLSearchParams({ fromTime: from.toISOString(), untilTime: until.toISOString(), maxMeetings: '50' });
  const r = await api('GET', `/api/schedule/meetings?${q}`);
  if (!r.ok) return;
  const items = r.data.meetings.map((m) => {
    const li = document.createElement('li');
    const o = m.occurrence;
    const when = `${o.localStart.replace('T', ' ')} - ${o.localEnd.slice(11)}`;
    const text = document.createElement('span');
    text.textContent = `${when} ${m.name}`;
    const cancelAll = document.createElement('button');
    cancelAll.type = 'button';
    cancelAll.textContent = 'Cancel meeting';
    cancelAll.setAttribute('aria-label', `Cancel meeting ${m.name}`);
    cancelAll.addEventListener('click', async () => {
      const d = await api('DELETE', `/api/schedule/meetings/${m.id}`);
      $('meetings-message').textContent = d.ok ? 'Meeting cancelled' : (d.data.error?.reason || 'Could not cancel.');
      await refreshMeetings();
    });
    const edit = document.createElement('button');
    edit.type = 'button';
    edit.textContent = 'Edit';
    edit.setAttribute('aria-label', `Edit ${m.name}`);
    edit.addEventListener('click', () => openWizard(m));
    li.append(text, ' ', edit, ' ', cancelAll);
    if (m.recurrence && m.recurrence.frequency !== 'none') {
      const cancelOne = document.createElement('button');
      cancelOne.type = 'button';
      cancelOne.textContent = 'Cancel this occurrence';
      cancelOne.setAttribute('aria-label', `Cancel ${m.name} on ${o.localStart.slice(0, 10)}`);
      cancelOne.addEventListener('click', async () => {
        const body = { ...m };
        delete body.occurrence;
        if (body.coSpaceTemplate) delete body.coSpace;
        body.exceptions = [...(m.exceptions || []), { occurrence: o.recurrenceId, cancelled: true }];
        const d = await api('PUT', `/api/schedule/meetings/${m.id}`, body);
        $('meetings-message').textContent = d.ok ? 'Occurrence cancelled' : (d.data.error?.reason || 'Could not cancel.');
        await refreshMeetings();
      });
      li.append(' ', cancelOne);
    }
    return li;
  });
  $('meeting-list').replaceChildren(...items);
}

function option(value, label) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = label;
  return o;
}

function showStep(n) {
  wizard.step = n;
  $('schedule-step').textContent = `Step ${n} of 3`;
  show('step-general', n === 1);
  show('step-time', n === 2);
  show('step-attendees', n === 3);
  show('s-back', n > 1);
  show('s-next', n < 3);
  show('s-create', n === 3);
  $('schedule-message').textContent = '';
}

function chosenTemplate() {
  return (wizard.options?.templates || []).find((t) => t.id === $('s-template').value);
}

function fillRoles() {
  const t = chosenTemplate();
  const roles = $('s-space-choice').value === 'new' && t ? t.roles : [];
  const all = roles.length ? roles : (wizard.options?.templates || []).flatMap((x) => x.roles);
  $('s-role').replaceChildren(...all.map((r) => option(r.id, r.name)));
}

function updateDuration() {
  const [fh, fm] = ($('s-from').value || '0:0').split(':').map(Number);
  const [th, tm] = ($('s-to').value || '0:0').split(':').map(Number);
  const minutes = Math.max(0, th * 60 + tm - (fh * 60 + fm));
  $('s-duration').textContent = `${two(Math.floor(minutes / 60))}h ${two(minutes % 60)}m`;
}

function showAttendee(a) {
  const roles = (wizard.options?.templates || []).flatMap((t) => t.roles);
  const li = document.createElement('li');
  li.textContent = `${a.email} (${roles.find((r) => r.id === a.accessMethodTemplate)?.name || ''})`;
  $('s-attendees').append(li);
}

// Opens the wizard empty, or (`meeting`) filled with a meeting to edit.
async function openWizard(meeting) {
  const r = await api('GET', '/api/schedule/options');
  if (!r.ok) { $('meetings-message').textContent = 'Scheduling is not available.'; return; }
  wizard.options = r.data;
  wizard.attendees = [];
  wizard.editing = meeting || null;
  $('s-name').value = '';
  $('s-template').replaceChildren(...r.data.templates.map((t) => option(t.id, t.name)));
  $('s-space').replaceChildren(...r.data.spaces.map((s) => option(s.id, s.name)));
  $('s-space-choice').value = 'new';
  show('s-template-row', true);
  show('s-space-row', false);
  const now = new Date(Date.now() + 3600 * 1000);
  $('s-date').value = `${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}`;
  $('s-from').value = `${two(now.getHours())}:00`;
  $('s-to').value = `${two((now.getHours() + 1) % 24)}:00`;
  $('s-repeat').value = 'none';
  show('s-count-row', false);
  updateDuration();
  $('s-attendees').replaceChildren();
  $('s-found').replaceChildren();
  $('s-find').value = '';
  $('s-create').textContent = 'Create';
  const m = wizard.editing;
  if (m) {
    $('s-name').value = m.name;
    if (m.coSpaceTemplate) {
      $('s-template').value = m.coSpaceTemplate;
    } else {
      $('s-space-choice').value = 'existing';
      $('s-space').value = m.coSpace;
      show('s-template-row', false);
      show('s-space-row', true);
    }
    $('s-date').value = m.start.slice(0, 10);
    $('s-from').value = m.start.slice(11, 16);
    $('s-to').value = m.end.slice(11, 16);
    $('s-repeat').value = m.recurrence?.frequency || 'none';
    show('s-count-row', $('s-repeat').value !== 'none');
    if (m.recurrence?.count) $('s-count').value = String(m.recurrence.count);
    updateDuration();
    wizard.attendees = m.attendees.map((a) => ({ ...a }));
    wizard.attendees.forEach(showAttendee);
    $('s-create').textContent = 'Save';
  }
  fillRoles();
  show('my-meetings', false);
  show('my-spaces', false);
  show('schedule', true);
  showStep(1);
}

function closeWizard() {
  show('schedule', false);
  refreshMe();
}

function nextStep() {
  if (wizard.step === 1 && !$('s-name').value.trim()) { $('schedule-message').textContent = 'Please give the meeting a name.'; return; }
  if (wizard.step === 2 && $('s-to').value <= $('s-from').value) { $('schedule-message').textContent = 'The meeting must end after it starts.'; return; }
  showStep(wizard.step + 1);
}

function addAttendee() {
  const email = $('s-attendee').value.trim();
  if (!email.includes('@')) { $('schedule-message').textContent = 'Please enter an email address.'; return; }
  const role = $('s-role').value;
  const roleName = $('s-role').selectedOptions[0]?.textContent || '';
  wizard.attendees.push({ email, accessMethodTemplate: role });
  const li = document.createElement('li');
  li.textContent = `${email} (${roleName})`;
  $('s-attendees').append(li);
  $('s-attendee').value = '';
  $('schedule-message').textContent = '';
}

// "Find people": the deployment's users and its directory search
// locations, as the call bridge answers for this user; one with an email
// address can be added as an attendee in the role chosen.
async function findPeople() {
  const q = $('s-find').value.trim();
  const list = $('s-found');
  list.replaceChildren();
  if (!q) return;
  const r = await api('GET', `/api/directory?${new URLSearchParams({ q })}`);
  if (!r.ok) { $('schedule-message').textContent = r.data.message || 'The directory could not be searched.'; return; }
  const people = r.data.people || [];
  if (!people.length) {
    const li = document.createElement('li');
    li.textContent = 'No one found.';
    list.append(li);
    return;
  }
  for (const p of people) {
    const li = document.createElement('li');
    li.textContent = `${p.name}${p.email ? ` <${p.email}>` : ''}${p.label ? ` (${p.label})` : ''} `;
    if (p.email) {
      const add = document.createElement('button');
      add.type = 'button';
      add.textContent = 'Add';
      add.setAttribute('aria-label', `Add ${p.name}`);
      add.addEventListener('click', () => { $('s-attendee').value = p.email; addAttendee(); });
      li.append(add);
    }
    list.append(li);
  }
}

async function createMeeting() {
  const date = $('s-date').value;
  const body = {
    name: $('s-name').value.trim(),
    start: `${date}T${$('s-from').value}`,
    end: `${date}T${$('s-to').value}`,
    timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
    attendees: wizard.attendees,
  };
  if ($('s-space-choice').value === 'new') body.coSpaceTemplate = $('s-template').value;
  else body.coSpace = $('s-space').value;
  const repeat = $('s-repeat').value;
  if (repeat !== 'none') {
    body.recurrence = { frequency: repeat, interval: 1, count: Number($('s-count').value) || 1 };
    if (repeat === 'weekly') body.recurrence.days = [['SU', 'MO', 'TU', 'WE', 'TH', 'FR', 'SA'][new Date(`${date}T12:00`).getDay()]];
  }
  const m = wizard.editing;
  if (m) {
    // Its own zone, and its exceptions: as they were while the series starts
    // as before; cancellations follow a new time of day on the same date.
    body.timeZone = m.timeZone;
    if (m.exceptions && body.start === m.start) body.exceptions = m.exceptions;
    else if (m.exceptions && date === m.start.slice(0, 10)) {
      body.exceptions = m.exceptions.filter((e) => e.cancelled)
        .map((e) => ({ occurrence: `${e.occurrence.slice(0, 11)}${$('s-from').value}`, cancelled: true }));
    }
    if (m.passcodes) body.passcodes = m.passcodes;
  }
  const r = m
    ? await api('PUT', `/api/schedule/meetings/${m.id}`, body)
    : await api('POST', '/api/schedule/meetings', body);
  if (!r.ok) {
    const e = r.data.error || {};
    const what = m ? 'save' : 'create';
    $('schedule-message').textContent = `Could not ${what} the meeting: ${e.field ? `${e.field}: ` : ''}${e.reason || r.status}`;
    return;
  }
  show('schedule', false);
  await refreshMe();
  $('meetings-message').textContent = m
    ? 'Meeting updated. Attendees have been sent the change.'
    : 'Meeting created. This meeting has been created successfully.';
}

$('schedule-meeting').addEventListener('click', () => openWizard());
$('s-cancel').addEventListener('click', closeWizard);
$('s-back').addEventListener('click', () => showStep(wizard.step - 1));
$('s-next').addEventListener('click', nextStep);
$('s-create').addEventListener('click', createMeeting);
$('s-add').addEventListener('click', addAttendee);
$('s-find-button').addEventListener('click', findPeople);
$('s-find').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); findPeople(); } });
$('s-from').addEventListener('change', updateDuration);
$('s-to').addEventListener('change', updateDuration);
$('s-from').addEventListener('input', updateDuration);
$('s-to').addEventListener('input', updateDuration);
$('s-template').addEventListener('change', fillRoles);
$('s-repeat').addEventListener('change', () => show('s-count-row', $('s-repeat').value !== 'none'));
$('s-space-choice').addEventListener('change', () => {
  const fresh = $('s-space-choice').value === 'new';
  show('s-template-row', fresh);
  show('s-space-row', !fresh);
  fillRoles();
});

$('join-form').addEventListener('submit', join);
$('sign-in-form').addEventListener('submit', signIn);
$('sign-out').addEventListener('click', signOut);
$('mute').addEventListener('click', toggleMute);
$('camera').addEventListener('click', toggleCamera);
$('layout').addEventListener('change', (e) => { if (e.target.value) update({ chosenLayout: e.target.value }); });
$('leave').addEventListener('click', leave);

// The customization the call bridge pushed (its resourceArchive): brand
// words, logo, tab icon and background. Without one the page keeps its own look.
async function applyBranding() {
  const r = await api('GET', '/api/branding');
  if (!r.ok) return;
  const b = r.data;
  if (b.brandName) { $('brand-name').textContent = b.brandName; document.title = b.brandName; }
  $('brand-tag-line').textContent = b.brandTagLine || '';
  show('brand-tag-line', !!b.brandTagLine);
  const images = b.images || {};
  if (images.logo) { $('brand-logo').src = images.logo; show('brand-logo', true); }
  if (images.icon) {
    const icon = document.createElement('link');
    icon.rel = 'icon';
    icon.href = images.icon;
    document.head.append(icon);
  }
  document.body.classList.toggle('branded-background', !!images.background);
}

const link = joinLink();
if (link) prepareLink(link);
applyBranding();
refreshMe();
