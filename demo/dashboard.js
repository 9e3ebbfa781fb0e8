// The dashboard polls Herald's HTTP API once a second: /api/status for the
// figures and /api/topics for the busiest topics. With API keys configured,
// it asks for one and keeps it for this tab only (sessionStorage).
//
// Rates are read from the counters (messagesIn, messagesOut) over the real
// time between samples, averaged over RATE_WINDOW, so that polling jitter and
// bursty traffic do not make a sawtooth (rate.js).
import { niceScale, rateOver } from '/dashboard/rate.js';

const $ = (id) => document.getElementById(id);
const WINDOW = 300_000; // ms of history in the charts
const RATE_WINDOW = 5_000; // ms a rate is averaged over
const counters = { in: [], out: [] }; // { at, value } samples of the two counters
const points = []; // { at, connections, outRate } drawn in the charts

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

/** A rate for people: one decimal under 10 a second, whole numbers above. */
const formatRate = (rate) => (rate === null ? '–' : rate < 10 ? rate.toFixed(1) : Math.round(rate).toLocaleString());
const formatTick = (value) => (value >= 10_000 ? `${value / 1000}k` : String(Math.round(value * 100) / 100));

const SVG = 'http://www.w3.org/2000/svg';
function svg(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/**
 * Draws one series over the last five minutes: a y axis from 0 with round
 * ticks in `unit`, a time axis in minutes before now, and the line.
 */
function drawChart(element, series, { unit, integer, now }) {
  const width = Math.max(element.clientWidth, 200);
  const height = element.clientHeight || 150;
  const margin = { left: 44, right: 10, top: 10, bottom: 22 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const values = series.map((point) => point.value).filter((value) => value !== null);
  const { step, top } = niceScale(Math.max(0, ...values), 4, integer);
  const x = (at) => margin.left + ((at - (now - WINDOW)) / WINDOW) * plotWidth;
  const y = (value) => margin.top + plotHeight - (value / top) * plotHeight;
  element.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const parts = [];
  for (let value = 0; value <= top + step / 2; value += step) {
    parts.push(svg('line', { class: 'grid', x1: margin.left, x2: width - margin.right, y1: y(value), y2: y(value) }));
    parts.push(svg('text', { class: 'tick y', x: margin.left - 6, y: y(value) + 4 }, formatTick(value)));
  }
  for (let minutes = 5; minutes >= 0; minutes--) {
    const at = now - minutes * 60_000;
    parts.push(svg('line', { class: 'grid', x1: x(at), x2: x(at), y1: margin.top, y2: margin.top + plotHeight }));
    parts.push(svg('text', { class: minutes === 0 ? 'tick x last' : 'tick x', x: x(at), y: height - 6 }, minutes === 0 ? 'now' : `−${minutes} min`));
  }
  parts.push(svg('line', { class: 'axis', x1: margin.left, x2: margin.left, y1: margin.top, y2: margin.top + plotHeight }));
  parts.push(svg('line', { class: 'axis', x1: margin.left, x2: width - margin.right, y1: margin.top + plotHeight, y2: margin.top + plotHeight }));
  parts.push(svg('text', { class: 'unit', x: margin.left + 6, y: margin.top + 12 }, unit));
  const drawn = series.filter((point) => point.value !== null);
  if (drawn.length > 0) {
    const d = drawn.map((point, i) => `${i ? 'L' : 'M'}${x(point.at).toFixed(1)},${y(point.value).toFixed(1)}`).join(' ');
    parts.push(svg('path', { class: 'line', d }));
  }
  element.replaceChildren(...parts);
}

function drawCharts() {
  const now = performance.now();
  drawChart($('chart-connections'), points.map(({ at, connections }) => ({ at, value: connections })), { unit: 'connections', integer: true, now });
  drawChart($('chart-rate'), points.map(({ at, outRate }) => ({ at, value: outRate })), { unit: 'messages / s', integer: false, now });
}
addEventListener('resize', drawCharts);

function sample(list, at, value) {
  list.push({ at, value });
  while (list.length > 2 && at - list[1].at > RATE_WINDOW) list.shift();
}

async function tick() {
  try {
    const asked = performance.now();
    const status = await api('/api/status');
    // The counters were read between the request and the answer.
    const at = (asked + performance.now()) / 2;
    sample(counters.in, at, status.messagesIn);
    sample(counters.out, at, status.messagesOut);
    const inRate = rateOver(counters.in, RATE_WINDOW);
    const outRate = rateOver(counters.out, RATE_WINDOW);
    for (const name of ['connections', 'users', 'topics', 'subscriptions']) $(name).textContent = status[name].toLocaleString();
    $('in-rate').textContent = formatRate(inRate);
    $('out-rate').textContent = formatRate(outRate);
    $('out-rate').dataset.rate = outRate === null ? '' : String(outRate);
    $('node').textContent = `${status.node} · herald ${status.version} · up ${status.uptime} s · broker ${status.broker.name} (${status.broker.state}) · cluster: ${status.cluster.nodes} node(s), ${status.cluster.connections} connection(s)`;
    points.push({ at, connections: status.connections, outRate });
    while (points.length > 0 && at - points[0].at > WINDOW) points.shift();
    drawCharts();
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
