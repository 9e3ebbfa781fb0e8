// Chat room (seed 002). In JSON mode the page uses @herald/client with a token
// from the demo backend: presence says who is online, history gives the last
// messages. In LHTTP mode it speaks the Lhttp seed's text protocol on a plain
// WebSocket; both modes share the same rooms, since both protocols share one hub.
//
// Identity is per window: the nickname lives in sessionStorage, so a second
// window starts as nobody (not as the first window's person) and a reload
// keeps the window's own name.
import { $, backedClient, tabId, wsUrl } from '/common.js';

const ROOMS = ['general', 'random', 'herald'];
const NICK_KEY = 'herald-chat-nick';
let rooms = [...ROOMS];
let room = new URLSearchParams(location.search).get('room') || 'general';
let nick = sessionStorage.getItem(NICK_KEY) || '';
const uid = () => `${nick.replace(/[^A-Za-z0-9_.-]/g, '') || 'guest'}-${tabId()}`;
let mode = null; // { kind: 'json', client, subscription } or { kind: 'lhttp', socket }
const online = new Map(); // conn -> name
const shown = new Set(); // `${epoch}:${offset}` of the publications on screen

const topicOf = (name) => `chat:${name}`;
const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

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

/**
 * What a message says and who sent it. The page's own messages are
 * `{nick, uid, text}` (as JSON text when they come from an LHTTP window);
 * anything else (a string from the HTTP API, a line from the original Lhttp
 * chat page) is shown as its text, without a sender.
 */
function readMessage(message) {
  let body = message;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      return { text: body };
    }
  }
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    const text = typeof body.text === 'string' ? body.text : JSON.stringify(body);
    return { text, nick: typeof body.nick === 'string' ? body.nick : undefined, uid: body.uid };
  }
  return { text: typeof body === 'string' ? body : JSON.stringify(body) };
}

function place(item, time) {
  // In time order: history read after a reconnect may arrive after newer live messages.
  const list = $('messages');
  item.dataset.time = String(time);
  let before = null;
  for (let node = list.lastElementChild; node && Number(node.dataset.time) > time; node = node.previousElementSibling) before = node;
  list.insertBefore(item, before);
  while (list.children.length > 300) list.firstChild.remove();
  list.scrollTop = list.scrollHeight;
}

/** Shows a publication once. `via` is 'lhttp' for a message an LHTTP client published; `time` in ms. */
function addMessage(message, { via, time = Date.now(), offset, epoch } = {}) {
  if (offset !== undefined) {
    const key = `${epoch}:${offset}`;
    if (shown.has(key)) return;
    shown.add(key);
  }
  const { text, nick: sender, uid: senderUid } = readMessage(message);
  const item = document.createElement('li');
  item.className = senderUid !== undefined && senderUid === uid() ? 'mine' : sender === undefined ? 'plain' : '';
  const stamp = document.createElement('time');
  stamp.dateTime = new Date(time).toISOString();
  stamp.textContent = clock.format(time);
  if (sender !== undefined) {
    const who = document.createElement('span');
    who.className = 'who';
    who.textContent = sender;
    item.append(who);
  }
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  item.append(body, stamp);
  if (via === 'lhttp') {
    const tag = document.createElement('span');
    tag.className = 'via';
    tag.textContent = 'via LHTTP';
    item.append(tag);
  }
  place(item, time);
}

function addSystem(text) {
  const item = document.createElement('li');
  item.className = 'system';
  item.textContent = text;
  place(item, Date.now());
}

function enableInput(enabled) {
  $('message').disabled = !enabled;
  $('send').disabled = !enabled;
  if (enabled) $('message').focus();
}

// ---- JSON mode: @herald/client ----

function startJson() {
  const client = backedClient({
    uid,
    name: () => nick,
    badge: $('state'),
    onRefused: (error) => notice(error.message, true),
  });
  client.on('error', ({ error, context }) => {
    if (context === 'login') notice(`login: ${error.message}`, true);
  });
  client.on('connected', () => notice(''));
  mode = { kind: 'json', client, subscription: null };
  joinJson(room);
  client.connect();
}

