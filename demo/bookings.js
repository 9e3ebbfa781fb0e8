// Booking monitor (seeds 003 and 000): a live table of the bookings published
// to the `bookings` topic, by the demo feed, a script, the HTTP API or Redis.
import { $, client as makeClient, demoCall, showState } from '/common.js';

const TOPIC = 'bookings';
const totals = { count: 0, seats: 0, revenue: 0 };
const seen = new Set();
const money = new Intl.NumberFormat('en', { style: 'currency', currency: 'EUR', maximumFractionDigits: 0 });

$('feeds').textContent = `# the HTTP API (any language)
curl -X POST ${location.origin}/api/publish -H 'content-type: application/json' \\
  -d '{"topic":"bookings","message":{"id":1,"show":"Hamlet","customer":"Ada","seats":2,"amount":90}}'

# a script publishing a booking every second through the HTTP API
node demo/scripts/bookings.mjs ${location.origin}

# with the Redis broker on (npm start -- --set broker=redis), straight from Redis
redis-cli PUBLISH bookings '{"id":2,"show":"Carmen","customer":"Linus","seats":1,"amount":55}'`;

function add(booking, fresh = true) {
  if (!booking || typeof booking !== 'object') return;
  if (booking.id !== undefined && seen.has(booking.id)) return;
  if (booking.id !== undefined) seen.add(booking.id);
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
subscription.on('message', ({ message }) => add(message));
subscription.once('subscribed', async () => {
  // The latest bookings from the topic's history, when it keeps one.
  try {
    const history = await client.history(TOPIC, { limit: 20, reverse: true });
    for (const publication of history.publications.reverse()) add(publication.message, false);
  } catch {
    // no history configured for the topic
  }
});
subscription.on('recoveryFailed', () => {
  const note = $('empty');
  note.hidden = false;
  note.textContent = 'Some bookings were missed while offline; the totals may be short.';
});
client.connect();

$('feed').addEventListener('click', async () => {
  const button = $('feed');
  button.disabled = true;
  try {
    await demoCall('/demo/bookings', { seconds: 30 });
    button.textContent = 'Feeding for 30 s…';
    setTimeout(() => {
      button.disabled = false;
      button.textContent = 'Start the booking feed';
    }, 30_000);
  } catch (err) {
    button.disabled = false;
    button.textContent = err.message;
  }
});
