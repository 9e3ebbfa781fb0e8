// The dashboard polls Herald's HTTP API once a second: /api/status for the
// figures and /api/topics for the busiest topics. With API keys configured,
// it asks for one and keeps it for this tab only (sessionStorage).
const $ = (id) => document.getElementById(id);
const WINDOW = 300; // seconds of history in the chart
const samples = [];
let previous = null;

function headers() {
  const key = sessionStorage.getItem('herald-key');
  return key ? { authorization: `Bearer ${key}` } : {};
}

async function api(path, init = {}) {
  const response = await fetch(path, { ...init, headers: { ...headers(), ...(init.headers ?? {}) } });
  if (response.status === 401 || response.status === 403) {
    $('key-form').hidden = false;
    throw new Error(`${response.status}: an API key is needed`);
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
  return body;
}

function setState(state, text) {
  $('state').className = `state ${state}`;
  $('state').textContent = text;
}

function path(values, max) {
  const step = 600 / (WINDOW - 1);
  const offset = WINDOW - values.length;
  return values.map((v, i) => `${i ? 'L' : 'M'}${((offset + i) * step).toFixed(1)},${(155 - (v / (max || 1)) * 145).toFixed(1)}`).join(' ');
}

function drawChart() {
  const connections = samples.map((s) => s.connections);
  const out = samples.map((s) => s.outRate);
  $('chart').innerHTML =
    `<path class="c1" d="${path(connections, Math.max(...connections, 1))}"/>` + `<path class="c2" d="${path(out, Math.max(...out, 1))}"/>`;
}

async function tick() {
  try {
    const status = await api('/api/status');
    const now = performance.now();
    let inRate = 0;
    let outRate = 0;
    if (previous) {
      const seconds = (now - previous.at) / 1000;
      inRate = Math.max(0, (status.messagesIn - previous.messagesIn) / seconds);
      outRate = Math.max(0, (status.messagesOut - previous.messagesOut) / seconds);
    }
    previous = { at: now, messagesIn: status.messagesIn, messagesOut: status.messagesOut };
    for (const name of ['connections', 'users', 'topics', 'subscriptions']) $(name).textContent = status[name].toLocaleString();
    $('in-rate').textContent = Math.round(inRate).toLocaleString();
    $('out-rate').textContent = Math.round(outRate).toLocaleString();
    $('node').textContent = `${status.node} · herald ${status.version} · up ${status.uptime} s · broker ${status.broker.name} (${status.broker.state}) · cluster: ${status.cluster.nodes} node(s), ${status.cluster.connections} connection(s)`;
    samples.push({ connections: status.connections, outRate });
    if (samples.length > WINDOW) samples.shift();
    drawChart();
    const { topics } = await api('/api/topics?limit=10');
    $('busiest').querySelector('tbody').replaceChildren(
      ...topics.map(({ topic, subscribers }) => {
        const row = document.createElement('tr');
        const name = document.createElement('td');
        name.textContent = topic;
        const count = document.createElement('td');
        count.textContent = subscribers.toLocaleString();
        row.append(name, count);
        return row;
      }),
    );
    setState('connected', 'live');
  } catch (err) {
    setState('disconnected', err.message);
  }
}

$('key-form').onsubmit = (event) => {
  event.preventDefault();
  sessionStorage.setItem('herald-key', $('key').value);
  $('key-form').hidden = true;
  void tick();
};

$('publish-form').onsubmit = async (event) => {
  event.preventDefault();
  let message = $('publish-message').value;
  try {
    message = JSON.parse(message);
  } catch {}
  try {
    const result = await api('/api/publish', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic: $('publish-topic').value.trim(), message }),
    });
    $('publish-result').textContent = `published ${JSON.stringify(result)}`;
  } catch (err) {
    $('publish-result').textContent = `not published: ${err.message}`;
  }
};

void tick();
setInterval(tick, 1000);
