import { randomUUID } from 'node:crypto';
import { isErrorCode } from '@herald/protocol';
import { z } from 'zod';
import type { HeraldConfig } from '../config.js';
import { HeraldError } from '../errors.js';
import type { Session } from '../hub/session.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/metrics.js';
import type { LhttpPublication } from '../publication.js';
import { ruleFor, topicMatches } from '../topics.js';
import { describeIssue } from '../util/zod.js';
import { callBackend, ProxyCallError, type CallObserver, type ProxyEndpoint, type ProxyKind } from './caller.js';

export { ProxyCallError, type ProxyKind } from './caller.js';

export interface ProxiesOptions {
  /** The `proxy` section of the configuration. */
  readonly config: HeraldConfig['proxy'];
  readonly metrics: Metrics;
  readonly log: Logger;
}

/** A subscribe proxy's answer for one topic that did not refuse it (a refusal rejects). */
export interface SubscribeVerdict {
  /** True: the backend allows it (Herald's permission rules are not asked); false: they decide. */
  readonly allowed: boolean;
  /** What presence shows of the connection on this topic; undefined: the connection's own info. */
  readonly info: unknown;
  /** A payload delivered to the connection before anything else of the topic; undefined: none. */
  readonly data: unknown;
}

/** A publish proxy's answer that did not refuse the publication. */
export interface PublishVerdict {
  /** True: the backend allows it (`clientPublish` and grants are not asked); false: they decide. */
  readonly allowed: boolean;
  /** True when the backend replaced the message with `message`. */
  readonly replaced: boolean;
  readonly message: unknown;
}

/** A refresh proxy's answer: the connection stays (with what changed) or goes. */
export type RefreshVerdict =
  | { readonly valid: false; readonly reason: string }
  | { readonly valid: true; readonly info: { value: unknown } | undefined; readonly topics: string[] | undefined; readonly publish: string[] | undefined };

/** How much of a backend's refusal message reaches the client. */
const MAX_MESSAGE = 200;

/** `"error": {"code","message"}` of an answer: both optional, the code one of Herald's error codes. */
const errorSchema = z.object({
  code: z.string().refine(isErrorCode, 'error.code must be one of Herald\'s error codes (docs/protocol.md)').optional(),
  message: z.string().optional(),
});
const decided = { allow: z.boolean().optional(), error: errorSchema.optional() };
const subscribeAnswer = z.object(decided);
const publishAnswer = z.object(decided);
const rpcAnswer = z.object(decided);
const refreshAnswer = z.object({ ...decided, topics: z.array(z.string()).optional(), publish: z.array(z.string()).optional() });

/** A connection's transport, as the backend is told it: `websocket`, `sse` or `http-stream`. */
function transportOf(session: Session): string {
  const framing = session.codec.framing.name;
  return framing === 'ndjson' ? 'http-stream' : framing;
}

/**
 * The backend proxies (docs/backend.md): which rule applies to a topic or an
 * RPC method, the request each one is sent (the connection: `conn`, `uid`,
 * `ip`, `protocol`, `transport`, the forwarded `headers` it kept; then what
 * is asked), and what its answer means. Every call goes through
 * `callBackend` (timeout, retries where safe, request id) and is counted in
 * the metrics; a failure is logged with its request id.
 *
 * In every answer, `"error": {"code","message"}` or `"allow": false`
 * refuses (a `HeraldError` with that code, `forbidden` by default); a body
 * that breaks these rules is malformed (`unavailable`, like a timeout).
 */
export class Proxies {
  /** Every header name some proxy forwards: what a connection keeps of its HTTP request. */
  readonly headerNames: readonly string[];
  private readonly config: HeraldConfig['proxy'];
  private readonly refreshEndpoint: ProxyEndpoint | undefined;

  constructor(private readonly options: ProxiesOptions) {
    this.config = options.config;
    const { subscribe, publish, rpc, refresh } = this.config;
    this.refreshEndpoint = refresh.url !== undefined ? { ...refresh, url: refresh.url } : undefined;
    const endpoints: ProxyEndpoint[] = [...subscribe, ...publish, ...rpc, ...(this.refreshEndpoint ? [this.refreshEndpoint] : [])];
    this.headerNames = [...new Set(endpoints.flatMap((endpoint) => endpoint.forwardHeaders))];
  }

  /** Whether a refresh proxy is configured. */
  get refreshes(): boolean {
    return this.refreshEndpoint !== undefined;
  }

  /** How often a connection is refreshed, in ms. */
  get refreshInterval(): number {
    return this.config.refresh.interval;
  }

  /** The subscribe proxy asked about `topic`, if any. */
  subscribeRule(topic: string): ProxyEndpoint | undefined {
    return this.config.subscribe.length === 0 ? undefined : ruleFor(this.config.subscribe, topic);
  }

  /** The publish proxy asked about `topic`, if any. */
  publishRule(topic: string): ProxyEndpoint | undefined {
    return this.config.publish.length === 0 ? undefined : ruleFor(this.config.publish, topic);
  }

  /** Asks whether the connection may subscribe to `topic` (the client's `data`, if it sent any); rejects with the refusal or the failure. */
  async subscribe(session: Session, endpoint: ProxyEndpoint, topic: string, data: unknown): Promise<SubscribeVerdict> {
    const answer = await this.call('subscribe', endpoint, session, { topic, ...(data !== undefined ? { data } : {}) }, true);
    const parsed = this.parse('subscribe', subscribeAnswer, answer);
    this.refusal(parsed);
    return { allowed: parsed.allow === true, info: answer.info, data: answer.data };
  }

