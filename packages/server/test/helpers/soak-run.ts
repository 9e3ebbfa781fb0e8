import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { createHerald, type Herald, type HeraldOptions } from '../../src/index.js';
import { NatsServer, RedisServer } from './servers.js';
import { internals } from './internals.js';
import { SoakClient } from './soak-clients.js';
import { SoakDescriber } from './soak-describe.js';
import { ANSWER_MARGIN_MS, DELIVERY_MARGIN_MS, judgePeriod, judgeStream, type Ack, type Fault, type FaultScope, type Refusal } from './soak-verdict.js';

/**
 * The soak: two nodes on Redis and one on NATS (with history in Redis), a
 * fourth on Redis keeping history in its memory, HTTP and WebSocket
 * publishers, SDK clients that drop and recover at random, and faults
 * (Redis and NATS killed and restarted, Redis subscriber links cut). At the
 * end every SDK client's emitted streams are judged against what was
 * acknowledged (soak-verdict.ts): on topics with history, every acknowledged
 * offset once, in order, for the whole run and for each fresh (plain)
 * subscribe; on topics without shared history, every acknowledged
 * publication a subscription missed is reported by a `gap` of the fault that
 * lost it, and none arrives twice; the memory-history node's recoveries
 * answer `not_shared`; every publish is answered, within publishTimeout
 * plus ANSWER_MARGIN_MS. Used by `npm run soak` (scripts/soak.mjs) and, 30 s
 * long, by soak.test.ts.
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
  publications: {
    acknowledged: number;
    refused: number;
    /** WebSocket publishes that never got a reply. */
    unanswered: number;
    /** Refused publications that a client received all the same (allowed: a 503 means "not known to be published"). */
    refusedDelivered: number;
    worstAnswerMs: number;
    /** Answers that took longer than `answerLimitMs`. */
    slowAnswers: number;
    answerLimitMs: number;
  };
  recoveries: number;
  /** Fresh subscribes to topics with history (no position), each judged. */
  freshSubscribes: number;
  /** Recoveries on the memory-history node answered `not_shared`. */
  notShared: number;
  faults: { clientDrops: number; subscriberCuts: number; redisRestarts: number; natsRestarts: number };
  gapsSignalled: number;
  duplicates: number;
  disorder: number;
  lost: number;
  /** Copies beyond the first on topics without shared history. */
  plainDuplicates: number;
  unsignalledLosses: number;
  /** Of those, the ones lost just before their subscription ended (no later publication revealed them). */
  lossesBeforeDrop: number;
  violations: string[];
  /** For each anomaly on a topic with history: what happened around it (see SoakDescriber). */
  anomalies: string[];
}

/** The soak's nodes answer a publish within this (a short publishTimeout, so that a slow answer is seen). */
export const SOAK_PUBLISH_TIMEOUT = 2000;
const MAX_ANOMALIES = 10;
const MAX_LISTED = 5;
const HISTORY_TOPICS = ['h:1', 'h:2', 'h:3'];

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
const between = (min: number, max: number) => min + Math.random() * (max - min);
const wsUrl = (herald: Herald) => `${herald.url.replace('http', 'ws')}/ws`;

