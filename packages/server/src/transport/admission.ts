import type { IncomingMessage } from 'node:http';
import type { IpcMessage } from '../broker/ipc.js';
import type { Refusal } from './transport.js';

export type { Refusal } from './transport.js';
import type { Admission } from '../herald.js';

export type { Admission };
import type { ClientAddress, ClientAddressResolver } from '../util/client-address.js';
import { TokenBucket } from '../util/token-bucket.js';


export interface AdmissionLimits {
  /** Connections one client address may hold. */
  maxConnectionsPerIp: number;
  /** New connections per second on the node (burst twice that). */
  connectionsPerSecond: number;
  /** New connections per second from one address (burst twice that). */
  connectionsPerSecondPerIp: number;
}

interface AddressState {
  connections: number;
  bucket: TokenBucket;
  used: number;
}

/** The admission of one process: `herald serve` alone, or the primary of `--workers` on behalf of all its workers. */
export class LocalAdmission implements Admission {
  private readonly addresses = new Map<string, AddressState>();
  private readonly nodeBucket: TokenBucket;
  private lastSweep = Date.now();

  constructor(private readonly limits: AdmissionLimits) {
    this.nodeBucket = new TokenBucket(limits.connectionsPerSecond, limits.connectionsPerSecond * 2);
  }

  admit(ip: string): Refusal | null {
    const now = Date.now();
    this.sweep(now);
    let state = this.addresses.get(ip);
    if (!state) {
      state = { connections: 0, bucket: new TokenBucket(this.limits.connectionsPerSecondPerIp, this.limits.connectionsPerSecondPerIp * 2, now), used: now };
      this.addresses.set(ip, state);
    }
    state.used = now;
    const limit = this.limits.maxConnectionsPerIp;
    if (state.connections >= limit) {
      return { status: 429, code: 'rate_limited', message: `too many connections from ${ip} (limit ${limit})`, headers: { 'Retry-After': '10' } };
    }
    if (!state.bucket.take(now)) {
      return { status: 429, code: 'rate_limited', message: `too many new connections from ${ip} (limit ${this.limits.connectionsPerSecondPerIp} per second)`, headers: { 'Retry-After': '1' } };
    }
    if (!this.nodeBucket.take(now)) {
      return { status: 503, code: 'unavailable', message: 'too many new connections: retry shortly', headers: { 'Retry-After': '1' } };
    }
    state.connections++;
    return null;
  }

  release(ip: string): void {
    const state = this.addresses.get(ip);
    if (state && state.connections > 0) state.connections--;
  }

  /** Connections an address holds now. */
  connectionsOf(ip: string): number {
    return this.addresses.get(ip)?.connections ?? 0;
  }

  /** Forgets addresses with no connection whose bucket has refilled (so the map does not grow with every address ever seen). */
  private sweep(now: number): void {
    if (this.addresses.size < 1024 || now - this.lastSweep < 1000) return;
    this.lastSweep = now;
    const refill = 3000; // a bucket holds two seconds of its rate: full again after 2 s without use
    for (const [ip, state] of this.addresses) {
      if (state.connections === 0 && now - state.used > refill) this.addresses.delete(ip);
    }
  }
}

/**
 * The admission of a worker of `herald serve --workers N`: the primary owns
 * the counts and buckets (a LocalAdmission for the whole machine), so that
 * the limits hold for the node, not once per worker. Each admission is one
 * IPC round trip; without an answer within `timeout` the upgrade is refused
 * with 503.
 */
export class IpcAdmission implements Admission {
  private seq = 0;
  private readonly waiting = new Map<number, (refusal: Refusal | null) => void>();

  constructor(
    private readonly nodeId: string,
    private readonly timeout = 2_000,
  ) {
    process.on('message', this.receive);
  }

  private readonly receive = (message: unknown): void => {
    const m = message as IpcMessage;
    if (typeof m !== 'object' || m === null || m.herald !== 'admitted' || m.node !== this.nodeId) return;
    const done = this.waiting.get(m.id);
    if (!done) {
      // Answered after the timeout refused it: give the slot back.
      if (m.refusal === null) this.send({ herald: 'release', node: this.nodeId, ip: m.ip });
      return;
    }
    this.waiting.delete(m.id);
    done(m.refusal);
  };

