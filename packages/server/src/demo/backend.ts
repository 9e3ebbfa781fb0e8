import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SignJWT } from 'jose';
import { z } from 'zod';
import type { HeraldConfig } from '../config.js';
import { HeraldError } from '../errors.js';
import type { Herald } from '../herald.js';
import type { ClientAddressResolver } from '../util/client-address.js';
import { localCallerProblem } from '../http/auth.js';
import { describeIssue as describe } from '../util/zod.js';
import { registerAnswers } from './answers.js';

/**
 * The demo pages' "backend": what an application's own server does around
 * Herald (mint tokens for its users, push task progress, publish bookings,
 * stream a model's long answer), so that the demos work with `npm start`
 * alone. On only with `demo.backend: true` (the `npm start` configuration),
 * and only for callers on this machine: it signs a token for any uid it is
 * asked for.
 */

/** Where the demo backend publishes the booking feed's state, `{"feeding":true,"until":<ms>}` or `{"feeding":false}`. */
export const BOOKING_FEED_TOPIC = 'demo:bookings-feed';

/** With the demo backend on and no JWT key configured, tokens are signed with a secret made up at start-up. */
export function withDemoSecret(config: HeraldConfig): HeraldConfig {
  const { jwt } = config.auth;
  if (!config.demo.enabled || !config.demo.backend || jwt.secret || jwt.publicKey || jwt.jwksUrl) return config;
  return { ...config, auth: { ...config.auth, jwt: { ...jwt, secret: randomBytes(32).toString('base64url') } } };
}

const tokenBody = z.strictObject({
  uid: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'a uid of 1 to 64 letters, digits, _ . @ -'),
  name: z.string().min(1).max(40).optional(),
});
const taskBody = z.strictObject({ uid: z.string().min(1).max(64), steps: z.number().int().min(1).max(100).default(20), interval: z.number().int().min(10).max(2000).default(150) });
const bookingsBody = z.strictObject({ seconds: z.number().int().min(1).max(600).default(30), perSecond: z.number().min(0.1).max(50).default(3) });

const SHOWS = ['Hamlet', 'The Magic Flute', 'Swan Lake', 'Cats', 'La Bohème', 'Les Misérables', 'Carmen', 'The Nutcracker'];
const NAMES = ['Ada', 'Linus', 'Grace', 'Alan', 'Barbara', 'Ken', 'Margaret', 'Dennis', 'Frances', 'Edsger'];

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) throw new HeraldError('bad_request', describe(parsed.error));
  return parsed.data;
}

/**
 * Registers the demo backend's routes (`/demo/*`) on the HTTP app; the
 * composition root (server.ts) does it when `demo.enabled` and
 * `demo.backend` are on. It uses only the public `Herald` API.
 */
export function registerDemoBackend(app: FastifyInstance, herald: Herald, clientAddress: ClientAddressResolver): void {
  const { secret } = herald.config.auth.jwt;
  const key = secret ? new TextEncoder().encode(secret) : null;
  // The same test as the key-less API's: a loopback client address, and no browser page of another site.
  const localOnly = async (request: FastifyRequest) => {
    const problem = localCallerProblem(request, clientAddress, herald.config.allowedHosts);
    if (problem) throw new HeraldError('forbidden', `the demo backend answers callers on this machine only: ${problem}`);
  };
  const timers = new Set<ReturnType<typeof setInterval>>();
  app.addHook('onClose', async () => {
    for (const timer of timers) clearInterval(timer);
  });
  const every = (ms: number, tick: () => boolean) => {
    const timer = setInterval(() => {
      if (herald.closing || !tick()) {
        clearInterval(timer);
        timers.delete(timer);
      }
    }, ms);
    timers.add(timer);
  };

  // What an application's login does: sign a short-lived token for the user.
  app.post('/demo/token', { onRequest: localOnly }, async (request) => {
    if (!key) throw new HeraldError('unavailable', 'the demo backend signs tokens with auth.jwt.secret; this server verifies tokens with a public key');
    const { uid, name } = parse(tokenBody, request.body);
    const token = await new SignJWT({ ...(name ? { info: { name } } : {}), publish: ['chat:*', 'danmaku:*'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(uid)
      .setIssuedAt()
      .setExpirationTime('15m')
      .sign(key);
    return { ok: true, uid, token };
  });

  // A fake long task that reports its progress to one user, as a backend would through /api/send.
  let tasks = 0;
  app.post('/demo/task', { onRequest: localOnly }, async (request) => {
    const { uid, steps, interval } = parse(taskBody, request.body);
    if (!herald.isUserConnected(uid)) throw new HeraldError('not_found', `user ${uid} has no connection`);
    const task = `task-${++tasks}`;
    let step = 0;
    every(interval, () => {
      step++;
      const progress = Math.round((step / steps) * 100);
      // A user gone meanwhile, or a server shutting down: the fake task just ends.
      herald.send(uid, { task, progress, status: step >= steps ? 'done' : 'running' }).catch(() => {});
      return step < steps;
    });
    return { ok: true, task };
  });

  // A model streaming a long answer token by token to a topic of its own (a resumable stream, demo/stream.html).
  registerAnswers(app, herald, localOnly);

  // A booking system publishing each new booking to the `bookings` topic.
  // Whether the feed runs is the server's state: GET /demo/bookings tells a
  // page that opens later, and every change is published to BOOKING_FEED_TOPIC.
  let feed: { until: number } | null = null;
  let booking = 1000;
  const feedState = () => (feed ? { feeding: true, until: feed.until } : { feeding: false });
  const announceFeed = () => {
    herald.publish(BOOKING_FEED_TOPIC, feedState()).catch((err: Error) => herald.log.debug({ err: err.message }, 'demo feed state not published'));
  };
  app.get('/demo/bookings', { onRequest: localOnly }, async () => ({ ok: true, ...feedState() }));
  app.post('/demo/bookings', { onRequest: localOnly }, async (request) => {
    const { seconds, perSecond } = parse(bookingsBody, request.body);
    if (feed) return { ok: true, already: true, ...feedState() };
    const current = { until: Date.now() + seconds * 1000 };
    feed = current;
    announceFeed();
    every(1000 / perSecond, () => {
      const seats = 1 + Math.floor(Math.random() * 4);
      herald.publish('bookings', {
        id: ++booking,
        show: SHOWS[Math.floor(Math.random() * SHOWS.length)]!,
        customer: NAMES[Math.floor(Math.random() * NAMES.length)]!,
        seats,
        amount: seats * (35 + Math.floor(Math.random() * 60)),
        time: new Date().toISOString(),
      }).catch((err: Error) => herald.log.debug({ err: err.message }, 'demo booking not published'));
      if (Date.now() < current.until && !herald.closing) return true;
      feed = null;
      announceFeed();
      return false;
    });
    return { ok: true, seconds, ...feedState() };
  });
}
