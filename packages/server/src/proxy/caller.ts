import { setTimeout as sleep } from 'node:timers/promises';
import { HeraldError } from '../errors.js';
import { VERSION } from '../version.js';

/** The backend proxies (docs/backend.md). */
export type ProxyKind = 'subscribe' | 'publish' | 'rpc' | 'refresh';

/** Why a proxy call got no usable answer (the `reason` label of `herald_proxy_errors_total`). */
export type ProxyFailure = 'timeout' | 'unreachable' | 'status' | 'malformed';

/** One backend endpoint of the configuration (`proxy.*`). */
export interface ProxyEndpoint {
  readonly url: string;
  /** Longest a call may take, every attempt and wait included, in ms. */
  readonly timeout: number;
  /** Further attempts after a failure where a retry is safe (see `callBackend`). */
  readonly retries: number;
  /** Request headers of the connection forwarded to the backend (lower case). */
  readonly forwardHeaders: readonly string[];
}

/** How a call ended, for metrics and logs. */
export interface CallReport {
  readonly kind: ProxyKind;
  readonly requestId: string;
  readonly url: string;
  /** From the first attempt to the answer or the failure, in ms. */
  readonly ms: number;
  /** Attempts made (1 without a retry). */
  readonly attempts: number;
  /** Null when the backend answered (allowed or refused). */
  readonly failure: ProxyFailure | null;
  readonly message?: string;
}

/** Told how each call ends, and of each retry (metrics, logs). */
export interface CallObserver {
  done(report: CallReport): void;
  retried(kind: ProxyKind): void;
}

/**
 * A proxy call that got no usable answer: the client's command is answered
 * `unavailable` (retry later) with this message; `reason` says which failure.
 */
export class ProxyCallError extends HeraldError {
  constructor(
    readonly reason: ProxyFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('unavailable', message, options);
  }
}

/** Connection errors raised before the request could reach the backend: a retry is safe for every proxy. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);
/** Statuses a gateway or an overloaded backend answers: retried for the proxies that only ask (subscribe, refresh). */
const RETRY_STATUSES = new Set([502, 503, 504]);
/** The first wait before a retry, in ms; doubled for each further one, with jitter. */
const FIRST_BACKOFF = 25;

/** The error code of a failed fetch's cause (`ECONNREFUSED`, `UND_ERR_SOCKET`, ...), if any. */
function causeCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

type Attempt = { answer: Record<string, unknown> } | { error: HeraldError; retry: boolean };

/**
 * One call to a backend proxy: `POST endpoint.url` with the JSON `body`,
 * `Content-Type: application/json`, `X-Request-Id: <requestId>` and
 * `User-Agent: herald/<version>`; no redirects (as the connect hook).
 *
 * Resolves with the answer of a 2xx: its JSON object (`{}` for an empty
 * body). Rejects with a refusal for 401 (`unauthorized`) and 403
 * (`forbidden`), the start of the body as the message; with a
 * `ProxyCallError` (`unavailable`) for no answer within `endpoint.timeout`,
 * an unreachable backend, any other status, or a body that is not a JSON
 * object.
 *
 * `endpoint.timeout` bounds the whole call, retries included, so a
 * connection's commands never wait longer for it. Retries (at most
 * `endpoint.retries`, after 25 ms, 50 ms, ... with jitter, while time is
 * left): for every proxy when the request cannot have reached the backend
 * (connection refused, name not found); for `idempotent` calls (they only
 * ask: subscribe, refresh) also after a 502, 503 or 504 or a connection cut
 * before the answer. Never after a timeout.
 */
export async function callBackend(
  kind: ProxyKind,
  endpoint: ProxyEndpoint,
  body: object,
  requestId: string,
  idempotent: boolean,
  observer: CallObserver,
): Promise<Record<string, unknown>> {
  const started = performance.now();
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), endpoint.timeout);
  timer.unref();
  const text = JSON.stringify(body);
  let attempts = 0;
  const finish = (failure: ProxyFailure | null, message?: string): void =>
    observer.done({ kind, requestId, url: endpoint.url, ms: performance.now() - started, attempts, failure, ...(message !== undefined ? { message } : {}) });
  try {
    for (;;) {
      attempts++;
      const attempt = await once(kind, endpoint, text, requestId, idempotent, controller.signal);
      if ('answer' in attempt) {
        finish(null);
        return attempt.answer;
      }
      const { error } = attempt;
      const left = endpoint.timeout - (performance.now() - started);
      const wait = FIRST_BACKOFF * 2 ** (attempts - 1) * (0.5 + Math.random() / 2);
      if (!attempt.retry || attempts > endpoint.retries || wait >= left) {
        finish(error instanceof ProxyCallError ? error.reason : null, error.message);
        throw error;
      }
      observer.retried(kind);
      try {
        await sleep(wait, undefined, { signal: controller.signal });
      } catch {
        const timedOut = new ProxyCallError('timeout', `${kind} proxy did not answer within ${endpoint.timeout} ms`);
        finish('timeout', timedOut.message);
        throw timedOut;
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

/** One attempt: its answer, or its error and whether another attempt is safe. */
async function once(kind: ProxyKind, endpoint: ProxyEndpoint, body: string, requestId: string, idempotent: boolean, signal: AbortSignal): Promise<Attempt> {
  const timedOut = (): Attempt => ({ error: new ProxyCallError('timeout', `${kind} proxy did not answer within ${endpoint.timeout} ms`), retry: false });
  let response: Response;
  try {
    response = await fetch(endpoint.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': requestId, 'user-agent': `herald/${VERSION}` },
      body,
      signal,
      redirect: 'error',
    });
  } catch (err) {
    if (signal.aborted) return timedOut();
    const code = causeCode(err);
    const retry = (code !== undefined && NOT_SENT.has(code)) || idempotent;
    return { error: new ProxyCallError('unreachable', `${kind} proxy unreachable${code ? ` (${code})` : ''}`, { cause: err }), retry };
  }
  let text: string;
  try {
    text = await response.text();
  } catch (err) {
    if (signal.aborted) return timedOut();
    return { error: new ProxyCallError('unreachable', `${kind} proxy cut the connection before its answer ended`, { cause: err }), retry: idempotent };
  }
  const { status } = response;
  if (status === 401) return { error: new HeraldError('unauthorized', `${kind} proxy refused: ${text.slice(0, 80) || 'unauthorized'}`), retry: false };
  if (status === 403) return { error: new HeraldError('forbidden', `${kind} proxy refused: ${text.slice(0, 80) || 'forbidden'}`), retry: false };
  if (status < 200 || status > 299) {
    return { error: new ProxyCallError('status', `${kind} proxy answered ${status}`), retry: idempotent && RETRY_STATUSES.has(status) };
  }
  if (text.trim() === '') return { answer: {} };
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    return { error: new ProxyCallError('malformed', `${kind} proxy answered something that is not JSON`), retry: false };
  }
  if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) {
    return { error: new ProxyCallError('malformed', `${kind} proxy answered JSON that is not an object`), retry: false };
  }
  return { answer: answer as Record<string, unknown> };
}