interface TopicPlan {
  topic: string;
  kind: 'history' | 'plain' | 'memory';
  /** The nodes that may publish it (those whose broker carries it to its subscribers). */
  via: Herald[];
  scope: FaultScope;
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
    publishTimeout: SOAK_PUBLISH_TIMEOUT,
    redis: { url: redis.url, prefix: 'soak:' },
  };
  const heralds: Herald[] = await Promise.all([
    createHerald({ ...base, broker: 'redis' }),
    createHerald({ ...base, broker: 'redis' }),
    createHerald({ ...base, broker: 'nats', historyStore: 'redis', nats: { url: nats.url, prefix: 'soak.' } }),
    // History of m:* in this process's memory, while a and b publish m:1 too: it can never vouch for a recovery.
    createHerald({ ...base, broker: 'redis', historyStore: 'memory', history: [{ pattern: 'm:*', size: 100_000, ttl: 3_600_000 }] }),
  ]);
  const [a, b, c, d] = heralds as [Herald, Herald, Herald, Herald];
  const names = new Map(heralds.map((herald, i) => [herald, 'abcd'[i]!]));
  const plan: TopicPlan[] = [
    ...HISTORY_TOPICS.map((topic): TopicPlan => ({ topic, kind: 'history', via: [a, b, c], scope: 'redis' })),
    { topic: 'p:redis', kind: 'plain', via: [a, b, d], scope: 'redis' },
    { topic: 'p:nats', kind: 'plain', via: [c], scope: 'nats' },
    { topic: 'm:1', kind: 'memory', via: [a, b, d], scope: 'redis' },
  ];
  const scopeOf = new Map(plan.map((p) => [p.topic, p.scope]));
  await Promise.all(heralds.map((herald) => untilReady(herald)));

  const figures: SoakFigures = {
    seconds: options.seconds,
    publications: { acknowledged: 0, refused: 0, unanswered: 0, refusedDelivered: 0, worstAnswerMs: 0, slowAnswers: 0, answerLimitMs: SOAK_PUBLISH_TIMEOUT + ANSWER_MARGIN_MS },
    recoveries: 0,
    freshSubscribes: 0,
    notShared: 0,
    faults: { clientDrops: 0, subscriberCuts: 0, redisRestarts: 0, natsRestarts: 0 },
    gapsSignalled: 0,
    duplicates: 0,
    disorder: 0,
    lost: 0,
    plainDuplicates: 0,
    unsignalledLosses: 0,
    lossesBeforeDrop: 0,
    violations: [],
    anomalies: [],
  };
  const started = Date.now();
  const at = (time: number) => `+${((time - started) / 1000).toFixed(3)}s`;
  const faults: Fault[] = [];
  const acks: Ack[] = [];
  const refusals: Refusal[] = [];
  let seq = 0;
  let running = true;

  const answered = (topic: string, message: { seq: number }, sent: number, node: Herald, result: { offset?: number; epoch?: string } | null, why = '') => {
    const now = Date.now();
    const ms = now - sent;
    figures.publications.worstAnswerMs = Math.max(figures.publications.worstAnswerMs, ms);
    if (ms > figures.publications.answerLimitMs && ++figures.publications.slowAnswers <= MAX_LISTED) {
      figures.violations.push(`publish ${message.seq} on ${topic} via ${names.get(node)} sent ${at(sent)} answered after ${ms} ms (${result ? '200' : why.trim()}), over publishTimeout ${SOAK_PUBLISH_TIMEOUT} + ${ANSWER_MARGIN_MS} ms`);
    }
    if (!result) {
      figures.publications.refused++;
      refusals.push({ topic, seq: message.seq, sent, answered: now, node: names.get(node)!, why });
      return;
    }
    figures.publications.acknowledged++;
    acks.push({ topic, seq: message.seq, offset: result.offset, epoch: result.epoch, sent, answered: now, node: names.get(node)! });
  };
  /** A topic to publish (70 % with history), through `node` or a node that may publish it. */
  const target = (node?: Herald): { topic: string; node: Herald } => {
    const choices = node ? plan.filter((p) => p.via.includes(node)) : plan;
    const history = choices.filter((p) => p.kind === 'history');
    const others = choices.filter((p) => p.kind !== 'history');
    const chosen = history.length > 0 && (others.length === 0 || Math.random() < 0.7) ? pick(history) : pick(others);
    return { topic: chosen.topic, node: node ?? pick(chosen.via) };
  };

  // HTTP publisher: one request at a time per lane, several lanes.
  const httpLane = async () => {
    while (running) {
      const { topic, node } = target();
      const message = { seq: ++seq };
      const sent = Date.now();
      try {
        const response = await fetch(`${node.url}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, message }) });
        const body = (await response.json()) as { offset?: number; epoch?: string; error?: { code?: string } };
        answered(topic, message, sent, node, response.status === 200 ? body : null, `HTTP ${response.status} ${body.error?.code ?? ''}`);
      } catch (err) {
        answered(topic, message, sent, node, null, `HTTP ${(err as Error).message}`);
      }
      await pause(1000 / (rate / 6));
    }
  };
  // WebSocket publisher: a raw client per lane that publishes with ids; every publish it sent must be answered.
  const wsLane = async () => {
    while (running) {
      const node = pick(heralds);
      const ws = new WebSocket(wsUrl(node));
      ws.on('error', () => {});
      const pending = new Map<number, { topic: string; message: { seq: number }; sent: number }>();
      let allAnswered: (() => void) | null = null;
      ws.on('message', (data) => {
        const frame = JSON.parse(data.toString()) as { id?: number; ok?: boolean; offset?: number; epoch?: string; error?: { code?: string } };
        const entry = frame.id === undefined ? undefined : pending.get(frame.id);
        if (!entry) return;
        pending.delete(frame.id!);
        answered(entry.topic, entry.message, entry.sent, node, frame.ok ? frame : null, `WS ${frame.error?.code ?? ''}`);
        if (pending.size === 0) allAnswered?.();
      });
      const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
      const opened = await Promise.race([new Promise<boolean>((resolve) => ws.once('open', () => resolve(true))), closed.then(() => false)]);
      let id = 0;
      while (opened && running && ws.readyState === WebSocket.OPEN) {
        const { topic } = target(node);
        const message = { seq: ++seq };
        pending.set(++id, { topic, message, sent: Date.now() });
        ws.send(JSON.stringify({ id, action: 'publish', topic, message }));
        await pause(1000 / (rate / 6));
      }
      // Every publish sent is answered, within the answer limit: wait for the answers before closing.
      if (pending.size > 0) {
        const answers = new Promise<void>((resolve) => (allAnswered = resolve));
        await Promise.race([answers, closed, pause(figures.publications.answerLimitMs)]);
      }
      ws.close();
      await closed;
      for (const entry of pending.values()) {
        figures.publications.unanswered++;
        refusals.push({ topic: entry.topic, seq: entry.message.seq, sent: entry.sent, answered: Date.now(), node: names.get(node)!, why: 'WS never answered' });
        if (figures.publications.unanswered <= MAX_LISTED) figures.violations.push(`WebSocket publish ${entry.message.seq} on ${entry.topic} via ${names.get(node)}, sent ${at(entry.sent)}, never answered`);
      }
    }
  };

  // SDK clients. Three of every four: a topic with history for the whole run, another subscribed afresh again and again,
  // a topic without history, on a/b (Redis) or c (NATS). The fourth: on d, the memory-history topic and p:redis.
  const clients = Array.from({ length: options.clients ?? 12 }, (_, index) => {
    const memory = index % 4 === 3;
    const onNats = !memory && index % 2 === 1;
    const pool = memory ? [d] : onNats ? [c] : [a, b];
    return new SoakClient({
      index,
      started,
      pickNode: () => {
        const node = pick(pool);
        return { url: wsUrl(node), name: names.get(node)! };
      },
      historyTopic: memory ? undefined : HISTORY_TOPICS[index % HISTORY_TOPICS.length],
      freshTopic: memory ? undefined : HISTORY_TOPICS[(index + 1) % HISTORY_TOPICS.length],
      plainTopics: memory ? [{ topic: 'm:1', memoryHistory: true }, { topic: 'p:redis' }] : [{ topic: onNats ? 'p:nats' : 'p:redis' }],
    });
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
  const injectFaults = async () => {
    const kinds = ['cut', 'redis', 'cut', 'nats'] as const;
    for (let i = 0; running; i++) {
      await pause(between(2500, 4500));
      if (!running) break;
      const kind = kinds[i % kinds.length]!;
      const from = Date.now();
      let label: string;
      if (kind === 'cut') {
        await admin.client('KILL', 'TYPE', 'pubsub').catch(() => 0);
        figures.faults.subscriberCuts++;
        label = 'Redis subscriber links cut';
      } else {
        const server = kind === 'redis' ? redis : nats;
        await server.stop();
        await pause(between(200, 1000));
        await server.start();
        if (kind === 'redis') figures.faults.redisRestarts++;
        else figures.faults.natsRestarts++;
        label = `${kind === 'redis' ? 'Redis' : 'NATS'} killed and restarted`;
      }
      faults.push({ scope: kind === 'nats' ? 'nats' : 'redis', label, from, to: Date.now() });
      log(`fault: ${label}`);
    }
  };

  log(`soak: ${options.seconds} s, ~${rate} publications/s, ${clients.length} SDK clients, nodes ${heralds.map((n) => `${names.get(n)} ${internals(n).broker.name}`).join(', ')}`);
  const isRunning = () => running;
  const workers = [httpLane(), httpLane(), httpLane(), wsLane(), wsLane(), wsLane(), dropper(), injectFaults(), ...clients.map((client) => client.rotate(isRunning))];
  await pause(options.seconds * 1000);
  running = false;
  await Promise.all(workers);
  // Settle: every node ready again, every stream caught up with the last acknowledged offset, then the margin.
  await Promise.all(heralds.map((herald) => untilReady(herald)));
  const lastOffset = (topic: string) => Math.max(0, ...acks.filter((ack) => ack.topic === topic).map((ack) => ack.offset ?? 0));
  const settleBy = Date.now() + 30_000;
  for (const client of clients) {
    const { historyTopic, freshTopic } = client.options;
    if (historyTopic) while ((client.emissions.at(-1)?.offset ?? 0) < lastOffset(historyTopic) && Date.now() < settleBy) await pause(50);
    const fresh = client.incarnations.at(-1);
    if (freshTopic && fresh?.reply) while ((fresh.emissions.at(-1)?.offset ?? fresh.reply.position?.offset ?? 0) < lastOffset(freshTopic) && Date.now() < settleBy) await pause(50);
  }
  await pause(DELIVERY_MARGIN_MS + 200);
  for (const client of clients) client.close();

  await judge(figures, clients, acks, refusals, faults, scopeOf, new SoakDescriber({ started, nodes: heralds.map((herald) => ({ herald, name: names.get(herald)! })), reader: a, ackedOffsets: (topic) => new Set(acks.filter((ack) => ack.topic === topic).map((ack) => ack.offset!)), refusals, faults }));
  admin.disconnect();
  await Promise.all(heralds.map((herald) => herald.close()));
  await Promise.all([redis.stop(), nats.stop()]);
  return figures;
}

/** The verdict over every client's streams (soak-verdict.ts), into `figures`. */
async function judge(figures: SoakFigures, clients: readonly SoakClient[], acks: readonly Ack[], refusals: readonly Refusal[], faults: readonly Fault[], scopeOf: ReadonlyMap<string, FaultScope>, describe: SoakDescriber): Promise<void> {
  const acksOf = new Map<string, Ack[]>();
  for (const ack of acks) (acksOf.get(ack.topic) ?? acksOf.set(ack.topic, []).get(ack.topic)!).push(ack);
  const refused = new Set(refusals.map((refusal) => refusal.seq));
  const delivered = new Set<number>();
  const { violations, anomalies } = figures;
  for (const client of clients) {
    violations.push(...client.problems.slice(0, MAX_LISTED));
    figures.recoveries += client.recoveries;
    const { historyTopic } = client.options;
    const streams = historyTopic ? [{ what: `client ${client.index} on ${historyTopic}`, topic: historyTopic, emissions: client.emissions, start: client.firstReply?.position, ended: Infinity }] : [];
    for (const [n, incarnation] of client.incarnations.entries()) {
      // Judged from its reply's position on; one that got none (ended first, or the store was unreadable) owes nothing.
      if (!incarnation.reply?.position) continue;
      figures.freshSubscribes++;
      // A connection cut after the last confirmation ends what is owed: the application unsubscribed before the
      // SDK was back on the topic (its recovery would have brought the rest).
      const confirmed = incarnation.confirmed ?? incarnation.reply.at;
      const cut = client.connections.map((connection) => connection.closed?.at ?? Infinity).filter((at) => at > confirmed && at < incarnation.ended);
      const ended = Math.min(incarnation.ended, ...cut);
      streams.push({ what: `client ${client.index} on ${incarnation.topic}, fresh subscribe #${n}`, topic: incarnation.topic, emissions: incarnation.emissions, start: incarnation.reply.position, ended });
    }
    if (historyTopic && client.emissions.length === 0) violations.push(`client ${client.index}: emitted nothing on ${historyTopic}`);
    for (const stream of streams) {
      for (const emission of stream.emissions) delivered.add(emission.seq);
      const verdict = judgeStream(stream.emissions, acksOf.get(stream.topic) ?? [], stream.start, stream.ended);
      figures.duplicates += verdict.duplicates.length;
      figures.disorder += verdict.disorder.length;
      figures.lost += verdict.missing.length;
      for (const i of verdict.duplicateAt) if (anomalies.length < MAX_ANOMALIES) anomalies.push(await describe.anomaly(client, stream.topic, stream.emissions, i, 'duplicate', stream.what));
      for (const { index, kind } of verdict.disorder) if (anomalies.length < MAX_ANOMALIES) anomalies.push(await describe.anomaly(client, stream.topic, stream.emissions, index, kind, stream.what));
      if (verdict.missing.length > 0) {
        violations.push(`${stream.what}: ${verdict.missing.length} acknowledged publication(s) never emitted (${verdict.missing.slice(0, 5).join(', ')}…)`);
        if (anomalies.length < MAX_ANOMALIES) anomalies.push(describe.loss(client, stream.topic, stream.emissions, verdict.missing, stream.what));
      }
    }
    for (const follow of client.plain) {
      figures.notShared += follow.notShared;
      for (const [seq, copies] of follow.copies) {
        delivered.add(seq);
        if (copies > 1) {
          figures.plainDuplicates += copies - 1;
          if (figures.plainDuplicates <= MAX_LISTED) violations.push(`client ${client.index}: message ${seq} on ${follow.topic} received ${copies} times${refused.has(seq) ? ' (its publish was refused)' : ''}`);
        }
      }
      for (const period of follow.periods) {
        figures.gapsSignalled += period.gaps.length;
        const verdict = judgePeriod(period, acksOf.get(follow.topic) ?? [], faults, scopeOf.get(follow.topic)!);
        figures.lossesBeforeDrop += verdict.beforeEnd;
        for (const ack of verdict.unsignalled) {
          if (++figures.unsignalledLosses <= MAX_LISTED) {
            violations.push(`client ${client.index}: publication ${ack.seq} on ${follow.topic} (via ${ack.node}, answered +${((ack.answered - period.from) / 1000).toFixed(3)}s into a subscription of ${((period.to - period.from) / 1000).toFixed(3)}s) missed with no gap reporting it`);
          }
        }
      }
    }
  }
  for (const seq of delivered) if (refused.has(seq)) figures.publications.refusedDelivered++;
  if (figures.duplicates > 0) violations.push(`${figures.duplicates} duplicate(s) on topics with history`);
  if (figures.disorder > 0) violations.push(`${figures.disorder} out-of-order or skipped publication(s) on topics with history`);
  if (figures.unsignalledLosses > MAX_LISTED) violations.push(`${figures.unsignalledLosses} unsignalled losses on topics without shared history in all`);
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
  const p = f.publications;
  return [
    `duration                 ${f.seconds} s`,
    `publications             ${p.acknowledged} acknowledged (200), ${p.refused} refused (503 or error), ${p.unanswered} never answered; ${p.refusedDelivered} refused but delivered (allowed)`,
    `worst publish answer     ${p.worstAnswerMs} ms (limit ${p.answerLimitMs} ms: ${p.slowAnswers} over)`,
    `SDK recoveries           ${f.recoveries}; ${f.freshSubscribes} fresh subscribes judged; ${f.notShared} memory-history recoveries answered not_shared`,
    `faults                   ${f.faults.clientDrops} client drops, ${f.faults.subscriberCuts} subscriber-link cuts, ${f.faults.redisRestarts} Redis restarts, ${f.faults.natsRestarts} NATS restarts`,
    `gaps signalled           ${f.gapsSignalled} (topics without shared history)`,
    `lost / duplicate / disorder on history topics   ${f.lost} / ${f.duplicates} / ${f.disorder}`,
    `topics without shared history: duplicates ${f.plainDuplicates}, unsignalled losses ${f.unsignalledLosses} (${f.lossesBeforeDrop} just before a drop)`,
    `verdict                  ${f.violations.length === 0 ? 'PASS' : `FAIL (${f.violations.length} violation(s))`}`,
    ...f.violations.slice(0, 20).map((v) => `  - ${v}`),
    ...(f.anomalies.length > 0 ? ['what happened (offsets [connection time], > marks the anomaly; times from the start):', ...f.anomalies] : []),
  ].join('\n');
}
