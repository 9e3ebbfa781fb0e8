import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { HeraldError } from '../errors.js';
import type { Herald } from '../herald.js';
import { openResumableStream, type ResumableStream } from '../streams/resumable.js';
import { describeIssue as describe } from '../util/zod.js';

/**
 * The stream demo's "model": a stand-in for an LLM backend that streams a
 * long answer token by token, at 20 to 50 tokens a second, to a topic of its
 * own (`answer:<id>`, a resumable stream: src/streams/resumable.ts). The
 * page (demo/stream.html) reads it with a bare EventSource or the SDK and
 * survives reloads, network changes and second tabs.
 */

/** Where each answer streams: `answer:<id>`, covered by the `answer:*` history rule of demo/herald.yaml. */
export const ANSWER_PREFIX = 'answer:';

/** Delay between two tokens: 20 to 50 ms, so 20 to 50 tokens a second, as a hosted model streams. */
const MIN_DELAY = 20;
const MAX_DELAY = 50;

const PARAGRAPHS = [
  'A long answer is a stream of small pieces. The backend publishes each token to a topic of its own, and Herald keeps the topic’s recent history, so every piece has an offset: its exact place in the stream.',
  'When the page reloads, it still knows the offset of the last token it showed. It asks for what came after it, and Herald replays the missed tokens, in order and once each, before the live ones. Nothing is repeated, and nothing is lost.',
  'A phone that moves from Wi-Fi to 4G does the same by itself: its EventSource reconnects with Last-Event-ID, and the answer goes on where it stopped. A second tab reads the same topic from its start and catches up with the first.',
  'The backend does not wait for anyone. It writes at the model’s pace, and readers come and go; the history’s short TTL cleans up after them. Any language can be the backend: each token is one POST to /api/publish.',
  'Token streams look simple — but a reload half way used to mean starting again, or paying for the answer twice. With offsets it is just a resume → the text continues as if the page had never left. ✓',
  'The end of the stream is a message too: done, or an error with its reason. A reader that sees it closes its stream; one that comes back later reads the whole answer from the history, as long as the TTL keeps it.',
];

/**
 * The fake model's answer to a prompt: an opening that quotes it, then four
 * paragraphs picked from the prompt's text, so that one prompt always gets
 * the same answer.
 */
export function fakeAnswer(prompt: string): string {
  let hash = 0;
  for (const char of prompt) hash = (hash * 31 + char.codePointAt(0)!) >>> 0;
  const picked = [0, 1, 2, 3].map((i) => PARAGRAPHS[(hash + i * 5) % PARAGRAPHS.length]!);
  return [`You asked: “${prompt.trim()}”. Here is a long answer, streamed one token at a time.`, ...new Set(picked)].join('\n\n');
}

/** Splits text into model-like tokens: words in pieces of at most 6 letters, each punctuation mark alone, the spaces before each piece kept with it. Joined, they are the text. */
export function tokenize(text: string): string[] {
  return text.match(/\s*(?:[\p{L}\p{N}’']{1,6}|[^\s\p{L}\p{N}’'])/gu) ?? [];
}

const answerBody = z.strictObject({ prompt: z.string().trim().min(1, 'ask something').max(500) });
const stopBody = z.strictObject({ answer: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/) });

/** Registers `POST /demo/answer` (start an answer) and `POST /demo/answer/stop` on the demo backend's app. */
export function registerAnswers(app: FastifyInstance, herald: Herald, onRequest: (request: FastifyRequest) => Promise<void>): void {
  const running = new Map<string, { stream: ResumableStream; timer: ReturnType<typeof setTimeout> | undefined }>();
  app.addHook('onClose', async () => {
    for (const answer of running.values()) clearTimeout(answer.timer);
    running.clear();
  });

  app.post('/demo/answer', { onRequest }, async (request) => {
    const parsed = answerBody.safeParse(request.body ?? {});
    if (!parsed.success) throw new HeraldError('bad_request', describe(parsed.error));
    const id = randomBytes(16).toString('base64url');
    const stream = await openResumableStream(herald, `${ANSWER_PREFIX}${id}`);
    const tokens = tokenize(fakeAnswer(parsed.data.prompt));
    const answer: { stream: ResumableStream; timer: ReturnType<typeof setTimeout> | undefined } = { stream, timer: undefined };
    running.set(id, answer);
    /** Stops the clock; false when the answer was already over. */
    const stop = (): boolean => {
      if (!running.delete(id)) return false;
      clearTimeout(answer.timer);
      return true;
    };
    const failWith = (reason: string): void => {
      stream.fail(reason).catch((err: Error) => herald.log.debug({ err: err.message, topic: stream.topic }, 'demo answer not ended'));
    };
    let next = 0;
    const tick = (): void => {
      if (!running.has(id)) return;
      if (herald.closing) {
        stop();
        return failWith('the server is shutting down');
      }
      if (next === tokens.length) {
        stop();
        stream.end().catch((err: Error) => failWith(`the answer could not end: ${err.message}`));
        return;
      }
      // Not awaited: the writer publishes in call order. A token that fails ends the answer with an error.
      stream.append(tokens[next++]!).catch((err: Error) => {
        if (stop()) failWith(`a token was not published: ${err.message}`);
      });
      answer.timer = setTimeout(tick, MIN_DELAY + Math.random() * (MAX_DELAY - MIN_DELAY));
    };
    answer.timer = setTimeout(tick, MIN_DELAY);
    return { ok: true, answer: id, topic: stream.topic, from: stream.from, tokens: tokens.length };
  });

  // The reader's stop button: the answer ends with an error, which every reader sees.
  app.post('/demo/answer/stop', { onRequest }, async (request) => {
    const parsed = stopBody.safeParse(request.body ?? {});
    if (!parsed.success) throw new HeraldError('bad_request', describe(parsed.error));
    const answer = running.get(parsed.data.answer);
    if (!answer) return { ok: true, stopped: false };
    running.delete(parsed.data.answer);
    clearTimeout(answer.timer);
    await answer.stream.fail('stopped by the reader');
    return { ok: true, stopped: true };
  });
}
