// Review #13 harness: real redis-server/nats-server on free ports, Herald nodes in-process.
import WebSocket from 'ws';
import { createHerald } from '../packages/server/dist/src/index.js';
import { RedisServer, NatsServer } from '../packages/server/dist/test/helpers/servers.js';
import { internals } from '../packages/server/dist/test/helpers/internals.js';
export { RedisServer, NatsServer, internals, WebSocket };
export const pause = (ms) => new Promise((r) => setTimeout(r, ms));

export const baseOptions = (extra = {}) => ({
  port: 0, host: '127.0.0.1', log: { level: 'silent' }, demo: { enabled: false },
  limits: { maxConnectionsPerIp: 10000, connectionsPerSecond: 10000, connectionsPerSecondPerIp: 10000, commandsPerSecond: 100000, commandBurst: 100000, subscriptionsPerSecond: 10000, subscriptionBurst: 10000 },
  cluster: { heartbeatInterval: 500 },
  ...extra,
});
export async function node(options) { return createHerald(baseOptions(options)); }
export async function untilReady(h, ms = 30000) {
  const until = Date.now() + ms;
  while (internals(h).broker.state !== 'ready') { if (Date.now() > until) throw new Error('not ready'); await pause(20); }
}
export const wsUrl = (h) => `${h.url.replace('http', 'ws')}/ws`;

/** A raw JSON client: frames recorded, replies by id. */
export class Raw {
  constructor(url) {
    this.frames = []; this.pubs = []; this.gaps = []; this.replies = new Map(); this.waiters = new Map(); this.id = 0; this.closed = false;
    this.ws = new WebSocket(url);
    this.ws.on('error', () => {});
    this.ws.on('close', (code, reason) => { this.closed = true; this.closeCode = code; this.closeReason = reason; for (const w of this.waiters.values()) w(null); });
    this.ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      this.frames.push(f);
      if (f.id !== undefined) { this.replies.set(f.id, f); this.waiters.get(f.id)?.(f); this.waiters.delete(f.id); }
      else if (f.action === 'publish') this.pubs.push({ ...f, at: Date.now(), afterReply: this.lastReplyId });
      else if (f.action === 'gap') this.gaps.push({ ...f, at: Date.now() });
      this.onframe?.(f);
    });
    this.opened = new Promise((res) => { this.ws.once('open', () => res(true)); this.ws.once('close', () => res(false)); });
  }
  request(cmd, ms = 10000) {
    const id = ++this.id;
    return new Promise((res) => {
      const t = setTimeout(() => { this.waiters.delete(id); res({ timeout: true }); }, ms);
      this.waiters.set(id, (f) => { clearTimeout(t); res(f); });
      this.ws.send(JSON.stringify({ id, ...cmd }));
    });
  }
  close() { this.ws.close(); return new Promise((r) => (this.closed ? r() : this.ws.once('close', r))); }
  terminate() { this.ws.terminate(); }
}

/** HTTP publisher: `lanes` concurrent loops; acked offsets recorded. */
export function httpPublisher(nodesList, topicFn, { lanes = 8, perLaneDelay = 0, body = (seq) => ({ seq }) } = {}) {
  const state = { acked: [], refused: [], worstMs: 0, running: true, seq: 0 };
  const lane = async (k) => {
    while (state.running) {
      const h = nodesList[(k + state.seq) % nodesList.length];
      const topic = topicFn();
      const seq = ++state.seq;
      const sent = Date.now();
      try {
        const r = await fetch(`${h.url}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ topic, message: body(seq) }) });
        const b = await r.json();
        const ms = Date.now() - sent; state.worstMs = Math.max(state.worstMs, ms);
        if (r.status === 200) state.acked.push({ topic, seq, offset: b.offset, epoch: b.epoch, sent, at: Date.now(), via: h.port });
        else state.refused.push({ topic, seq, status: r.status, code: b.error?.code, sent, ms });
      } catch (e) { state.refused.push({ topic, seq, err: e.message, sent, ms: Date.now() - sent }); }
      if (perLaneDelay) await pause(perLaneDelay);
    }
  };
  state.done = Promise.all(Array.from({ length: lanes }, (_, k) => lane(k)));
  state.stop = async () => { state.running = false; await state.done; };
  return state;
}

/** WebSocket publisher: one raw connection per node, `window` publishes in flight each; acked offsets recorded. */
export function wsPublisher(nodesList, topicFn, { window = 16, body = (seq) => ({ seq }) } = {}) {
  const state = { acked: [], refused: [], worstMs: 0, running: true, seq: 0 };
  const lane = async (h) => {
    while (state.running) {
      let url; try { url = wsUrl(h); } catch { return; } // node closed
      const c = new Raw(url);
      if (!(await c.opened)) { await pause(100); continue; }
      const one = async () => {
        while (state.running && !c.closed) {
          const topic = topicFn(); const seq = ++state.seq; const sent = Date.now();
          const r = await c.request({ action: 'publish', topic, message: body(seq) }, 60000);
          const ms = Date.now() - sent; state.worstMs = Math.max(state.worstMs, ms);
          if (r?.ok) state.acked.push({ topic, seq, offset: r.offset, epoch: r.epoch, sent, at: Date.now(), via: h.port });
          else state.refused.push({ topic, seq, code: r?.error?.code ?? (r?.timeout ? 'timeout' : 'closed'), sent, ms });
        }
      };
      await Promise.all(Array.from({ length: window }, one));
      if (!c.closed) await c.close();
    }
  };
  state.done = Promise.all(nodesList.map(lane));
  state.stop = async () => { state.running = false; await state.done; };
  return state;
}
