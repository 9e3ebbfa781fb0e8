import { HeraldClient } from '@herald/client';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { createHerald, type Herald, type HeraldOptions } from '../../src/index.js';
import { NatsServer, RedisServer } from './servers.js';
import { internals } from './internals.js';

/**
 * The soak: two nodes on Redis and one on NATS (with history in Redis), HTTP
 * and WebSocket publishers, SDK clients that drop and recover at random, and
 * faults (Redis and NATS killed and restarted, Redis subscriber links cut).
 * At the end every SDK client's emitted stream is checked against what was
 * acknowledged: on topics with history, every acknowledged offset once, in
 * order, nothing else twice; on topics without history, every acknowledged
 * publication a client missed while subscribed is covered by a `gap` event.
 * Used by `npm run soak` (scripts/soak.mjs) and, 30 s long, by soak.test.ts.
 */
export interface SoakOptions {
  seconds: number;
  /** Publications per second over all publishers (default 300). */
  rate?: number;
  /** SDK clients (default 12). */
  clients?: number;
  log?: (line: string) => void;
}

export interface SoakFigures {
  seconds: number;
  publications: { acknowledged: number; refused: number; worstAnswerMs: number };
  recoveries: number;
  faults: { clientDrops: number; subscriberCuts: number; redisRestarts: number; natsRestarts: number };
  gapsSignalled: number;
  duplicates: number;
  disorder: number;
  lost: number;
  unsignalledLosses: number;
  violations: string[];
  /** For each publication on a topic with history that a client emitted out of turn, lost or emitted twice: what happened around it (see describeAnomaly). */
  anomalies: string[];
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const between = (min: number, max: number) => min + Math.random() * (max - min);

const HISTORY_TOPICS = ['h:1', 'h:2', 'h:3'];

/** One WebSocket connection of an SDK client: which node, when, what its history subscribe asked and was answered. */
interface Connection {
  node: string;
  opened: number;
  connected?: number;
  /** The position the subscribe sent as `since` (the SDK's position when it connected). */
  since?: { offset: number; epoch: string };
  reply?: { at: number; recovered?: boolean; reason?: string; position?: { offset: number; epoch: string }; firstEmission: number };
  closed?: { at: number; why: string };
}

/** A publication an SDK client emitted on its topic with history, and on which of its connections. */
interface Emission {
  offset: number;
  epoch: string;
  at: number;
  connection: number;
}

/** Anomalies described in full (the figures count them all). */
const MAX_ANOMALIES = 10;

/** One subscription of a client to its topic without history: from the subscribe reply to the connection's end. */
interface Period {
  from: number;
  to: number;
  gaps: number[];
  received: Set<number>;
}

export async function runSoak(options: SoakOptions): Promise<SoakFigures> {
  const log = options.log ?? (() => {});
  const rate = options.rate ?? 300;
  const redis = new RedisServer(true);
  const nats = new NatsServer();
  await Promise.all([redis.start(), nats.start()]);
  const base: HeraldOptions = {
    port: 0,
    host: '127.0.0.1',
    log: { level: 'silent' },
    demo: { enabled: false },
    history: [{ pattern: 'h:*', size: 100_000, ttl: 3_600_000 }],
    limits: { maxConnectionsPerIp: 10_000, connectionsPerSecond: 10_000, commandsPerSecond: 100_000, commandBurst: 100_000 },
    cluster: { heartbeatInterval: 500 },
    redis: { url: redis.url, prefix: 'soak:' },
  };
  const nodes: Herald[] = await Promise.all([
    createHerald({ ...base, broker: 'redis' }),
    createHerald({ ...base, broker: 'redis' }),
    createHerald({ ...base, broker: 'nats', historyStore: 'redis', nats: { url: nats.url, prefix: 'soak.' } }),
  ]);
  const [a, b, c] = nodes as [Herald, Herald, Herald];
  // Topics without history are carried by the broker of the node: Redis for a and b, NATS for c.
  const plainTopics: Array<{ topic: string; nodes: Herald[] }> = [
    { topic: 'p:redis', nodes: [a, b] },
    { topic: 'p:nats', nodes: [c] },
  ];
  const wsUrl = (herald: Herald) => `${herald.url.replace('http', 'ws')}/ws`;
  await Promise.all(nodes.map((herald) => untilReady(herald)));

  const figures: SoakFigures = {
    seconds: options.seconds,
    publications: { acknowledged: 0, refused: 0, worstAnswerMs: 0 },
    recoveries: 0,
    faults: { clientDrops: 0, subscriberCuts: 0, redisRestarts: 0, natsRestarts: 0 },
    gapsSignalled: 0,
    duplicates: 0,
    disorder: 0,
    lost: 0,
    unsignalledLosses: 0,
    violations: [],
    anomalies: [],
  };
  const started = Date.now();
  const nodeName = new Map(nodes.map((herald, i) => [herald.port, 'abc'[i]!]));
  /** Every fault, with when it began and ended, to set an anomaly in its context. */
  const faultLog: Array<{ kind: string; from: number; to: number }> = [];
  /** Publications on topics with history that were not acknowledged (503, or cut off): when, through which node, why. */
  const refusedLog = new Map<string, Array<{ sent: number; answered: number; node: string; why: string }>>(HISTORY_TOPICS.map((topic) => [topic, []]));
  const acked = new Map<string, Set<number>>(HISTORY_TOPICS.map((topic) => [topic, new Set()]));
  /** Plain topics: each acknowledged publication's sequence number, with when it was sent and answered. */
  const plainAcked = new Map<string, Array<{ seq: number; sent: number; answered: number; via?: number | undefined }>>(plainTopics.map(({ topic }) => [topic, []]));
  let seq = 0;
  let running = true;

  const answered = (topic: string, message: { seq: number }, sent: number, result: { offset?: number; via?: number } | null, node?: Herald, why = '') => {
    const ms = Date.now() - sent;
    figures.publications.worstAnswerMs = Math.max(figures.publications.worstAnswerMs, ms);
    if (!result) {
      figures.publications.refused++;
      if (topic.startsWith('h:')) refusedLog.get(topic)!.push({ sent, answered: Date.now(), node: node ? nodeName.get(node.port)! : '?', why });
      return;
    }
    figures.publications.acknowledged++;
    if (topic.startsWith('h:')) acked.get(topic)!.add(result.offset!);
    else plainAcked.get(topic)!.push({ seq: message.seq, sent, answered: Date.now(), via: result.via });
  };
  const target = (): { topic: string; node: Herald } => {
    if (Math.random() < 0.7) return { topic: pick(HISTORY_TOPICS), node: pick(nodes) };
    const plain = pick(plainTopics);
    return { topic: plain.topic, node: pick(plain.nodes) };
  };

  // HTTP publisher: one request at a time per lane, several lanes.
  const httpLane = async () => {
    while (running) {
      const { topic, node } = target();
      const message = { seq: ++seq };
      const sent = Date.now();
      try {
        const response = await fetch(`${node.url}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, message }) });
        const body = (await response.json()) as { offset?: number; error?: { code?: string } };
        answered(topic, message, sent, response.status === 200 ? { ...body, via: node.port } : null, node, `HTTP ${response.status} ${body.error?.code ?? ''}`);
      } catch (err) {
        answered(topic, message, sent, null, node, `HTTP ${(err as Error).message}`);
      }
      await pause(1000 / (rate / 6));
    }
  };
  // WebSocket publisher: a raw client per lane that publishes with ids and reconnects when cut off.
  const wsLane = async () => {
    while (running) {
      const node = pick(nodes);
      const ws = new WebSocket(wsUrl(node));
      ws.on('error', () => {});
      const pending = new Map<number, { topic: string; message: { seq: number }; sent: number }>();
      ws.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as { id?: number; ok?: boolean; offset?: number; error?: { code?: string } };
        const entry = frame.id === undefined ? undefined : pending.get(frame.id);
        if (!entry) return;
        pending.delete(frame.id!);
        answered(entry.topic, entry.message, entry.sent, frame.ok ? { ...frame, via: node.port } : null, node, `WS ${frame.error?.code ?? ''}`);
      });
      const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
      const opened = await Promise.race([new Promise<boolean>((resolve) => ws.once('open', () => resolve(true))), closed.then(() => false)]);
      let id = 0;
      while (opened && running && ws.readyState === WebSocket.OPEN) {
        let { topic } = target();
        if (topic === 'p:nats' && node !== c) topic = 'p:redis';
        if (topic === 'p:redis' && node === c) topic = 'p:nats';
        const message = { seq: ++seq };
        pending.set(++id, { topic, message, sent: Date.now() });
        ws.send(JSON.stringify({ id, action: 'publish', topic, message }));
        await pause(1000 / (rate / 6));
      }
      ws.close();
      await closed;
      for (const entry of pending.values()) answered(entry.topic, entry.message, entry.sent, null, node, 'WS cut off unanswered');
    }
  };

  // SDK clients: each on one history topic and one topic without history, on nodes chosen at random per connection.
  const clients = Array.from({ length: options.clients ?? 12 }, (_, index) => {
    const historyTopic = HISTORY_TOPICS[index % HISTORY_TOPICS.length]!;
    const plain = plainTopics[index % plainTopics.length]!;
    let socket: WebSocket | null = null;
    const connections: Connection[] = [];
    class RandomNode extends WebSocket {
      constructor(_url: string | URL, protocols?: string | string[]) {
        const node = pick(plain.nodes);
        super(wsUrl(node), protocols);
        socket = this;
        connections.push({ node: nodeName.get(node.port)!, opened: Date.now() });
      }
    }
    const client = new HeraldClient({ url: 'ws://unused/ws', WebSocket: RandomNode as never, minReconnectDelay: 50, maxReconnectDelay: 500, requestTimeout: 5000, pingInterval: 5000, pingTimeout: 5000 });
    const history = client.subscribe(historyTopic);
    const plainSubscription = client.subscribe(plain.topic);
    const emitted: number[] = [];
    const emissions: Emission[] = [];
    /** The first subscribe reply (and the position it reported, if any): every acknowledged publication after that position is owed. */
    let firstReply: { position?: { offset: number; epoch: string } | undefined } | undefined;
    const periods: Period[] = [];
    let open: Period | null = null;
    history.on('message', ({ context }) => {
      emitted.push(context.offset!);
      emissions.push({ offset: context.offset!, epoch: context.epoch!, at: Date.now(), connection: connections.length - 1 });
    });
    history.on('subscribed', (event) => {
      firstReply ??= { position: event.position };
      if (event.recovered) figures.recoveries++;
      if (event.recovered === false) figures.violations.push(`client ${index}: recovery on ${historyTopic} failed (${event.reason})`);
      const connection = connections.at(-1);
      if (connection) connection.reply = { at: Date.now(), firstEmission: emissions.length, ...event };
    });
    history.on('gap', ({ reason }) => {
      const connection = connections.at(-1);
      figures.violations.push(`client ${index}: gap (${reason}) on ${historyTopic}, which has history, at +${((Date.now() - started) / 1000).toFixed(3)}s on node ${connection?.node}`);
    });
    plainSubscription.on('message', ({ message }) => {
      const seq = (message as { seq: number }).seq;
      open?.received.add(seq);
    });
    plainSubscription.on('subscribed', () => {
      open = { from: Date.now(), to: Infinity, gaps: [], received: new Set() };
      periods.push(open);
    });
    plainSubscription.on('gap', () => {
      figures.gapsSignalled++;
      open?.gaps.push(Date.now());
    });
    client.on('connected', () => {
      // The subscribe commands went out just before this event, asking from here.
      const connection = connections.at(-1);
      if (connection) {
        connection.connected = Date.now();
        if (history.position) connection.since = { ...history.position };
      }
    });
    client.on('disconnected', ({ code, reason }) => {
      if (open) open.to = Date.now();
      open = null;
      const connection = connections.at(-1);
      if (connection) connection.closed ??= { at: Date.now(), why: `${code} ${reason}` };
    });
    client.connect();
    const drop = () => {
      // The subscription ends when the test cuts the socket, not when the client notices.
      if (open) open.to = Date.now();
      open = null;
      const connection = connections.at(-1);
      if (connection && socket) connection.closed ??= { at: Date.now(), why: 'cut by the soak' };
      socket?.terminate();
    };
    return { index, client, historyTopic, plain: plain.topic, emitted, emissions, connections, periods, drop, close: () => client.close(), firstPosition: () => firstReply?.position };
  });

  const dropper = async () => {
    while (running) {
      await pause(between(100, 400));
      pick(clients).drop();
      figures.faults.clientDrops++;
    }
  };
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  admin.on('error', () => {});
  const faults = async () => {
    const kinds = ['cut', 'redis', 'cut', 'nats'] as const;
    for (let i = 0; running; i++) {
      await pause(between(2500, 4500));
      if (!running) break;
      const kind = kinds[i % kinds.length]!;
      const from = Date.now();
      if (kind === 'cut') {
        await admin.client('KILL', 'TYPE', 'pubsub').catch(() => 0);
        figures.faults.subscriberCuts++;
        faultLog.push({ kind: 'Redis subscriber links cut', from, to: Date.now() });
        log(`fault: Redis subscriber links cut`);
      } else if (kind === 'redis') {
        await redis.stop();
        await pause(between(200, 1000));
        await redis.start();
        figures.faults.redisRestarts++;
        faultLog.push({ kind: 'Redis killed and restarted', from, to: Date.now() });
        log(`fault: Redis killed and restarted`);
      } else {
        await nats.stop();
        await pause(between(200, 1000));
        await nats.start();
        figures.faults.natsRestarts++;
        faultLog.push({ kind: 'NATS killed and restarted', from, to: Date.now() });
        log(`fault: NATS killed and restarted`);
      }
    }
  };

  log(`soak: ${options.seconds} s, ~${rate} publications/s, ${clients.length} SDK clients, nodes ${nodes.map((n) => internals(n).broker.name).join(', ')}`);
  const workers = [httpLane(), httpLane(), httpLane(), wsLane(), wsLane(), wsLane(), dropper(), faults()];
  await pause(options.seconds * 1000);
  running = false;
  await Promise.all(workers);
  // Settle: every node ready again, every client subscribed, then every acknowledged offset must arrive.
  await Promise.all(nodes.map((herald) => untilReady(herald)));
  const last = new Map(HISTORY_TOPICS.map((topic) => [topic, Math.max(0, ...acked.get(topic)!)]));
  const settleBy = Date.now() + 30_000;
  for (const client of clients) {
    const final = last.get(client.historyTopic)!;
    while ((client.emitted.at(-1) ?? 0) < final && Date.now() < settleBy) await pause(50);
  }
  await pause(500);
  for (const client of clients) client.close();

  const at = (time: number) => `+${((time - started) / 1000).toFixed(3)}s`;
  const describeConnection = (connection: Connection | undefined, n: number): string => {
    if (!connection) return `connection #${n} (unknown)`;
    const reply = connection.reply;
    const since = connection.since ? `since ${connection.since.offset}@${connection.since.epoch}` : 'no since';
    const answer = reply
      ? `reply ${at(reply.at)} ${reply.recovered === undefined ? 'plain' : `recovered=${reply.recovered}${reply.reason ? ` (${reply.reason})` : ''}`} position ${reply.position ? `${reply.position.offset}@${reply.position.epoch}` : 'none'}`
      : 'no subscribe reply';
    const closed = connection.closed ? `, closed ${at(connection.closed.at)} (${connection.closed.why})` : '';
    return `connection #${n} to node ${connection.node}: opened ${at(connection.opened)}, connected ${connection.connected ? at(connection.connected) : 'never'} (${since}), ${answer}${closed}`;
  };
  /** One anomaly at emissions[i] of a client: the offsets around it, the fate of the skipped ones, the connections and the faults of the moment. */
  const describeAnomaly = async (client: (typeof clients)[number], i: number, kind: string): Promise<string> => {
    const { emissions, connections, historyTopic: topic } = client;
    const here = emissions[i]!;
    const before = emissions[i - 1]!;
    const window = emissions.slice(Math.max(0, i - 4), i + 4).map((e, k) => {
      const j = Math.max(0, i - 4) + k;
      const mark = j === i ? '>' : '';
      const epochNote = j === 0 || emissions[j - 1]!.epoch !== e.epoch ? `@${e.epoch}` : '';
      return `${mark}${e.offset}${epochNote}[#${e.connection} ${at(e.at)}]`;
    });
    const lines = [`client ${client.index} on ${topic}: ${kind} at emission ${i}: ${window.join(' ')}`];
    if (here.epoch === before.epoch && here.offset > before.offset + 1) {
      const skipped = [];
      for (let offset = before.offset + 1; offset < here.offset && skipped.length < 3; offset++) {
        const later = emissions.findIndex((e, j) => j > i && e.epoch === here.epoch && e.offset === offset);
        let stored = 'not in the store';
        try {
          const page = await a.historyOf(topic, { since: { offset: offset - 1, epoch: here.epoch }, limit: 1 });
          const entry = page.publications[0];
          if (entry?.offset === offset) stored = `in the store (appended ${at(entry.time)})`;
        } catch (err) {
          stored = `store unreadable (${(err as Error).message})`;
        }
        skipped.push(`${offset}: ${acked.get(topic)!.has(offset) ? 'acknowledged' : 'not acknowledged'}, ${stored}, ${later === -1 ? 'never emitted' : `emitted later (emission ${later})`}`);
      }
      lines.push(`  skipped ${here.offset - before.offset - 1}: ${skipped.join('; ')}`);
    }
    for (const n of new Set([before.connection, here.connection])) lines.push(`  ${describeConnection(connections[n], n)}`);
    const reply = connections[here.connection]?.reply;
    if (reply) lines.push(`  emission ${i} is the ${i - reply.firstEmission + 1}th emitted after that connection's subscribe reply`);
    const from = before.at - 5000;
    const to = here.at + 1000;
    for (const fault of faultLog) if (fault.to >= from && fault.from <= to) lines.push(`  fault ${at(fault.from)}..${at(fault.to)}: ${fault.kind}`);
    const refused = refusedLog.get(topic)!.filter((r) => r.answered >= from && r.sent <= to);
    if (refused.length > 0) lines.push(`  ${refused.length} publish(es) on ${topic} refused meanwhile: ${refused.slice(0, 4).map((r) => `${at(r.sent)}..${at(r.answered)} via ${r.node} (${r.why.trim()})`).join(', ')}`);
    return lines.join('\n');
  };

  /** Acknowledged publications a client never emitted: where its stream stopped or jumped, and the state it ended in. */
  const describeLoss = async (client: (typeof clients)[number], missing: number[]): Promise<string> => {
    const { emissions, connections, historyTopic: topic } = client;
    missing.sort((x, y) => x - y);
    const firstMissing = missing[0]!;
    const after = emissions.findIndex((e) => e.offset > firstMissing);
    const last = emissions.at(-1);
    const lines = [
      `client ${client.index} on ${topic}: ${missing.length} acknowledged never emitted, ${missing[0]}..${missing.at(-1)}; ` +
        (after === -1 ? `its stream stopped at ${last ? `${last.offset} (${at(last.at)}, connection #${last.connection})` : 'nothing'}` : `it jumped to ${emissions[after]!.offset} at emission ${after}`) +
        `; at the end: client ${client.client.state}, subscription ${client.client.subscription(topic)?.state}, position ${JSON.stringify(client.client.subscription(topic)?.position)}`,
    ];
    const shown = new Set([last?.connection ?? 0, connections.length - 1]);
    for (const n of shown) lines.push(`  ${describeConnection(connections[n], n)}`);
    const streams = nodes.map((herald) => {
      const stream = internals(herald).liveStream(topic);
      const where = stream ? `${stream.offset}@${stream.epoch ?? '-'}${stream.catchingUp ? ' (catching up)' : ''}` : 'not followed';
      return `${nodeName.get(herald.port)} ${where}, ${internals(herald).hub.subscriberCount(topic)} subscriber(s)`;
    });
    lines.push(`  the nodes' streams of ${topic} at the end: ${streams.join('; ')}`);
    if (connections.length - 1 > (last?.connection ?? 0) + 1) lines.push(`  (${connections.length - 1 - (last?.connection ?? 0) - 1} connection(s) in between)`);
    const from = (last?.at ?? started) - 5000;
    for (const fault of faultLog) if (fault.to >= from) lines.push(`  fault ${at(fault.from)}..${at(fault.to)}: ${fault.kind}`);
    return lines.join('\n');
  };

  // The verdict.
  for (const client of clients) {
    const expected = acked.get(client.historyTopic)!;
    const seen = new Set<number>();
    const { emissions } = client;
    for (let i = 0; i < emissions.length; i++) {
      const { offset, epoch } = emissions[i]!;
      const previous = emissions[i - 1];
      // Per epoch: a new epoch (the stored history was lost) starts again at its first offset emitted.
      if (previous && previous.epoch !== epoch) seen.clear();
      if (seen.has(offset)) {
        figures.duplicates++;
        if (figures.anomalies.length < MAX_ANOMALIES) figures.anomalies.push(await describeAnomaly(client, i, 'duplicate'));
      } else if (previous && (offset !== previous.offset + 1 || epoch !== previous.epoch)) {
        figures.disorder++;
        if (figures.anomalies.length < MAX_ANOMALIES) figures.anomalies.push(await describeAnomaly(client, i, epoch === previous.epoch ? 'disorder' : 'epoch change'));
      }
      seen.add(offset);
    }
    // Owed: every acknowledged offset after the first subscribe reply's position (or, when it reported none, from the first emitted on).
    const owedAfter = client.firstPosition()?.offset ?? (client.emitted[0] ?? Infinity) - 1;
    const missing = [...expected].filter((offset) => offset > owedAfter && !seen.has(offset));
    figures.lost += missing.length;
    if (client.emitted.length === 0) figures.violations.push(`client ${client.index}: emitted nothing on ${client.historyTopic}`);
    if (missing.length > 0) {
      figures.violations.push(`client ${client.index}: ${missing.length} acknowledged publication(s) on ${client.historyTopic} never emitted (${missing.slice(0, 5).join(', ')}…)`);
      if (figures.anomalies.length < MAX_ANOMALIES) figures.anomalies.push(await describeLoss(client, missing));
    }
    // Without history: a publication is owed to a subscription when it was sent after the subscription
    // was confirmed and the subscription received a later publication from the same node (sent after
    // this one was acknowledged: per-node order puts this one first). Every owed one missed must be
    // covered by a gap signalled in that subscription, at or after it was sent.
    const byNode = new Map<number | undefined, Array<{ seq: number; sent: number; answered: number }>>();
    for (const publication of plainAcked.get(client.plain)!) {
      if (!byNode.has(publication.via)) byNode.set(publication.via, []);
      byNode.get(publication.via)!.push(publication);
    }
    for (const publications of byNode.values()) {
      for (const period of client.periods) {
        let lastReceivedSent = -Infinity;
        for (const publication of publications) if (period.received.has(publication.seq)) lastReceivedSent = Math.max(lastReceivedSent, publication.sent);
        for (const publication of publications) {
          if (period.received.has(publication.seq) || publication.sent < period.from || publication.answered >= lastReceivedSent) continue;
          if (period.gaps.some((at) => at >= publication.sent)) continue;
          figures.unsignalledLosses++;
          if (figures.unsignalledLosses <= 5) figures.violations.push(`client ${client.index}: publication ${publication.seq} on ${client.plain} missed with no gap signalled`);
        }
      }
    }
  }
  if (figures.duplicates > 0) figures.violations.push(`${figures.duplicates} duplicate(s) on topics with history`);
  if (figures.disorder > 0) figures.violations.push(`${figures.disorder} out-of-order or skipped publication(s) on topics with history`);

  admin.disconnect();
  await Promise.all(nodes.map((herald) => herald.close()));
  await Promise.all([redis.stop(), nats.stop()]);
  return figures;
}

async function untilReady(herald: Herald): Promise<void> {
  const until = Date.now() + 30_000;
  while (internals(herald).broker.state !== 'ready') {
    if (Date.now() > until) throw new Error(`node ${herald.nodeId} not ready after 30 s (broker ${internals(herald).broker.state})`);
    await pause(50);
  }
}

/** The figures as lines of text. */
export function describeFigures(f: SoakFigures): string {
  return [
    `duration                 ${f.seconds} s`,
    `publications             ${f.publications.acknowledged} acknowledged (200), ${f.publications.refused} refused (503 or cut off)`,
    `worst publish answer     ${f.publications.worstAnswerMs} ms`,
    `SDK recoveries           ${f.recoveries}`,
    `faults                   ${f.faults.clientDrops} client drops, ${f.faults.subscriberCuts} subscriber-link cuts, ${f.faults.redisRestarts} Redis restarts, ${f.faults.natsRestarts} NATS restarts`,
    `gaps signalled           ${f.gapsSignalled} (topics without history)`,
    `lost / duplicate / disorder on history topics   ${f.lost} / ${f.duplicates} / ${f.disorder}`,
    `unsignalled losses on topics without history    ${f.unsignalledLosses}`,
    `verdict                  ${f.violations.length === 0 ? 'PASS' : `FAIL (${f.violations.length} violation(s))`}`,
    ...f.violations.slice(0, 20).map((v) => `  - ${v}`),
    ...(f.anomalies.length > 0 ? ['what happened (offsets [connection time], > marks the anomaly; times from the start):', ...f.anomalies] : []),
  ].join('\n');
}
