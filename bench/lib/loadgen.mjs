// The load generator: a separate process (pinned to its own core by run.mjs)
// that opens the subscribers, drives the publisher and measures what arrives.
// Usage: node loadgen.mjs '<json spec>'  → prints one JSON result line.
import http from 'node:http';
import { connect, now, sendTime } from './rawws.mjs';
import { connect as connectSse } from './rawsse.mjs';

const spec = JSON.parse(process.argv[2]);
const { port, dialect } = spec; // dialect: 'json' (Herald and the ws peers) or 'socketio'
// transport: 'ws' (default) or 'sse': the subscribers read Herald's SSE streams (GET /sse?topic=...); the publisher is a WebSocket or HTTP client either way.
const sse = spec.transport === 'sse';
// protocol: 'pusher': the subscribers speak the Pusher protocol at /app/{key} (channel `bench-N`, the Herald topic
// `pusher:bench:bench-N`); the publisher is Herald's JSON protocol on the mapped topic (Pusher clients get `message` events).
const pusher = spec.protocol === 'pusher';
const PUSHER_PREFIX = 'pusher:bench:';
const path = dialect === 'socketio' ? '/socket.io/?EIO=4&transport=websocket' : '/ws';
const isSio = dialect === 'socketio';

// Connections come from several loopback addresses: one source address runs out of ports near 28,000.
const sources = spec.sources ?? ['127.0.0.1'];
let sourceTurn = 0;
const nextSource = () => sources[sourceTurn++ % sources.length];

// filter and tags (Herald's JSON protocol only): the subscription's filter on publication tags, the publication's tags.
const subscribeFrame = (topic, id, filter) => (isSio ? `42["subscribe",${JSON.stringify(topic)}]` : JSON.stringify({ id, action: 'subscribe', topic, ...(filter ? { filter } : {}) }));
const publishFrame = (topic, message, tags) => (isSio ? `42["publish",${JSON.stringify({ topic, message })}]` : JSON.stringify({ action: 'publish', topic, message, ...(tags ? { tags } : {}) }));

/** One subscriber: counts publications, samples latencies, resolves `ready` once subscribed. */
async function subscriber(topic, state, sampleEvery, filter) {
  let resolveReady;
  const ready = new Promise((resolve) => (resolveReady = resolve));
  const me = { count: 0, ready };
  const client = await connect({
    port,
    path,
    localAddress: nextSource(),
    onFrame(buffer, start, end, socket) {
      const first = buffer[start];
      if (isSio) {
        // Engine.IO: 0 open, 2 ping, 40 connected, 42[...] events.
        if (first === 0x30) return socket.send('40');
        if (first === 0x32 && end - start === 1) return socket.send('3');
        if (buffer[start + 1] === 0x30) return topic === null ? resolveReady() : socket.send(subscribeFrame(topic));
        if (buffer[start + 4] === 0x73) return resolveReady(); // 42["subscribed"
      } else if (buffer[start + 2] === 0x69) {
        return resolveReady(); // {"id":..} the subscribe reply
      }
      me.count++;
      state.received++;
      if (me.count % sampleEvery === 0) state.latencies.push(now() - sendTime(buffer, start, end));
      state.onReceive?.(me);
    },
    onClose() {
      state.closed++;
    },
  });
  if (!isSio) {
    if (topic === null) resolveReady();
    else client.send(subscribeFrame(topic, 1, filter));
  }
  me.client = client;
  return me;
}

/** Where the send time is in a Pusher frame: its data is the message's JSON text as a string (`\"t\":...`). */
function pusherSendTime(buffer, start, end) {
  const at = buffer.indexOf('\\"t\\":', start, 'latin1');
  if (at === -1 || at >= end) return NaN;
  let stop = at + 6;
  while (stop < end && buffer[stop] !== 0x2c && buffer[stop] !== 0x7d && buffer[stop] !== 0x5c) stop++;
  return Number(buffer.toString('latin1', at + 6, stop));
}

/** One Pusher-protocol subscriber of channel `topic` (as `subscriber`): subscribes once connection_established came, ready at subscription_succeeded. */
async function pusherSubscriber(topic, state, sampleEvery) {
  let resolveReady;
  const ready = new Promise((resolve) => (resolveReady = resolve));
  const me = { count: 0, ready };
  const client = await connect({
    port,
    path: `/app/${spec.pusherKey ?? 'bench-key'}?protocol=7&client=bench&version=1`,
    localAddress: nextSource(),
    onFrame(buffer, start, end, socket) {
      // {"event":"pusher:... / {"event":"pusher_internal:...: the protocol's own events.
      if (buffer[start + 10] === 0x70 && buffer[start + 11] === 0x75 && buffer[start + 12] === 0x73) {
        if (buffer[start + 16] === 0x3a) {
          // pusher:connection_established, pusher:error, ...
          if (buffer[start + 17] === 0x63 && buffer[start + 18] === 0x6f) return topic === null ? resolveReady() : socket.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: topic } }));
          return;
        }
        return resolveReady(); // pusher_internal:subscription_succeeded
      }
      me.count++;
      state.received++;
      if (me.count % sampleEvery === 0) state.latencies.push(now() - pusherSendTime(buffer, start, end));
      state.onReceive?.(me);
    },
    onClose() {
      state.closed++;
    },
  });
  me.client = client;
  return me;
}

