// Danmaku (seed 001): every comment published to the room's topic flies
// across the stage right to left, at one speed, in the first lane whose last
// comment has fully entered the stage, so comments never overlap.
import { $, client as makeClient, showState, tabId } from '/common.js';

const room = new URLSearchParams(location.search).get('room') || 'lobby';
const topic = `danmaku:${room}`;
const me = tabId();
const SPEED = 180; // px per second, the same for every comment: a later one can never catch up an earlier one
const GAP = 24; // px between two comments in a lane
const counts = { received: 0, shown: 0, skipped: 0, sent: 0, refused: 0 };

const stage = $('stage');
const lanes = [];
$('room').textContent = room;
$('topic').textContent = topic;

function layoutLanes() {
  const laneHeight = 34;
  const count = Math.max(1, Math.floor((stage.clientHeight - 40) / laneHeight));
  while (lanes.length < count) lanes.push({ freeAt: 0 });
  lanes.length = count;
  return laneHeight;
}
let laneHeight = layoutLanes();
addEventListener('resize', () => (laneHeight = layoutLanes()));

function render() {
  for (const [key, value] of Object.entries(counts)) $(key).textContent = value;
}
let renderQueued = false;
function renderSoon() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    render();
  });
}

function fly(text, mine) {
  const now = performance.now();
  const lane = lanes.findIndex((candidate) => candidate.freeAt <= now);
  if (lane === -1) {
    counts.skipped++;
    return;
  }
  const element = document.createElement('div');
  element.className = mine ? 'comment mine' : 'comment';
  element.textContent = text;
  element.style.top = `${8 + lane * laneHeight}px`;
  stage.append(element);
  const width = element.offsetWidth;
  const distance = stage.clientWidth + width;
  // The lane is free again once this comment's tail is GAP px inside the stage.
  lanes[lane].freeAt = now + ((width + GAP) / SPEED) * 1000;
  counts.shown++;
  const animation = element.animate(
    [{ transform: `translateX(${stage.clientWidth}px)` }, { transform: `translateX(${-width}px)` }],
    { duration: (distance / SPEED) * 1000, easing: 'linear' },
  );
  animation.onfinish = () => {
    element.remove();
    counts.shown--;
    renderSoon();
  };
}

function addRecent(text) {
  const item = document.createElement('li');
  item.textContent = text;
  const list = $('recent');
  list.prepend(item);
  while (list.children.length > 50) list.lastChild.remove();
}

const client = makeClient();
showState(client, $('state'));
const subscription = client.subscribe(topic);
subscription.on('message', ({ message }) => {
  const text = typeof message === 'object' && message !== null ? String(message.text ?? '') : String(message);
  const mine = typeof message === 'object' && message !== null && message.from === me;
  counts.received++;
  fly(text, mine);
  if (!message?.stress) addRecent(text);
  renderSoon();
});
client.on('connected', () => updateViewers());
client.connect();

async function updateViewers() {
  try {
    const presence = await client.presence(topic);
    $('viewers').textContent = presence.connections;
  } catch {
    $('viewers').textContent = '–';
  }
}
setInterval(() => client.state === 'connected' && updateViewers(), 5000);

function send(text, extra = {}) {
  counts.sent++;
  client.publish(topic, { text, from: me, ...extra }).catch(() => {
    counts.refused++;
    renderSoon();
  });
}

$('comment-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('comment').value.trim();
  if (!text) return;
  send(text);
  $('comment').value = '';
});

const WORDS = ['233333', 'nice!', 'wow', 'first!', '前方高能', 'hahaha', 'so good', 'again!', 'gg', '👏👏👏', 'lol', 'whoa', 'this part!!', 'encore'];
$('stress').addEventListener('click', () => {
  const button = $('stress');
  button.disabled = true;
  let ticks = 0;
  // 10 comments every 50 ms = 200 a second, for 5 seconds.
  const timer = setInterval(() => {
    for (let i = 0; i < 10; i++) send(WORDS[(ticks * 10 + i) % WORDS.length], { stress: true });
    renderSoon();
    if (++ticks >= 100) {
      clearInterval(timer);
      button.disabled = false;
    }
  }, 50);
});
