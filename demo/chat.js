// Chat room (seed 002). In JSON mode the page uses @herald/client with a token
// from the demo backend: presence says who is online, history gives the last
// messages. In LHTTP mode it speaks the Lhttp seed's text protocol on a plain
// WebSocket; both modes share the same rooms, since both protocols share one hub.
import { $, client as makeClient, demoToken, showState, tabId, wsUrl } from '/common.js';

const ROOMS = ['general', 'random', 'herald'];
let rooms = [...ROOMS];
let room = new URLSearchParams(location.search).get('room') || 'general';
let nick = localStorage.getItem('herald-chat-nick') || '';
const uid = () => `${nick.replace(/[^A-Za-z0-9_.-]/g, '') || 'guest'}-${tabId()}`;
let mode = null; // { kind: 'json', client, subscription } or { kind: 'lhttp', socket }
const online = new Map(); // conn -> name

const topicOf = (name) => `chat:${name}`;

function notice(text, bad = false) {
  const element = $('notice');
  element.hidden = !text;
  element.textContent = text ?? '';
  element.className = bad ? 'notice bad' : 'notice';
}

function renderRooms() {
  $('rooms').replaceChildren(
    ...rooms.map((name) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.textContent = `# ${name}`;
      button.className = name === room ? 'active' : '';
      button.onclick = () => switchRoom(name);
      item.append(button);
      return item;
    }),
  );
  $('room-name').textContent = room;
}

function renderOnline() {
  const names = [...online.values()].sort();
  $('online').replaceChildren(
    ...names.map((name) => {
      const item = document.createElement('li');
      item.textContent = name;
      return item;
    }),
  );
  $('online-count').textContent = String(names.length);
}

function addMessage(message, { via, system } = {}) {
  // A message from an LHTTP client arrives as text; the page's own messages are JSON either way.
  let body = message;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      body = { nick: 'lhttp', text: body };
    }
  }
  const item = document.createElement('li');
  if (system) {
    item.className = 'system';
    item.textContent = system;
  } else {
    item.className = body?.uid === uid() ? 'mine' : '';
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = body?.nick ?? '?';
    const text = document.createElement('span');
    text.className = 'text';
    text.textContent = body?.text ?? JSON.stringify(body);
    item.append(who, text);
    if (body?.via === 'lhttp' || via === 'lhttp') {
      const tag = document.createElement('span');
      tag.className = 'via';
      tag.textContent = 'via LHTTP';
      item.append(tag);
    }
  }
  const list = $('messages');
  list.append(item);
  while (list.children.length > 300) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}

function enableInput(enabled) {
  $('message').disabled = !enabled;
  $('send').disabled = !enabled;
  if (enabled) $('message').focus();
}

// ---- JSON mode: @herald/client ----

function startJson() {
  const client = makeClient({ getToken: () => demoToken(uid(), nick) });
  showState(client, $('state'));
  client.on('error', ({ error, context }) => {
    if (context === 'getToken' || context === 'login') notice(`${context}: ${error.message}`, true);
  });
  client.on('connected', () => notice(''));
  mode = { kind: 'json', client, subscription: null };
  joinJson(room);
  client.connect();
}

function joinJson(name) {
  const { client } = mode;
  const topic = topicOf(name);
  const subscription = client.subscribe(topic);
  mode.subscription = subscription;
  online.clear();
  renderOnline();
  subscription.on('message', ({ message, context }) => addMessage(message, { via: context.lhttp ? 'lhttp' : undefined }));
  subscription.on('join', ({ info }) => {
    online.set(info.conn, info.info?.name ?? info.uid ?? 'anonymous (LHTTP)');
    renderOnline();
  });
  subscription.on('leave', ({ info }) => {
    online.delete(info.conn);
    renderOnline();
  });
  subscription.on('recoveryFailed', () => addMessage(null, { system: 'some messages were missed while offline' }));
  subscription.on('subscribed', async ({ resubscribed }) => {
    enableInput(true);
    try {
      const presence = await client.presence(topic);
      online.clear();
      for (const entry of presence.list) online.set(entry.conn, entry.info?.name ?? entry.uid ?? 'anonymous (LHTTP)');
      renderOnline();
    } catch {
      // presence not configured for chat topics
    }
    if (resubscribed) return;
    try {
      const history = await client.history(topic, { limit: 30, reverse: true });
      for (const publication of history.publications.reverse()) addMessage(publication.message);
      if (history.publications.length > 0) addMessage(null, { system: 'earlier messages above' });
    } catch {
      // no history for chat topics
    }
  });
  subscription.on('error', ({ error }) => notice(error.message, true));
}

