// The playground speaks Herald's JSON protocol directly with the browser's
// WebSocket: subscribe, publish, and a log of every frame in both directions.
const $ = (id) => document.getElementById(id);
const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
const topics = new Set();
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
  socket.send(JSON.stringify(frame));
  log('out', frame);
}

function renderTopics() {
  const list = $('topics');
  list.replaceChildren(
    ...[...topics].map((topic) => {
      const chip = document.createElement('li');
      chip.textContent = topic;
      const remove = document.createElement('button');
      remove.textContent = '×';
      remove.title = `unsubscribe from ${topic}`;
      remove.onclick = () => {
        topics.delete(topic);
        send({ action: 'unsubscribe', topic });
        renderTopics();
      };
      chip.append(remove);
      return chip;
    }),
  );
}

function connect() {
  setState('connecting', 'connecting…');
  socket = new WebSocket(wsUrl);
  socket.onopen = () => {
    retry = 500;
    setState('connected');
    log('note', `connected to ${wsUrl}`);
    if (topics.size > 0) send({ action: 'subscribe', topics: [...topics] });
  };
  socket.onmessage = (event) => {
    let frame = event.data;
    try {
      frame = JSON.parse(event.data);
    } catch {}
    log('in', frame);
  };
  socket.onclose = (event) => {
    setState('disconnected', `disconnected (${event.code})`);
    log('note', `closed with ${event.code}${event.reason ? `: ${event.reason}` : ''}; reconnecting`);
    retry = Math.min(retry * 2, 10_000);
    setTimeout(connect, Math.random() * retry);
  };
}

$('subscribe-form').onsubmit = (event) => {
  event.preventDefault();
  const topic = $('subscribe-topic').value.trim();
  if (!topic) return;
  topics.add(topic);
  send({ action: 'subscribe', topic });
  renderTopics();
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