/** One SSE reader of `topic` (as `subscriber`): ready once its `event: subscribe` arrived, then counts the publications (default events). */
async function sseSubscriber(topic, state, sampleEvery) {
  let resolveReady;
  const ready = new Promise((resolve) => (resolveReady = resolve));
  const me = { count: 0, ready };
  me.client = await connectSse({
    port,
    path: `${spec.ssePath ?? '/sse'}?topic=${encodeURIComponent(topic)}`,
    localAddress: nextSource(),
    onEvent(type, buffer, start, end) {
      if (type !== 'message') {
        if (type === 'subscribe') resolveReady();
        return;
      }
      me.count++;
      state.received++;
      if (me.count % sampleEvery === 0) state.latencies.push(now() - sendTime(buffer, start, end));
      state.onReceive?.(me);
    },
    onClose() {
      state.closed++;
    },
  });
  return me;
}

/** `count` subscribers; an idle one (topic null) subscribes to nothing on a WebSocket, to `bench-idle` on SSE (a stream has at least one topic). */
async function openMany(count, topicOf, state, sampleEvery, filterOf = () => undefined) {
  const subs = [];
  const batch = 250;
  const open = (topic, filter) => (sse ? sseSubscriber(topic ?? 'bench-idle', state, sampleEvery) : pusher ? pusherSubscriber(topic, state, sampleEvery) : subscriber(topic, state, sampleEvery, filter));
  for (let i = 0; i < count; i += batch) {
    const made = await Promise.all(Array.from({ length: Math.min(batch, count - i) }, (_, j) => open(topicOf(i + j), filterOf(i + j))));
    await Promise.all(made.map((sub) => sub.ready));
    subs.push(...made);
  }
  return subs;
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function summarize(latencies) {
  const sorted = Float64Array.from(latencies).sort();
  const round = (value) => (value === null ? null : Math.round(value * 100) / 100);
  return { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), max: round(sorted.length ? sorted[sorted.length - 1] : null), samples: sorted.length };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
function httpPost(pathname, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const request = http.request({ host: '127.0.0.1', port, path: pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (response) => {
      response.resume();
      response.on('end', () => (response.statusCode < 300 ? resolve() : reject(new Error(`HTTP ${response.statusCode}`))));
    });
    request.on('error', reject);
    request.end(data);
  });
}

