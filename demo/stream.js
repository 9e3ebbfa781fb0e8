// Resumable stream: the demo backend's fake model streams a long answer, token
// by token, to a topic of its own (answer:<id>, a topic with history). This
// page reads it with a bare EventSource or with the SDK and saves, after each
// token, the text so far and the position of that token (its offset and
// epoch) in sessionStorage: after a reload it shows the saved text and asks
// for what came after that position, so the text goes on at the exact token,
// none repeated, none missing. Another tab, with nothing saved, reads the
// answer from its start (position 0, epoch "": "seen nothing").
import { $, client as sdkClient, demoCall, showState } from '/common.js';

const ID = /^[A-Za-z0-9_-]{1,64}$/;
const params = new URLSearchParams(location.search);
let reader = params.get('reader') === 'sdk' ? 'sdk' : 'sse';
let answerId = ID.test(params.get('answer') ?? '') ? params.get('answer') : null;
/** The reader in use: { close() }. */
let current = null;

const answerEl = $('answer');
const badge = $('state');

for (const input of document.querySelectorAll('input[name="reader"]')) {
  input.checked = input.value === reader;
  input.addEventListener('change', () => {
    reader = input.value;
    // The other reader goes on from the same saved position.
    if (answerId) follow(answerId);
    else setUrl();
  });
}

function setUrl() {
  const search = new URLSearchParams();
  if (answerId) search.set('answer', answerId);
  if (reader !== 'sse') search.set('reader', reader);
  const query = search.toString();
  history.replaceState(null, '', query ? `?${query}` : location.pathname);
  $('share').href = answerId ? `/stream.html?answer=${answerId}${reader === 'sse' ? '' : `&reader=${reader}`}` : '#';
}

function setBadge(state, text) {
  badge.className = `state ${state}`;
  badge.textContent = text;
}

/** What this tab has shown of an answer: { text, seq, offset, epoch, end?, reason? }. */
const storageKey = (id) => `herald-answer:${id}`;
function load(id) {
  try {
    return JSON.parse(sessionStorage.getItem(storageKey(id)));
  } catch {
    return null;
  }
}

/** Shows an answer (what this tab saved of it), then reads the rest from where that stopped. */
function follow(id) {
  current?.close();
  current = null;
  answerId = id;
  setUrl();
  const saved = load(id);
  const state = saved ?? { text: '', seq: 0, offset: 0, epoch: '' };
  const text = document.createTextNode(state.text);
  answerEl.replaceChildren(text);
  answerEl.dataset.seq = String(state.seq);
  answerEl.dataset.duplicates = '0';
  answerEl.dataset.gaps = '0';
  answerEl.dataset.reader = reader;
  answerEl.dataset.resumedAfter = saved && !saved.end ? String(saved.seq) : '';
  $('topic').textContent = `answer:${id}`;
  $('count').textContent = String(countOf(state));
  $('rate').textContent = '–';
  $('resumed').textContent = saved && !saved.end && saved.seq > 0 ? `resumed after token ${saved.seq} (offset ${saved.offset})` : '';
  $('lost').hidden = true;
  $('position').textContent = state.seq > 0 ? `${state.offset}.${state.epoch}` : '–';
  if (state.end) return ended(state);
  answerEl.dataset.state = state.seq > 0 ? 'streaming' : 'waiting';
  $('ended').textContent = '';
  $('stop').disabled = false;

  const times = [];
  /** One message of the stream, at its position: a chunk {seq, text} or the end {seq, end, reason?}. */
  const handle = (message, position) => {
    if (!message || typeof message !== 'object' || typeof message.seq !== 'number') return;
    // Herald sends each publication once; counted, so that the browser test sees it.
    if (message.seq <= state.seq) {
      answerEl.dataset.duplicates = String(Number(answerEl.dataset.duplicates) + 1);
      return;
    }
    if (message.seq !== state.seq + 1) answerEl.dataset.gaps = String(Number(answerEl.dataset.gaps) + 1);
    state.seq = message.seq;
    state.offset = position.offset;
    state.epoch = position.epoch;
    if (typeof message.text === 'string') {
      state.text += message.text;
      text.appendData(message.text);
    }
    if (message.end) {
      state.end = message.end;
      if (message.reason) state.reason = message.reason;
    }
    // Text and position together, in one write: a reload at any moment resumes right after what is shown.
    sessionStorage.setItem(storageKey(id), JSON.stringify(state));
    answerEl.dataset.seq = String(state.seq);
    answerEl.dataset.state = 'streaming';
    $('position').textContent = `${state.offset}.${state.epoch}`;
    $('count').textContent = String(countOf(state));
    times.push(performance.now());
    if (times.length > 20) times.shift();
    if (times.length > 1) $('rate').textContent = `${Math.round(((times.length - 1) * 1000) / (times.at(-1) - times[0]))} tokens/s`;
    if (state.end) ended(state);
  };
  const lost = (reason) => {
    current?.close();
    current = null;
    answerEl.dataset.state = 'lost';
    $('stop').disabled = true;
    setBadge('disconnected', 'lost');
    $('lost').hidden = false;
    $('lost').textContent =
      reason === 'history_off'
        ? 'This server keeps no history for answer:* topics, so a stream cannot be resumed: give them a history rule (demo/herald.yaml has one).'
        : `Herald no longer keeps this answer from where this page stopped (${reason}): its history expired, or the server restarted.`;
  };
  current = reader === 'sdk' ? readWithSdk(`answer:${id}`, state, handle, lost) : readWithEventSource(`answer:${id}`, state, handle, lost);
}

