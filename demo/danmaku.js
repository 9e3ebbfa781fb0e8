// Danmaku (seed 001): every comment published to the room's topic flies
// across the stage right to left, at one speed, in the first lane whose last
// comment has fully entered the stage, so comments never overlap.
//
// Never overlapping holds by construction: every comment's position is a
// function of one clock (the document timeline), x(t) = x0 - (t - start) * SPEED,
// and its animation is pinned to that clock (startTime = start), so a busy main
// thread or a late frame moves every comment alike, and a comment is never drawn
// anywhere else (not at x = 0 before its animation starts or after it ends,
// which is how a comment landed on another under load). A lane takes a new comment
// only when its last comment's tail is GAP px inside the stage at that same
// clock reading; from then on both move at the same speed, so the gap stays.
import { $, client as makeClient, showState, tabId } from '/common.js';

const room = new URLSearchParams(location.search).get('room') || 'lobby';
const topic = `danmaku:${room}`;
const me = tabId();
const SPEED = 180; // px per second, the same for every comment: a later one can never catch up an earlier one
const GAP = 24; // px between two comments in a lane
const LANE_HEIGHT = 34; // px; a comment's box is COMMENT_HEIGHT tall (danmaku.html), less than a lane
const counts = { received: 0, shown: 0, skipped: 0, sent: 0, refused: 0 };

const stage = $('stage');
// Per lane, its last comment: where it started (x0, px), when (start, ms on the timeline) and its width.
// Lanes are never forgotten, even when the stage gets shorter, so a comment still flying keeps its lane.
const lanes = [];
let laneCount = 0;
$('room').textContent = room;
$('topic').textContent = topic;

function layoutLanes() {
  laneCount = Math.max(1, Math.floor((stage.clientHeight - 40) / LANE_HEIGHT));
  while (lanes.length < laneCount) lanes.push(null);
}
layoutLanes();
addEventListener('resize', layoutLanes);

/** The x of the right edge of a lane's last comment at time `now`. */
const tailOf = (last, now) => last.x0 + last.width - ((now - last.start) * SPEED) / 1000;

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
  // One clock for the lane check and the animation: the timeline's time, fixed within a task.
  const now = document.timeline.currentTime ?? performance.now();
  const x0 = stage.clientWidth;
  let lane = -1;
  for (let index = 0; index < laneCount; index++) {
    const last = lanes[index];
    if (!last || tailOf(last, now) + GAP <= x0) {
      lane = index;
      break;
    }
  }
  if (lane === -1) {
    counts.skipped++;
    return;
  }
  const element = document.createElement('div');
  element.className = mine ? 'comment mine' : 'comment';
  element.textContent = text;
  element.style.top = `${8 + lane * LANE_HEIGHT}px`;
  // Off stage to the right until the animation runs: never drawn where another comment is.
  element.style.transform = `translateX(${x0}px)`;
  stage.append(element);
  const width = element.getBoundingClientRect().width;
  lanes[lane] = { x0, start: now, width };
  counts.shown++;
  const animation = element.animate(
    [{ transform: `translateX(${x0}px)` }, { transform: `translateX(${-width}px)` }],
    // fill both: before it starts it waits off stage right, and once finished it stays off stage
    // left until it is removed (without fill it would snap back to x = 0, onto the lane's next comment).
    { duration: ((x0 + width) / SPEED) * 1000, easing: 'linear', fill: 'both' },
  );
  // Pinned to the clock the lane was chosen by, not to whenever the next frame comes.
  animation.startTime = now;
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