// ---- LHTTP mode: the Lhttp seed's text protocol on a plain WebSocket ----

const lhttpFrame = (command, headers, body = '') =>
  `LHTTP/1.0 ${command}\r\n${Object.entries(headers).map(([name, value]) => `${name}:${value}\r\n`).join('')}\r\n${body}`;

function startLhttp() {
  const socket = new WebSocket(wsUrl, 'lhttp');
  mode = { kind: 'lhttp', socket };
  const state = $('state');
  state.className = 'state connecting';
  state.textContent = 'connecting…';
  socket.onopen = () => {
    state.className = 'state connected';
    state.textContent = 'connected (LHTTP)';
    socket.send(lhttpFrame('chat', { subscribe: topicOf(room) }));
    enableInput(true);
  };
  socket.onmessage = ({ data }) => {
    const text = String(data);
    const split = text.indexOf('\r\n\r\n');
    if (split === -1) return;
    const headers = text.slice(0, split);
    if (!headers.includes(`publish:${topicOf(room)}`)) return;
    addMessage(text.slice(split + 4), { via: 'lhttp' });
  };
  socket.onclose = () => {
    if (mode?.socket !== socket) return;
    state.className = 'state disconnected';
    state.textContent = 'disconnected (LHTTP)';
    enableInput(false);
  };
}

// ---- switching ----

function stop() {
  if (!mode) return;
  if (mode.kind === 'json') mode.client.close();
  else mode.socket.close();
  mode = null;
  enableInput(false);
}

function start() {
  if (!nick) return;
  $('messages').replaceChildren();
  online.clear();
  renderOnline();
  $('mode').textContent = $('lhttp').checked ? 'LHTTP' : 'JSON';
  $('online-hint').hidden = !$('lhttp').checked;
  if ($('lhttp').checked) startLhttp();
  else startJson();
}

function switchRoom(name) {
  if (name === room) return;
  const previous = room;
  room = name;
  if (!rooms.includes(name)) rooms.push(name);
  renderRooms();
  history.replaceState(null, '', `?room=${encodeURIComponent(name)}`);
  $('messages').replaceChildren();
  if (!mode) return;
  if (mode.kind === 'json') {
    mode.subscription?.unsubscribe();
    enableInput(false);
    joinJson(name);
  } else {
    mode.socket.send(lhttpFrame('chat', { unsubscribe: topicOf(previous), subscribe: topicOf(name) }));
  }
}

function send(text) {
  const message = { nick, uid: uid(), text };
  if (mode.kind === 'json') {
    mode.client.publish(topicOf(room), message).catch((err) => notice(`not sent: ${err.message}`, true));
  } else {
    mode.socket.send(lhttpFrame('chat', { publish: topicOf(room) }, JSON.stringify({ ...message, via: 'lhttp' })));
  }
}

$('nick-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const value = $('nick').value.trim();
  if (!value) return;
  nick = value;
  localStorage.setItem('herald-chat-nick', nick);
  $('whoami').textContent = `you are ${nick}`;
  stop();
  start();
});

$('message-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('message').value.trim();
  if (!text || !mode) return;
  send(text);
  $('message').value = '';
});

$('room-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const name = $('new-room').value.trim().replace(/[^A-Za-z0-9_-]/g, '-');
  $('new-room').value = '';
  if (name) switchRoom(name);
});

$('lhttp').addEventListener('change', () => {
  stop();
  start();
});

if (!rooms.includes(room)) rooms.push(room);
renderRooms();
$('nick').value = nick;
if (nick) {
  $('whoami').textContent = `you are ${nick}`;
  start();
} else {
  $('state').textContent = 'pick a nickname';
  $('nick').focus();
}
