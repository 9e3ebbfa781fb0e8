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
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const between = (min: number, max: number) => min + Math.random() * (max - min);

const HISTORY_TOPICS = ['h:1', 'h:2', 'h:3'];

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
  };
  const acked = new Map<string, Set<number>>(HISTORY_TOPICS.map((topic) => [topic, new Set()]));
  /** Plain topics: each acknowledged publication's sequence number, with when it was sent and answered. */
  const plainAcked = new Map<string, Array<{ seq: number; sent: number; answered: number; via?: number | undefined }>>(plainTopics.map(({ topic }) => [topic, []]));
  let seq = 0;
  let running = true;

  const answered = (topic: string, message: { seq: number }, sent: number, result: { offset?: number; via?: number } | null) => {
    const ms = Date.now() - sent;
    figures.publications.worstAnswerMs = Math.max(figures.publications.worstAnswerMs, ms);
    if (!result) {
      figures.publications.refused++;
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
        const body = (await response.json()) as { offset?: number };
        answered(topic, message, sent, response.status === 200 ? { ...body, via: node.port } : null);
      } catch {
        answered(topic, message, sent, null);
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
        const frame = JSON.parse(data.toString()) as { id?: number; ok?: boolean; offset?: number };
        const entry = frame.id === undefined ? undefined : pending.get(frame.id);
        if (!entry) return;
        pending.delete(frame.id!);
        answered(entry.topic, entry.message, entry.sent, frame.ok ? { ...frame, via: node.port } : null);
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
      for (const entry of pending.values()) answered(entry.topic, entry.message, entry.sent, null);
    }
  };

  // SDK clients: each on one history topic and one topic without history, on nodes chosen at random per connection.
  const clients = Array.from({ length: options.clients ?? 12 }, (_, index) => {
    const historyTopic = HISTORY_TOPICS[index % HISTORY_TOPICS.length]!;
    const plain = plainTopics[index % plainTopics.length]!;
    let socket: WebSocket | null = null;
    class RandomNode extends WebSocket {
      constructor(_url: string | URL, protocols?: string | string[]) {
        super(wsUrl(pick(plain.nodes)), protocols);
        socket = this;
      }
    }
    const client = new HeraldClient({ url: 'ws://unused/ws', WebSocket: RandomNode as never, minReconnectDelay: 50, maxReconnectDelay: 500, requestTimeout: 5000, pingInterval: 5000, pingTimeout: 5000 });
    const history = client.subscribe(historyTopic);
    const plainSubscription = client.subscribe(plain.topic);
    const emitted: number[] = [];
    const periods: Period[] = [];
    let open: Period | null = null;
    history.on('message', ({ context }) => emitted.push(context.offset!));
    history.on('subscribed', (event) => {
      if (event.recovered) figures.recoveries++;
      if (event.recovered === false) figures.violations.push(`client ${index}: recovery on ${historyTopic} failed (${event.reason})`);
    });
    history.on('gap', ({ reason }) => figures.violations.push(`client ${index}: gap (${reason}) on ${historyTopic}, which has history`));
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
    client.on('disconnected', () => {
      if (open) open.to = Date.now();
      open = null;
    });
    client.connect();
    const drop = () => {
      // The subscription ends when the test cuts the socket, not when the client notices.
      if (open) open.to = Date.now();
      open = null;
      socket?.terminate();
    };
    return { index, client, historyTopic, plain: plain.topic, emitted, periods, drop, close: () => client.close() };
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
      if (kind === 'cut') {
        await admin.client('KILL', 'TYPE', 'pubsub').catch(() => 0);
        figures.faults.subscriberCuts++;
        log(`fault: Redis subscriber links cut`);
      } else if (kind === 'redis') {
        await redis.stop();
        await pause(between(200, 1000));
        await redis.start();
        figures.faults.redisRestarts++;
        log(`fault: Redis killed and restarted`);
      } else {
        await nats.stop();
        await pause(between(200, 1000));
        await nats.start();
        figures.faults.natsRestarts++;
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

  // The verdict.
  for (const client of clients) {
    const expected = acked.get(client.historyTopic)!;
    const seen = new Set<number>();
    let previous = 0;
    for (const offset of client.emitted) {
      if (seen.has(offset)) figures.duplicates++;
      else if (offset !== previous + 1 && previous !== 0) figures.disorder++;
      seen.add(offset);
      previous = offset;
    }
    const first = client.emitted[0] ?? Infinity;
    const missing = [...expected].filter((offset) => offset >= first && !seen.has(offset));
    figures.lost += missing.length;
    if (client.emitted.length === 0) figures.violations.push(`client ${client.index}: emitted nothing on ${client.historyTopic}`);
    if (missing.length > 0) figures.violations.push(`client ${client.index}: ${missing.length} acknowledged publication(s) on ${client.historyTopic} never emitted (${missing.slice(0, 5).join(', ')}…)`);
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
  ].join('\n');
}
