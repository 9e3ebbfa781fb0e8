import type { Herald } from '../../src/index.js';
import { internals } from './internals.js';
import type { Connection, SoakClient } from './soak-clients.js';
import type { Emission, Fault, Refusal } from './soak-verdict.js';

/** What the descriptions of the soak's anomalies draw on. */
export interface SoakRecord {
  started: number;
  nodes: ReadonlyArray<{ herald: Herald; name: string }>;
  /** A node with the topics' Redis history, to read the store. */
  reader: Herald;
  ackedOffsets(topic: string): ReadonlySet<number>;
  refusals: readonly Refusal[];
  faults: readonly Fault[];
}

/**
 * What happened around an anomaly on a topic with history, in words: the
 * offsets around it, the fate of the skipped ones, the client's connections
 * and subscribe replies, the faults and refused publishes of the moment.
 */
export class SoakDescriber {
  constructor(private readonly record: SoakRecord) {}

  private at(time: number): string {
    return `+${((time - this.record.started) / 1000).toFixed(3)}s`;
  }

  connection(connection: Connection | undefined, n: number): string {
    if (!connection) return `connection #${n} (unknown)`;
    const reply = connection.reply;
    const since = connection.since ? `since ${connection.since.offset}@${connection.since.epoch}` : 'no since';
    const answer = reply
      ? `reply ${this.at(reply.at)} ${reply.recovered === undefined ? 'plain' : `recovered=${reply.recovered}${reply.reason ? ` (${reply.reason})` : ''}`} position ${reply.position ? `${reply.position.offset}@${reply.position.epoch}` : 'none'}`
      : 'no subscribe reply';
    const closed = connection.closed ? `, closed ${this.at(connection.closed.at)} (${connection.closed.why})` : '';
    return `connection #${n} to node ${connection.node}: opened ${this.at(connection.opened)}, connected ${connection.connected ? this.at(connection.connected) : 'never'} (${since}), ${answer}${closed}`;
  }

  private faultsAround(from: number, to: number): string[] {
    return this.record.faults.filter((fault) => fault.to >= from && fault.from <= to).map((fault) => `  fault ${this.at(fault.from)}..${this.at(fault.to)}: ${fault.label}`);
  }

  /** An anomaly at emissions[i] of a stream (`what`: whose, e.g. "client 3 on h:1"). */
  async anomaly(client: SoakClient, topic: string, emissions: readonly Emission[], i: number, kind: string, what: string): Promise<string> {
    const here = emissions[i]!;
    const before = emissions[i - 1] ?? here;
    const window = emissions.slice(Math.max(0, i - 4), i + 4).map((e, k) => {
      const j = Math.max(0, i - 4) + k;
      const epochNote = j === 0 || emissions[j - 1]!.epoch !== e.epoch ? `@${e.epoch}` : '';
      return `${j === i ? '>' : ''}${e.offset}${epochNote}[#${e.connection} ${this.at(e.at)}]`;
    });
    const lines = [`${what}: ${kind} at emission ${i}: ${window.join(' ')}`];
    if (here.epoch === before.epoch && here.offset > before.offset + 1) {
      const skipped = [];
      for (let offset = before.offset + 1; offset < here.offset && skipped.length < 3; offset++) {
        const later = emissions.findIndex((e, j) => j > i && e.epoch === here.epoch && e.offset === offset);
        let stored = 'not in the store';
        try {
          const page = await this.record.reader.historyOf(topic, { since: { offset: offset - 1, epoch: here.epoch }, limit: 1 });
          const entry = page.publications[0];
          if (entry?.offset === offset) stored = `in the store (appended ${this.at(entry.time)})`;
        } catch (err) {
          stored = `store unreadable (${(err as Error).message})`;
        }
        skipped.push(`${offset}: ${this.record.ackedOffsets(topic).has(offset) ? 'acknowledged' : 'not acknowledged'}, ${stored}, ${later === -1 ? 'never emitted' : `emitted later (emission ${later})`}`);
      }
      lines.push(`  skipped ${here.offset - before.offset - 1}: ${skipped.join('; ')}`);
    }
    for (const n of new Set([before.connection, here.connection])) lines.push(`  ${this.connection(client.connections[n], n)}`);
    const from = before.at - 5000;
    const to = here.at + 1000;
    lines.push(...this.faultsAround(from, to));
    const refused = this.record.refusals.filter((r) => r.topic === topic && r.answered >= from && r.sent <= to);
    if (refused.length > 0) lines.push(`  ${refused.length} publish(es) on ${topic} refused meanwhile: ${refused.slice(0, 4).map((r) => `${this.at(r.sent)}..${this.at(r.answered)} via ${r.node} (${r.why.trim()})`).join(', ')}`);
    return lines.join('\n');
  }

  /** Acknowledged publications a stream never emitted: where it stopped or jumped, and the state the client ended in. */
  loss(client: SoakClient, topic: string, emissions: readonly Emission[], missing: readonly number[], what: string): string {
    const firstMissing = missing[0]!;
    const after = emissions.findIndex((e) => e.offset > firstMissing);
    const last = emissions.at(-1);
    const subscription = client.client.subscription(topic);
    const lines = [
      `${what}: ${missing.length} acknowledged never emitted, ${missing[0]}..${missing.at(-1)}; ` +
        (after === -1 ? `its stream stopped at ${last ? `${last.offset} (${this.at(last.at)}, connection #${last.connection})` : 'nothing'}` : `it jumped to ${emissions[after]!.offset} at emission ${after}`) +
        `; at the end: client ${client.client.state}, subscription ${subscription?.state}, position ${JSON.stringify(subscription?.position)}`,
    ];
    const { connections } = client;
    for (const n of new Set([last?.connection ?? 0, connections.length - 1])) lines.push(`  ${this.connection(connections[n], n)}`);
    const streams = this.record.nodes.map(({ herald, name }) => {
      const stream = internals(herald).liveStream(topic);
      const where = stream ? `${stream.offset}@${stream.epoch ?? '-'}${stream.catchingUp ? ' (catching up)' : ''}` : 'not followed';
      return `${name} ${where}, ${internals(herald).hub.subscriberCount(topic)} subscriber(s)`;
    });
    lines.push(`  the nodes' streams of ${topic} at the end: ${streams.join('; ')}`);
    lines.push(...this.faultsAround((last?.at ?? this.record.started) - 5000, Infinity));
    return lines.join('\n');
  }
}
