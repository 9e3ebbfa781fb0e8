import { decodeLhttp, splitList } from '@herald/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HeraldError } from '../../errors.js';
import type { RouteContext } from './context.js';

/**
 * The seed endpoints answer errors as the originals do (a status and an empty
 * body); this response header says why, for a person reading `curl -i`.
 */
const SEED_ERROR_HEADER = 'x-herald-error';

/** The seeds' own endpoints, kept as the originals answer: the push centre's `/send` and Lhttp's `POST /publish`. */
export function seedRoutes(app: FastifyInstance, { herald, guard }: RouteContext): void {
  // The push-centre seed's endpoint, kept as it is: uid and message from the
  // query or a form body (the body wins); 400 with an empty body, as the seed
  // answers, when the uid is missing or has no connection (the reason is in
  // the X-Herald-Error header); 200 with an empty body otherwise.
  const seedSend = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const query = request.query as Record<string, unknown>;
    const body = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as Record<string, unknown>;
    const field = (name: string): string => {
      const value = body[name] ?? query[name];
      return typeof value === 'string' ? value : Array.isArray(value) && typeof value[0] === 'string' ? value[0] : '';
    };
    const uid = field('uid');
    if (!uid) return void reply.status(400).header(SEED_ERROR_HEADER, 'uid is required').send();
    if (!herald.isUserConnected(uid)) return void reply.status(400).header(SEED_ERROR_HEADER, `client not found: ${encodeURIComponent(uid)}`).send();
    await herald.sendSeed(uid, field('message'));
    return void reply.status(200).type('text/plain').send('');
  };
  app.get('/send', { onRequest: guard }, seedSend);

  // The Lhttp seed's endpoint: a whole LHTTP message, whatever the content type
  // says (curl -d and PHP's curl send form-urlencoded by default, the Go helper
  // text/plain): its own scope reads every body as raw text, and its raw bytes
  // are published to every topic of its `publish` header. 200 with an empty
  // body as the original (also without a publish header); 400 for a body that
  // is not LHTTP, where the original dropped the connection.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
    scope.post('/publish', { onRequest: guard }, async (request, reply) => {
      const text = typeof request.body === 'string' ? request.body : '';
      let message;
      try {
        message = decodeLhttp(text);
      } catch (err) {
        throw new HeraldError('bad_request', `not an LHTTP message: ${(err as Error).message}`);
      }
      const topics = splitList(message.headers.get('publish') ?? '').filter((topic) => topic !== '');
      if (topics.length === 0) request.log.debug('POST /publish without a publish header: nothing published');
      const lhttp = { text, command: message.command, headers: [...message.headers] };
      for (const topic of topics) await herald.publishLhttp(topic, lhttp, message.body, 'http');
      return reply.status(200).type('text/plain').send('');
    });
  });
  app.post('/send', { onRequest: guard }, seedSend);

}