  /** Asks whether the connection may publish `message` to `topic` (an LHTTP message: its body, command and headers); rejects with the refusal or the failure. */
  async publish(session: Session, endpoint: ProxyEndpoint, topic: string, message: unknown, lhttp?: LhttpPublication): Promise<PublishVerdict> {
    const asked = { topic, message, ...(lhttp ? { lhttp: { command: lhttp.command, headers: Object.fromEntries(lhttp.headers) } } : {}) };
    const answer = await this.call('publish', endpoint, session, asked, false);
    const parsed = this.parse('publish', publishAnswer, answer);
    this.refusal(parsed);
    const replaced = Object.hasOwn(answer, 'message');
    return { allowed: parsed.allow === true, replaced, message: replaced ? answer.message : message };
  }

  /**
   * Calls the RPC method for the connection: resolves with the backend's
   * `result` (undefined when it gave none); rejects `not_found` when no
   * `proxy.rpc` rule names the method, else with the refusal or the failure.
   */
  async rpc(session: Session, method: string, data: unknown): Promise<{ result: unknown }> {
    const endpoint = this.config.rpc.find((rule) => topicMatches([rule.method], method));
    if (!endpoint) throw new HeraldError('not_found', `no RPC method ${JSON.stringify(method)} (proxy.rpc)`);
    const answer = await this.call('rpc', endpoint, session, { method, ...(data !== undefined ? { data } : {}) }, false);
    this.refusal(this.parse('rpc', rpcAnswer, answer));
    return { result: answer.result };
  }

  /** Asks whether the connection is still valid; rejects only with a failure (the connection then stays until the next refresh). */
  async refresh(session: Session): Promise<RefreshVerdict> {
    const endpoint = this.refreshEndpoint;
    if (!endpoint) return { valid: true, info: undefined, topics: undefined, publish: undefined };
    let answer: Record<string, unknown>;
    try {
      answer = await this.call('refresh', endpoint, session, {}, true);
    } catch (err) {
      if (err instanceof HeraldError && !(err instanceof ProxyCallError)) return { valid: false, reason: err.message };
      throw err;
    }
    const parsed = this.parse('refresh', refreshAnswer, answer);
    try {
      this.refusal(parsed);
    } catch (err) {
      return { valid: false, reason: (err as HeraldError).message };
    }
    return { valid: true, info: Object.hasOwn(answer, 'info') ? { value: answer.info } : undefined, topics: parsed.topics, publish: parsed.publish };
  }

  /** Sends one request: the connection's part, then what is asked. */
  private call(kind: ProxyKind, endpoint: ProxyEndpoint, session: Session, asked: object, idempotent: boolean): Promise<Record<string, unknown>> {
    const requestId = randomUUID();
    const kept = session.requestHeaders;
    const headers: Record<string, string> = {};
    if (kept) for (const name of endpoint.forwardHeaders) if (kept[name] !== undefined) headers[name] = kept[name];
    const body = {
      proxy: kind,
      requestId,
      conn: session.id,
      ...(session.uid !== undefined ? { uid: session.uid } : {}),
      ip: session.ip,
      protocol: session.codec.name,
      transport: transportOf(session),
      headers,
      ...asked,
    };
    return callBackend(kind, endpoint, body, requestId, idempotent, this.observer(session));
  }

  private observer(session: Session): CallObserver {
    const { metrics, log } = this.options;
    return {
      done: (report) => {
        metrics.proxyCalls.inc({ proxy: report.kind });
        metrics.proxySeconds.observe({ proxy: report.kind }, report.ms / 1000);
        if (report.failure === null) return;
        metrics.proxyErrors.inc({ proxy: report.kind, reason: report.failure });
        const { kind, requestId, url, attempts, failure } = report;
        log.warn({ proxy: kind, requestId, url, conn: session.id, ms: Math.round(report.ms), attempts, reason: failure }, report.message ?? 'proxy call failed');
      },
      retried: (kind) => metrics.proxyRetries.inc({ proxy: kind }),
    };
  }

  /** The answer's fields checked; a malformed answer rejects `unavailable`, counted as an error of the call. */
  private parse<T extends z.ZodType>(kind: ProxyKind, schema: T, answer: Record<string, unknown>): z.output<T> {
    const parsed = schema.safeParse(answer);
    const problem = !parsed.success ? describeIssue(parsed.error) : answer.allow === true && answer.error !== undefined ? '"allow": true and an "error" at once' : null;
    if (parsed.success && problem === null) return parsed.data;
    this.options.metrics.proxyErrors.inc({ proxy: kind, reason: 'malformed' });
    this.options.log.warn({ proxy: kind, problem }, 'proxy answered an invalid body');
    throw new ProxyCallError('malformed', `${kind} proxy answered an invalid body: ${problem}`);
  }

  /** Throws the refusal an answer holds: its `error`, or `forbidden` for `"allow": false`. */
  private refusal(answer: { allow?: boolean | undefined; error?: { code?: string | undefined; message?: string | undefined } | undefined }): void {
    if (answer.error === undefined && answer.allow !== false) return;
    const code = answer.error?.code !== undefined && isErrorCode(answer.error.code) ? answer.error.code : 'forbidden';
    const message = answer.error?.message?.slice(0, MAX_MESSAGE) || 'refused by the backend';
    throw new HeraldError(code, message);
  }
}
