// The playground speaks Herald's JSON protocol directly with the browser's
// WebSocket: subscribe, publish, and a log of every frame in both directions.
const $ = (id) => document.getElementById(id);
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
// topic -> { state: 'pending' | 'subscribed' | 'refused', error }: what the server said, not what was asked.
const topics = new Map();
const requests = new Map(); // id -> { action, topic } of the commands waiting for a reply
let socket;
let nextId = 1;
let retry = 500;

function setState(state, text) {
  const el = $('state');
  el.className = `state ${state}`;
  el.textContent = text ?? state;
}

function log(direction, frame) {
  const item = document.createElement('li');
  item.className = direction;
  const arrow = document.createElement('span');
  arrow.className = 'dir';
  arrow.textContent = direction === 'out' ? '→' : direction === 'in' ? '←' : '•';
  const body = document.createElement('code');
  body.textContent = typeof frame === 'string' ? frame : JSON.stringify(frame);
  item.append(arrow, body);
  const list = $('log');
  list.prepend(item);
  while (list.children.length > 200) list.lastChild.remove();
}

function send(command) {
  const frame = { id: nextId++, ...command };
  if (socket?.readyState !== WebSocket.OPEN) {
    log('note', `not connected: ${JSON.stringify(frame)} not sent`);
    return false;
  }
  socket.send(JSON.stringify(frame));
  log('out', frame);
  if (command.topic !== undefined) requests.set(frame.id, { action: command.action, topic: command.topic });
  return true;
}

/** One subscribe command per topic: the server refuses a multi-topic subscribe as a whole when one topic is bad. */
function subscribe(topic) {
  topics.set(topic, { state: 'pending' });
  send({ action: 'subscribe', topic });
  renderTopics();
}

function renderTopics() {
  const list = $('topics');
  list.replaceChildren(
    ...[...topics].map(([topic, { state, error }]) => {
      const chip = document.createElement('li');
      chip.className = state;
      chip.dataset.topic = topic;
      chip.textContent = topic;
      if (state === 'pending') chip.title = 'waiting for the server';
      if (state === 'refused') {
        chip.title = `refused: ${error.message}`;
        const why = document.createElement('span');
        why.className = 'why';
        why.textContent = error.code;
        chip.append(why);
      }
      const remove = document.createElement('button');
      remove.textContent = '×';
      remove.title = state === 'refused' ? `forget ${topic}` : `unsubscribe from ${topic}`;
      remove.onclick = () => {
        topics.delete(topic);
        if (state !== 'refused') send({ action: 'unsubscribe', topic });
        renderTopics();
      };
      chip.append(remove);
      return chip;
    }),
  );
}

/** A reply to one of our commands: a subscription is shown as subscribed only once the server says so. */
function replied(frame) {
  const request = requests.get(frame.id);
  if (!request) return;
  requests.delete(frame.id);
  if (request.action !== 'subscribe') return;
  const entry = topics.get(request.topic);
  if (!entry || entry.state !== 'pending') return;
  topics.set(request.topic, frame.ok ? { state: 'subscribed' } : { state: 'refused', error: frame.error ?? { code: 'refused', message: 'refused' } });
  renderTopics();
}

function connect() {
  setState('connecting', 'connecting…');
  socket = new WebSocket(wsUrl);
  socket.onopen = () => {
    retry = 500;
    setState('connected');
    log('note', `connected to ${wsUrl}`);
    // Subscribe again to what was subscribed (or waiting), one topic per command; a refused topic stays refused.
    for (const [topic, { state }] of topics) if (state !== 'refused') subscribe(topic);
  };
  socket.onmessage = (event) => {
    let frame = event.data;
    try {
      frame = JSON.parse(event.data);
    } catch {}
    log('in', frame);
    if (frame && typeof frame === 'object' && typeof frame.id === 'number') replied(frame);
  };
  socket.onclose = (event) => {
    setState('disconnected', `disconnected (${event.code})`);
    log('note', `closed with ${event.code}${event.reason ? `: ${event.reason}` : ''}; reconnecting`);
    requests.clear();
    for (const [topic, entry] of topics) if (entry.state === 'subscribed') topics.set(topic, { state: 'pending' });
    renderTopics();
    retry = Math.min(retry * 2, 10_000);
    setTimeout(connect, Math.random() * retry);
  };
}

$('subscribe-form').onsubmit = (event) => {
  event.preventDefault();
  const topic = $('subscribe-topic').value.trim();
  if (!topic) return;
  subscribe(topic);
};

$('publish-form').onsubmit = (event) => {
  event.preventDefault();
  const text = $('publish-message').value;
  let message = text;
  try {
    message = JSON.parse(text);
  } catch {}
  send({ action: 'publish', topic: $('publish-topic').value.trim(), message });
};

$('clear').onclick = () => $('log').replaceChildren();

function renderCurl() {
  const topic = $('publish-topic').value.trim() || 'news';
  $('curl').textContent =
    `curl -X POST ${location.origin}/api/publish \\\n  -H 'content-type: application/json' \\\n  -d '{"topic":"${topic}","message":{"text":"hello from curl"}}'`;
}
$('publish-topic').oninput = renderCurl;
renderCurl();
connect();
