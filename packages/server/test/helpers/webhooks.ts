import { createHmac, timingSafeEqual } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { deadline } from './helpers.js';

/**
 * Verifies a Standard Webhooks request as a backend would (the same code as
 * docs/backend.md's example): the signature over `id.timestamp.body` with
 * the secret's key, compared in constant time, and a timestamp within five
 * minutes. Returns the parsed body, or null when it does not verify.
 */
export function verifyWebhook(secret: string, headers: IncomingHttpHeaders, body: string): { events: Array<Record<string, any>> } | null {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string') return null;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return null;
  const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret);
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  const valid = signatures.split(' ').some((signature) => {
    const [version, value] = signature.split(',');
    const given = Buffer.from(value ?? '', 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
  return valid ? JSON.parse(body) : null;
}

export interface ReceivedRequest {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The status answered. */
  readonly status: number;
  /** The body parsed, when its signature verified. */
  readonly verified: { events: Array<Record<string, any>> } | null;
}

/**
 * A backend's webhook endpoint on a free loopback port (a plain node:http
 * server): verifies each request's signature (401 when it does not verify),
 * answers the statuses a test scripts (`answers`, consumed in order; 200
 * after them), and records everything. `events` holds the events of every
 * request it acknowledged, once per id (a retry's repeat is recognised by
 * its id and counted in `duplicates`).
 */
export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  readonly events: Array<Record<string, any>> = [];
  duplicates = 0;
  answers: number[] = [];
  private readonly ids = new Set<string>();
  private readonly changed = new EventEmitter();
  private server: Server | null = null;

  constructor(readonly secret: string) {}

  async start(): Promise<string> {
    this.server = createServer((request, response) => {
      let body = '';
      request.setEncoding('utf8');
      request.on('data', (chunk: string) => (body += chunk));
      request.on('end', () => {
        const verified = verifyWebhook(this.secret, request.headers, body);
        const status = verified ? (this.answers.shift() ?? 200) : 401;
        this.requests.push({ headers: request.headers, body, status, verified });
        if (verified && status >= 200 && status < 300) {
          for (const event of verified.events) {
            if (this.ids.has(event.id)) this.duplicates++;
            else {
              this.ids.add(event.id);
              this.events.push(event);
            }
          }
        }
        response.writeHead(status).end();
        this.changed.emit('request');
      });
    });
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    return this.url;
  }

  get url(): string {
    const address = this.server!.address() as { port: number };
    return `http://127.0.0.1:${address.port}/hooks`;
  }

  /** Events acknowledged so far that `match` selects. */
  of(match: (event: Record<string, any>) => boolean): Array<Record<string, any>> {
    return this.events.filter(match);
  }

  /** Resolves once `check` holds, looked at after each request (fails after `ms`). */
  async until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
    await deadline(
      (async () => {
        while (!check()) await once(this.changed, 'request');
      })(),
      ms,
      what,
    );
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}
