import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { connect, startHerald, type TestClient } from '../helpers/helpers.js';
import { internals } from '../helpers/internals.js';

describe('JSON protocol: bad input gets an error and the connection stays usable', () => {
  let herald: Herald;
  let c: TestClient;
  let bystander: TestClient;

  before(async () => {
    herald = await startHerald({ limits: { maxTopicsPerConnection: 3, maxTopicLength: 20 } });
    [c, bystander] = await Promise.all([connect(herald), connect(herald)]);
    await bystander.request({ action: 'subscribe', topic: 'calm' });
  });
  after(async () => {
    await Promise.all([c.close(), bystander.close()]);
    await herald.close();
  });

  const cases: Array<{ name: string; frame: unknown; expect: unknown }> = [
    { name: 'invalid JSON', frame: '{"action":', expect: { action: 'error', error: { code: 'bad_request', message: 'frame is not valid JSON' } } },
    { name: 'a JSON string', frame: '"subscribe"', expect: { action: 'error', error: { code: 'bad_request', message: 'a command must be a JSON object' } } },
    { name: 'null', frame: 'null', expect: { action: 'error', error: { code: 'bad_request', message: 'a command must be a JSON object' } } },
    { name: 'an empty batch', frame: '[]', expect: { action: 'error', error: { code: 'bad_request', message: 'a batch must hold at least one command' } } },
    { name: 'a missing action', frame: { topic: 'x' }, expect: { action: 'error', error: { code: 'bad_request', message: 'field "action" must be a string' } } },
    { name: 'a numeric action', frame: { id: 1, action: 5 }, expect: { id: 1, action: 'error', ok: false, error: { code: 'bad_request', message: 'field "action" must be a string' } } },
    { name: 'an object id', frame: { id: {}, action: 'ping' }, expect: { action: 'error', error: { code: 'bad_request', message: 'field "id" must be a number or a string of at most 64 characters' } } },
    { name: 'an unknown action', frame: { id: 2, action: 'dance' }, expect: { id: 2, action: 'dance', ok: false, error: { code: 'unknown_action', message: 'unknown action "dance"' } } },
    { name: 'subscribe without topic', frame: { id: 3, action: 'subscribe' }, expect: { id: 3, action: 'subscribe', ok: false, error: { code: 'bad_request', message: 'subscribe needs either "topic" or "topics"' } } },
    { name: 'subscribe with both topic and topics', frame: { id: 4, action: 'subscribe', topic: 'a', topics: ['b'] }, expect: { id: 4, action: 'subscribe', ok: false, error: { code: 'bad_request', message: 'subscribe needs either "topic" or "topics"' } } },
    {
      name: 'a numeric topic',
      frame: { id: 5, action: 'subscribe', topic: 42 },
      expect: { id: 5, action: 'subscribe', ok: false, error: { code: 'bad_request', message: 'field "topic": Invalid input: expected string, received number' } },
    },
    {
      name: 'an invalid topic name',
      frame: { id: 6, action: 'subscribe', topic: 'has space' },
      expect: { id: 6, action: 'subscribe', ok: false, error: { code: 'invalid_topic', message: 'topic "has space" contains U+0020: topics are printable characters other than whitespace, * > and |' } },
    },
    { name: 'an empty topic', frame: { id: 7, action: 'subscribe', topic: '' }, expect: { id: 7, action: 'subscribe', ok: false, error: { code: 'invalid_topic', message: 'topic must not be empty' } } },
    {
      name: 'a topic over the length limit',
      frame: { id: 8, action: 'subscribe', topic: 'x'.repeat(21) },
      expect: { id: 8, action: 'subscribe', ok: false, error: { code: 'invalid_topic', message: 'topic is 21 bytes long, over the limit of 20' } },
    },
    {
      name: 'topics over the per-connection limit',
      frame: { id: 9, action: 'subscribe', topics: ['a', 'b', 'c', 'd'] },
      expect: { id: 9, action: 'subscribe', ok: false, error: { code: 'too_many_topics', message: '4 topics in one command, over the limit of 3' } },
    },
    {
      name: 'unsubscribe from a topic not subscribed',
      frame: { id: 10, action: 'unsubscribe', topic: 'never' },
      expect: { id: 10, action: 'unsubscribe', ok: false, error: { code: 'not_subscribed', message: 'not subscribed to never' } },
    },
    { name: 'publish without message', frame: { id: 11, action: 'publish', topic: 'calm' }, expect: { id: 11, action: 'publish', ok: false, error: { code: 'bad_request', message: 'publish needs a "message"' } } },
    {
      name: 'publish with a wrongly typed topic',
      frame: { id: 12, action: 'publish', topic: ['calm'], message: 1 },
      expect: { id: 12, action: 'publish', ok: false, error: { code: 'bad_request', message: 'field "topic": Invalid input: expected string, received array' } },
    },
    {
      name: 'a bad since position',
      frame: { id: 13, action: 'subscribe', topic: 'calm', since: { offset: -1, epoch: 'e' } },
      expect: { id: 13, action: 'subscribe', ok: false, error: { code: 'bad_request', message: 'field "since.offset": Too small: expected number to be >=0' } },
    },
    {
      name: 'a failing element inside a batch',
      frame: [{ id: 'b14', action: 'subscribe', topic: 'bad topic' }, { id: 'b15', action: 'ping' }],
      expect: { id: 'b14', action: 'subscribe', ok: false, error: { code: 'invalid_topic', message: 'topic "bad topic" contains U+0020: topics are printable characters other than whitespace, * > and |' } },
    },
  ];

  for (const { name, frame, expect } of cases) {
    it(`answers ${name}`, async () => {
      c.send(frame);
      assert.deepEqual(await c.next(), expect);
      // The rest of a batch still runs after a failing element.
      if (Array.isArray(frame)) assert.deepEqual(await c.next(), { id: 'b15', action: 'ping', ok: true });
      // The connection still works.
      assert.equal((await c.request({ action: 'ping' })).ok, true);
    });
  }

  it('binary frames are refused with an error, not a close', async () => {
    c.ws.send(Buffer.from('{"action":"ping"}'), { binary: true });
    assert.deepEqual(await c.next(), { action: 'error', error: { code: 'bad_request', message: 'binary frames are not accepted: send JSON in a text frame' } });
  });

  it('a rejected multi-topic subscribe subscribes to none of them', async () => {
    const reply = await c.request({ action: 'subscribe', topics: ['ok1', 'bad topic'] });
    assert.equal(reply.error.code, 'invalid_topic');
    assert.equal(internals(herald).hub.subscriberCount('ok1'), 0);
    await c.request({ action: 'subscribe', topics: ['s1', 's2', 's3'] });
    const over = await c.request({ action: 'subscribe', topic: 's4' });
    assert.deepEqual(over.error, { code: 'too_many_topics', message: 'subscribing would make 4 topics, over the limit of 3' });
    assert.equal(internals(herald).hub.subscriberCount('s4'), 0);
  });

  it('the other connection saw none of it and still receives', async () => {
    await c.request({ action: 'publish', topic: 'calm', message: 'still here' });
    assert.deepEqual(await bystander.next(), { action: 'publish', topic: 'calm', message: 'still here' });
    assert.equal(bystander.received.length, 1);
  });
});