const nameOf = (entry) => entry.info?.name ?? entry.uid ?? 'anonymous (LHTTP)';

async function loadHistory(client, topic, options) {
  try {
    return await client.history(topic, options);
  } catch {
    return null; // no history for chat topics
  }
}

function joinJson(name) {
  const { client } = mode;
  const topic = topicOf(name);
  const subscription = client.subscribe(topic);
  mode.subscription = subscription;
  online.clear();
  renderOnline();
  subscription.on('message', ({ message, context }) =>
    addMessage(message, { via: context.lhttp ? 'lhttp' : undefined, offset: context.offset, epoch: context.epoch }),
  );
  subscription.on('join', ({ info }) => {
    online.set(info.conn, nameOf(info));
    renderOnline();
  });
  subscription.on('leave', ({ info }) => {
    online.delete(info.conn);
    renderOnline();
  });
  subscription.on('recoveryFailed', async ({ reason }) => {
    // data-recovery: what the page made of the last failed recovery, once it is done.
    const done = (outcome) => ($('messages').dataset.recovery = outcome);
    if (reason !== 'epoch_changed') {
      addSystem('some messages were missed while offline');
      return done('missed');
    }
    // The server restarted (its history is new): what was said since is in the
    // new history, from offset 1 on. Only a gap there means something was missed.
    // The newest 200: when they reach back to offset 1, nothing said since the restart is missing.
    const history = await loadHistory(client, topic, { limit: 200, reverse: true });
    if (!history) return done('unknown');
    for (const publication of oldestFirst(history)) addMessage(publication.message, fromHistory(publication, history.epoch));
    const first = oldestFirst(history)[0]?.offset;
    if (first !== undefined && first > 1) {
      addSystem('some messages were missed while offline');
      return done('missed');
    }
    done('reloaded');
  });
  subscription.on('subscribed', async ({ resubscribed }) => {
    enableInput(true);
    try {
      const presence = await client.presence(topic);
      online.clear();
      for (const entry of presence.list) online.set(entry.conn, nameOf(entry));
      renderOnline();
    } catch {
      // presence not configured for chat topics
    }
    if (resubscribed) return;
    const history = await loadHistory(client, topic, { limit: 30, reverse: true });
    if (!history) return;
    for (const publication of oldestFirst(history)) addMessage(publication.message, fromHistory(publication, history.epoch));
  });
  subscription.on('error', ({ error }) => notice(error.message, true));
}

const oldestFirst = (history) => [...history.publications].sort((a, b) => a.offset - b.offset);

const fromHistory = (publication, epoch) => ({
  via: publication.lhttp ? 'lhttp' : undefined,
  time: publication.time,
  offset: publication.offset,
  epoch,
});

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
    const [startLine, ...headers] = text.slice(0, split).split('\r\n');
    const topic = topicOf(room);
    if (!headers.includes(`publish:${topic}`)) return;
    // Herald gives an LHTTP subscriber a publication from JSON or the HTTP
    // API as exactly `LHTTP/1.0 publish` with the one header `publish:<topic>`;
    // anything else was published by an LHTTP client (docs/lhttp.md).
    const fromJson = startLine === 'LHTTP/1.0 publish' && headers.length === 1;
    addMessage(text.slice(split + 4), { via: fromJson ? undefined : 'lhttp' });
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

function clearMessages() {
  $('messages').replaceChildren();
  shown.clear();
}

function start() {
  if (!nick) return;
  clearMessages();
  online.clear();
  renderOnline();
  notice('');
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
  clearMessages();
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
    mode.socket.send(lhttpFrame('chat', { publish: topicOf(room) }, JSON.stringify(message)));
  }
}

function showNick() {
  $('whoami').textContent = nick ? `you are ${nick}` : '';
}

$('nick-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const value = $('nick').value.trim();
  if (!value) return;
  nick = value;
  sessionStorage.setItem(NICK_KEY, nick);
  showNick();
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
  const name = $('new-room').value.trim().replace(/[^\p{L}\p{N}_-]/gu, '-');
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
showNick();
if (nick) {
  start();
} else {
  $('state').textContent = 'pick a nickname';
  $('nick').focus();
}
