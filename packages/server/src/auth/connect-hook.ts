import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';
import type { HeraldConfig } from '../config.js';
import { HeraldError } from '../errors.js';

/** What the backend answers: who the connection is and what it joins. */
export interface HookAnswer {
  uid?: string | undefined;
  /** Topics the connection is subscribed to at once (and granted, if private). */
  topics?: string[] | undefined;
  /** Further topics it may publish to. */
  publish?: string[] | undefined;
  info?: unknown;
}

const answerSchema = z.object({
  uid: z.string().min(1).optional(),
  topics: z.array(z.string()).optional(),
  publish: z.array(z.string()).optional(),
  info: z.unknown().optional(),
});

export interface HookRequest {
  ip: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/**
 * Asks the backend who a new connection is: `POST <url>` with
 * `{"ip","url","headers":{...forwarded}}`. A 2xx answer with
 * `{"uid"?,"topics"?,"publish"?,"info"?}` accepts it; 401 refuses it as
 * unauthorized (close 4501), 403 as forbidden (4503); any other status, a
 * malformed answer, an unreachable backend or a timeout refuse it with
 * `unavailable` (4000: the client may retry).
 */
export async function askConnectHook(config: HeraldConfig['auth']['connectHook'], request: HookRequest): Promise<HookAnswer> {
  const url = config.url!;
  const headers: Record<string, string> = {};
  for (const name of config.forwardHeaders) {
    const value = request.headers[name.toLowerCase()];
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ip: request.ip, url: request.url, headers }),
      signal: AbortSignal.timeout(config.timeout),
      redirect: 'error',
    });
  } catch (err) {
    const timedOut = (err as Error).name === 'TimeoutError';
    throw new HeraldError('unavailable', timedOut ? `connect hook did not answer within ${config.timeout} ms` : 'connect hook unreachable', { cause: err });
  }
  const text = await response.text().catch(() => '');
  if (response.status === 401) throw new HeraldError('unauthorized', `connect hook refused: ${text.slice(0, 80) || 'unauthorized'}`);
  if (response.status === 403) throw new HeraldError('forbidden', `connect hook refused: ${text.slice(0, 80) || 'forbidden'}`);
  if (!response.ok) throw new HeraldError('unavailable', `connect hook answered ${response.status}`);
  let body: unknown = {};
  if (text.trim()) {
    try {
      body = JSON.parse(text);
    } catch {
      throw new HeraldError('unavailable', 'connect hook answered something that is not JSON');
    }
  }
  const parsed = answerSchema.safeParse(body);
  if (!parsed.success) throw new HeraldError('unavailable', `connect hook answered an invalid body: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}