async function fanout() {
  const { subscribers, messages, window = 64, publisher = 'ws', topics = 1, sampleEvery = 1, maxSeconds = 8 } = spec;
  // filterGroups (n): subscriber i takes only the publications tagged g = i mod n (a filter), publication k is tagged g = k mod n:
  // each subscriber gets 1/n of the publications, each publication reaches 1/n of the subscribers.
  const groups = spec.filterGroups ?? 1;
  const filtered = groups > 1;
  // tagGroups (n): the publications tagged as with filterGroups, the subscribers without filters (a control case).
  const tagGroups = spec.filterGroups ?? spec.tagGroups ?? 1;
  const state = { received: 0, closed: 0, latencies: [] };
  const subs = await openMany(subscribers, (i) => `bench-${i % topics}`, state, sampleEvery, filtered ? (i) => ({ eq: ['g', String(i % groups)] }) : undefined);
  const probe = subs[subs.length - 1];
  // The probe subscriber takes 1/split of the publications: those of its filter group, or of its topic with probeTopic
  // (a topic per group: the flow control of the filtered case, not the round-robin one of many topics).
  const split = filtered ? groups : spec.probeTopic ? topics : 1;
  const probeGroup = (subs.length - 1) % split;
  const pub = publisher === 'ws' ? await connect({ port, path, onFrame(buffer, start, end, socket) {
    if (isSio && buffer[start] === 0x30) socket.send('40');
    else if (isSio && buffer[start] === 0x32) socket.send('3');
  } }) : null;
  if (pub && isSio) await new Promise((resolve) => setTimeout(resolve, 200)); // the Engine.IO handshake of the publisher
  // mark: the orchestrator reads the server's CPU time around the publishing alone (not the connections' opening and closing).
  const mark = async (line) => {
    if (!spec.mark) return;
    process.stdout.write(`${JSON.stringify(line)}\n`);
    await new Promise((resolve) => process.stdin.once('data', resolve));
  };
  await mark({ subscribed: subs.length });
  // Each publication reaches the subscribers of its topic. A slow server gets fewer publications (at most maxSeconds of publishing).
  // Subscriber i (group i mod n) gets the publications k < count with k mod n = its group.
  const filteredExpected = (count) => subs.reduce((sum, _, i) => sum + Math.max(0, Math.floor((count - 1 - (i % groups)) / groups) + 1), 0);
  let expected = filtered ? filteredExpected(messages) : Math.round((subscribers / topics) * messages);
  // Flow control: at most `window` publications ahead of the probe subscriber, so that queues stay bounded
  // and what is measured is the rate the server sustains.
  let sent = 0;
  // What was sent that the probe subscriber takes (all of it without filters), and the window in those terms.
  let sentToProbe = 0;
  const probeWindow = Math.ceil(window / split);
  let wake = null;
  state.onReceive = (sub) => {
    if (sub === probe && wake && sentToProbe - probe.count < probeWindow) {
      const resume = wake;
      wake = null;
      resume();
    }
  };
  const perTopicProbe = topics > 1 && !spec.probeTopic;
  const cpuBefore = process.cpuUsage();
  const started = now();
  const done = new Promise((resolve) => {
    const check = setInterval(() => {
      if (state.received >= expected && sent > 0) {
        clearInterval(check);
        resolve(now());
      }
    }, 5);
  });
  const stopAt = started + maxSeconds * 1000;
  while (sent < messages) {
    if (now() > stopAt) {
      expected = filtered ? filteredExpected(sent) : Math.round((subscribers / topics) * sent);
      break;
    }
    if (!perTopicProbe && sentToProbe - probe.count >= probeWindow) await new Promise((resolve) => (wake = resolve));
    const topic = `${pusher ? PUSHER_PREFIX : ''}bench-${sent % topics}`;
    const message = { s: sent, t: now() };
    const tags = tagGroups > 1 ? { g: String(sent % tagGroups) } : undefined;
    if (pub) pub.send(publishFrame(topic, message, tags));
    else await httpPost(spec.publishPath ?? '/publish', { topic, message, ...(tags ? { tags } : {}) });
    if (sent % split === probeGroup) sentToProbe++;
    sent++;
    if (perTopicProbe && sent % window === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  const finished = await Promise.race([done, new Promise((resolve) => setTimeout(() => resolve(null), 20_000))]);
  const elapsed = ((finished ?? now()) - started) / 1000;
  // The generator's own CPU time over the same seconds: near them, the generator (not the server) may be what limits the rate.
  const cpu = process.cpuUsage(cpuBefore);
  const generatorCpuSeconds = Math.round((cpu.user + cpu.system) / 10_000) / 100;
  const result = { published: sent, deliveries: state.received, expected, lost: expected - state.received, seconds: Math.round(elapsed * 1000) / 1000, perSecond: Math.round(state.received / elapsed), latency: summarize(state.latencies), closedByServer: state.closed, generatorCpuSeconds };
  await mark({ delivered: state.received });
  for (const sub of subs) sub.client.close();
  pub?.close();
  return result;
}

async function steady() {
  const { subscribers, rate, seconds } = spec;
  const state = { received: 0, closed: 0, latencies: [] };
  const subs = await openMany(subscribers, () => 'bench-0', state, 1);
  const pub = await connect({ port, path, onFrame(buffer, start, end, socket) {
    if (isSio && buffer[start] === 0x30) socket.send('40');
    else if (isSio && buffer[start] === 0x32) socket.send('3');
  } });
  if (isSio) await new Promise((resolve) => setTimeout(resolve, 200));
  const total = rate * seconds;
  const interval = 1000 / rate;
  const begin = now();
  for (let i = 0; i < total; i++) {
    const due = begin + i * interval;
    const wait = due - now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait - 0.5));
    while (now() < due) await new Promise((resolve) => setImmediate(resolve));
    pub.send(publishFrame('bench-0', { s: i, t: now() }));
  }
  const expected = subscribers * total;
  const deadline = now() + 10_000;
  while (state.received < expected && now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  const result = { deliveries: state.received, expected, lost: expected - state.received, latency: summarize(state.latencies), closedByServer: state.closed };
  for (const sub of subs) sub.client.close();
  pub.close();
  return result;
}

async function idle() {
  const { connections } = spec;
  const state = { received: 0, closed: 0, latencies: [] };
  const subs = await openMany(connections, () => null, state, 1);
  process.stdout.write(`${JSON.stringify({ opened: subs.length })}\n`);
  // Hold them until the orchestrator has read the server's memory.
  await new Promise((resolve) => process.stdin.once('data', resolve));
  for (const sub of subs) sub.client.close();
  return { connections: subs.length, closedByServer: state.closed };
}

async function publishApi() {
  const { count, batch = 1, concurrency = 16 } = spec;
  let next = 0;
  const started = now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const first = next;
        next += batch;
        const size = Math.min(batch, count - first);
        if (batch === 1) await httpPost(spec.path ?? '/publish', { topic: 'bench-api', message: { s: first } });
        else await httpPost(spec.path, Array.from({ length: size }, (_, i) => ({ topic: 'bench-api', message: { s: first + i } })));
      }
    }),
  );
  const seconds = (now() - started) / 1000;
  return { publications: count, seconds: Math.round(seconds * 1000) / 1000, perSecond: Math.round(count / seconds) };
}

const modes = { fanout, steady, idle, publishApi };
const result = await modes[spec.mode]();
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
