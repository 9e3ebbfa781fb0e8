// Booking monitor (seeds 003 and 000): a live table of the bookings published
// to the `bookings` topic, by the demo feed, a script, the HTTP API or Redis.
import { $, BackendError, client as makeClient, demoCall, showState } from '/common.js';

const TOPIC = 'bookings';
const totals = { count: 0, seats: 0, revenue: 0 };
const seen = new Set(); // `${epoch}:${offset}` of the publications in the table (history and live overlap)
const FEED_TOPIC = 'demo:bookings-feed';
const money = new Intl.NumberFormat('en', { style: 'currency', currency: 'EUR', maximumFractionDigits: 0 });

// Each run of the curl line adds a booking of its own: its id is made from the clock.
$('feeds').textContent = `# the HTTP API (any language)
curl -X POST ${location.origin}/api/publish -H 'content-type: application/json' \\
  -d '{"topic":"bookings","message":{"id":"curl-'$(date +%s%N)'","show":"Hamlet","customer":"Ada","seats":2,"amount":90}}'

# a script publishing a booking every second through the HTTP API
node demo/scripts/bookings.mjs ${location.origin}

# with the Redis broker on (npm start -- --set broker=redis), straight from Redis
redis-cli PUBLISH bookings '{"id":"redis-1","show":"Carmen","customer":"Linus","seats":1,"amount":55}'`;

/** Adds a booking to the table, once per publication (the same booking id published twice is two bookings). */
function add(booking, { fresh = true, offset, epoch } = {}) {
  if (!booking || typeof booking !== 'object') return;
  if (offset !== undefined) {
    const key = `${epoch}:${offset}`;
    if (seen.has(key)) return;
    seen.add(key);
  }
  $('empty').hidden = true;
  totals.count++;
  totals.seats += Number(booking.seats) || 0;
  totals.revenue += Number(booking.amount) || 0;
  $('count').textContent = totals.count;
  $('seats').textContent = totals.seats;
  $('revenue').textContent = money.format(totals.revenue);
  const row = document.createElement('tr');
  if (fresh) row.className = 'fresh';
  const time = booking.time ? new Date(booking.time).toLocaleTimeString() : new Date().toLocaleTimeString();
  const cells = [booking.id ?? '', time, booking.show ?? '', booking.customer ?? '', booking.seats ?? '', booking.amount === undefined ? '' : money.format(booking.amount)];
  cells.forEach((value, index) => {
    const cell = document.createElement('td');
    cell.textContent = String(value);
    if (index >= 4) cell.className = 'num';
    row.append(cell);
  });
  const body = $('bookings');
  body.prepend(row);
  while (body.children.length > 200) body.lastChild.remove();
}

const client = makeClient();
showState(client, $('state'));
const subscription = client.subscribe(TOPIC);
subscription.on('message', ({ message, context }) => add(message, { offset: context.offset, epoch: context.epoch }));
subscription.once('subscribed', async () => {
  // The latest bookings from the topic's history, when it keeps one.
  try {
    const history = await client.history(TOPIC, { limit: 20, reverse: true });
    for (const publication of history.publications.reverse()) add(publication.message, { fresh: false, offset: publication.offset, epoch: history.epoch });
  } catch {
    // no history configured for the topic
  }
});
subscription.on('recoveryFailed', async ({ reason }) => {
  if (reason === 'epoch_changed') {
    // A restarted server: the bookings published since are its new history.
    try {
      // The newest 50, oldest first: when they reach back to offset 1, nothing is missing.
      const history = await client.history(TOPIC, { limit: 50, reverse: true });
      const publications = history.publications.reverse();
      for (const publication of publications) add(publication.message, { offset: publication.offset, epoch: history.epoch });
      if ((publications[0]?.offset ?? 1) === 1) return;
    } catch {
      return;
    }
  }
  const note = $('empty');
  note.hidden = false;
  note.textContent = 'Some bookings were missed while offline; the totals may be short.';
});

// ---- the demo feed: its state is the server's, so every window shows the same ----

const button = $('feed');
let countdown;

function showFeed(state) {
  clearInterval(countdown);
  if (!state.feeding) {
    button.disabled = false;
    button.textContent = 'Start the booking feed';
    return;
  }
  button.disabled = true;
  const render = () => {
    const left = Math.max(0, Math.ceil((state.until - Date.now()) / 1000));
    button.textContent = `Feeding… ${left} s left`;
  };
  render();
  countdown = setInterval(render, 1000);
}

function noFeed(error) {
  clearInterval(countdown);
  button.disabled = true;
  button.textContent = error.status === 404 ? 'No demo backend on this server' : error.message;
  const note = $('feed-note');
  note.hidden = false;
  note.textContent = error.message;
}

async function readFeed() {
  try {
    showFeed(await demoCall('/demo/bookings'));
  } catch (err) {
    if (err instanceof BackendError) noFeed(err);
  }
}

// The backend publishes every change of the feed's state; read it once on each (re)connect.
const feedState = client.subscribe(FEED_TOPIC);
feedState.on('message', ({ message }) => showFeed(message));
feedState.on('subscribed', () => readFeed());
client.connect();

button.addEventListener('click', async () => {
  button.disabled = true;
  try {
    showFeed(await demoCall('/demo/bookings', { seconds: 30 }));
  } catch (err) {
    if (err instanceof BackendError) noFeed(err);
    else button.disabled = false;
  }
});