/** Chunks in a state: every seq but the end's. */
function countOf(state) {
  return state.end ? state.seq - 1 : state.seq;
}

function ended(state) {
  current?.close();
  current = null;
  answerEl.dataset.state = state.end === 'done' ? 'done' : 'error';
  $('stop').disabled = true;
  $('ended').className = state.end === 'done' ? 'ended-done' : 'ended-error';
  $('ended').textContent = state.end === 'done' ? `done · ${state.seq - 1} tokens` : `error: ${state.reason ?? 'unknown'}`;
  setBadge('connected', state.end === 'done' ? 'complete' : 'ended');
  $('reading').textContent = 'nothing more: the answer has ended';
}

/**
 * A bare EventSource: `lastEventId` in the URL after a reload (the browser
 * forgets Last-Event-ID across reloads); while the page lives, the browser
 * reconnects by itself with the Last-Event-ID header, which wins.
 */
function readWithEventSource(topic, state, handle, lost) {
  const url = new URL('/sse', location.origin);
  url.searchParams.set('topic', topic);
  // A one-topic stream's event id is <offset>.<epoch> (docs/transports.md); Herald's epochs need no escaping.
  url.searchParams.set('lastEventId', `${state.offset}.${state.epoch}`);
  const source = new EventSource(url);
  $('reading').textContent = `new EventSource('${url.pathname}${decodeURIComponent(url.search)}')`;
  setBadge('connecting', 'connecting…');
  source.addEventListener('subscribe', (event) => {
    const reply = JSON.parse(event.data);
    setBadge('connected', 'EventSource');
    if (reply.recovered === false) lost(reply.reason);
  });
  source.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    handle(frame.message, { offset: frame.offset, epoch: frame.epoch });
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) setBadge('disconnected', 'refused');
    else setBadge('connecting', 'reconnecting…');
  };
  return { close: () => source.close() };
}

/** The SDK: a subscription from the saved position (`since`); it recovers by itself after a reconnect. */
function readWithSdk(topic, state, handle, lost) {
  const client = sdkClient();
  showState(client, badge);
  const since = { offset: state.offset, epoch: state.epoch };
  const subscription = client.subscribe(topic, { since });
  $('reading').textContent = `client.subscribe('${topic}', { since: ${JSON.stringify(since)} })`;
  subscription.on('message', ({ message, context }) => handle(message, { offset: context.offset, epoch: context.epoch }));
  subscription.on('recoveryFailed', ({ reason }) => lost(reason));
  client.connect();
  return { close: () => client.close() };
}

$('ask').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('note').textContent = '';
  $('send').disabled = true;
  try {
    const { answer } = await demoCall('/demo/answer', { prompt: $('prompt').value });
    follow(answer);
  } catch (err) {
    $('note').textContent = err.message;
  } finally {
    $('send').disabled = false;
  }
});

$('stop').addEventListener('click', async () => {
  if (!answerId) return;
  try {
    await demoCall('/demo/answer/stop', { answer: answerId });
  } catch (err) {
    $('note').textContent = err.message;
  }
});

$('curl').textContent = [1, 2, 3]
  .map((seq) => {
    const message = seq === 3 ? { seq, end: 'done' } : { seq, text: seq === 1 ? 'Hello' : ' from curl' };
    return `curl -X POST ${location.origin}/api/publish -H 'content-type: application/json' \\\n  -d '${JSON.stringify({ topic: 'answer:from-curl', message })}'`;
  })
  .join('\n');
$('es').textContent = "new EventSource('/sse?topic=answer:from-curl&lastEventId=0.')";

if (answerId) follow(answerId);
else setUrl();