  /** Best effort: false when the primary is gone. A channel that closes meanwhile drops the message (the callback takes the error, nothing is thrown). */
  private send(message: IpcMessage): boolean {
    if (!process.connected || !process.send) return false;
    process.send(message, undefined, undefined, ignoreClosedChannel);
    return true;
  }

  admit(ip: string): Promise<Refusal | null> {
    const id = ++this.seq;
    const unavailable: Refusal = { status: 503, code: 'unavailable', message: 'the primary process does not answer: retry shortly', headers: { 'Retry-After': '1' } };
    if (!this.send({ herald: 'admit', node: this.nodeId, id, ip })) return Promise.resolve(unavailable);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(unavailable);
      }, this.timeout);
      timer.unref();
      this.waiting.set(id, (refusal) => {
        clearTimeout(timer);
        resolve(refusal);
      });
    });
  }

  release(ip: string): void {
    this.send({ herald: 'release', node: this.nodeId, ip });
  }

  close(): void {
    process.off('message', this.receive);
  }
}

/**
 * The primary's side: answers its workers' admissions from one LocalAdmission
 * and remembers which worker holds which slots, so that a worker that dies
 * gives them back.
 */
export class AdmissionAuthority {
  private readonly admission: LocalAdmission;
  private readonly held = new Map<unknown, Map<string, number>>();

  constructor(limits: AdmissionLimits) {
    this.admission = new LocalAdmission(limits);
  }

  /** Handles an admission message from `worker`; true when it was one. `reply` sends the answer back to that worker. */
  handle(worker: unknown, message: IpcMessage, reply: (message: IpcMessage) => void): boolean {
    if (message.herald === 'admit') {
      const refusal = this.admission.admit(message.ip);
      if (refusal === null) {
        let slots = this.held.get(worker);
        if (!slots) this.held.set(worker, (slots = new Map()));
        slots.set(message.ip, (slots.get(message.ip) ?? 0) + 1);
      }
      reply({ herald: 'admitted', node: message.node, id: message.id, ip: message.ip, refusal });
      return true;
    }
    if (message.herald === 'release') {
      const slots = this.held.get(worker);
      const count = slots?.get(message.ip) ?? 0;
      if (count > 0) {
        this.admission.release(message.ip);
        if (count === 1) slots!.delete(message.ip);
        else slots!.set(message.ip, count - 1);
      }
      return true;
    }
    return false;
  }

  /** A worker is gone: every slot it held is free again. */
  forget(worker: unknown): void {
    for (const [ip, count] of this.held.get(worker) ?? []) for (let i = 0; i < count; i++) this.admission.release(ip);
    this.held.delete(worker);
  }
}

/**
 * The gate of every connection request, whatever its transport: the origin
 * against `allowedOrigins`, then the `Admission` counts of the client's
 * address (read once per request through trustProxy / proxyHeader). An
 * admitted request holds its address's slot until `release`.
 */
export class ConnectionGate {
  private readonly clients = new WeakMap<IncomingMessage, ClientAddress>();

  constructor(
    private readonly admission: Admission,
    private readonly clientAddress: ClientAddressResolver,
    private readonly allowedOrigins: readonly string[],
  ) {}

  /** The client's address (trustProxy and proxyHeader decide which hop), read once per request. */
  clientIp(request: IncomingMessage): string {
    let client = this.clients.get(request);
    if (!client) this.clients.set(request, (client = this.clientAddress(request)));
    return client.address;
  }

  /** null admits the request and holds its slot; a refusal says why not (403 for an origin, 429/503 for the counts). */
  admit(request: IncomingMessage): Refusal | null | Promise<Refusal | null> {
    const origin = request.headers.origin;
    if (this.allowedOrigins.length > 0 && origin !== undefined && !this.allowedOrigins.includes(origin)) {
      return { status: 403, code: 'forbidden', message: `origin ${origin} is not allowed` };
    }
    return this.admission.admit(this.clientIp(request));
  }

  /** Gives back the slot of an admitted request that did not become a connection. */
  release(request: IncomingMessage): void {
    this.admission.release(this.clientIp(request));
  }

  /** Gives back the slot of a connection that closed. */
  releaseAddress(ip: string): void {
    this.admission.release(ip);
  }
}

/** A send on an IPC channel that closed meanwhile fails through its callback; without one, the process would get an unhandled 'error'. */
function ignoreClosedChannel(): void {}
