import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BrokerNamespace } from '../../src/broker/namespace.js';
import { HeraldError } from '../../src/errors.js';

/** The HeraldError a constructor throws, with its code. */
function refusal(build: () => unknown): HeraldError {
  try {
    build();
  } catch (err) {
    assert.ok(err instanceof HeraldError, `a HeraldError: ${String(err)}`);
    assert.equal(err.code, 'bad_request');
    return err;
  }
  assert.fail('expected the namespace to be refused');
}

describe('BrokerNamespace', () => {
  it('a topic is prefix + topic; a raw topic is its bare name', () => {
    const redis = new BrokerNamespace('redis', 'herald:', ['bookings', 'legacy-*']);
    assert.equal(redis.nameOf('news'), 'herald:news');
    assert.equal(redis.nameOf('bookings'), 'bookings');
    assert.equal(redis.nameOf('legacy-feed'), 'legacy-feed');
    assert.equal(redis.nameOf('bookings2'), 'herald:bookings2', 'an exact raw name is exact');
    assert.deepEqual(['news', 'bookings', 'legacy-'].map((topic) => redis.isRaw(topic)), [false, true, true]);
    assert.equal(new BrokerNamespace('nats', 'herald.', []).isRaw('anything'), false, 'no rawTopics: nothing is raw');
  });

  it('refuses an empty prefix, whatever the broker', () => {
    assert.match(refusal(() => new BrokerNamespace('redis', '', [])).message, /redis\.prefix must not be empty/);
    assert.match(refusal(() => new BrokerNamespace('nats', '', [])).message, /nats\.prefix must not be empty.*nats\.rawTopics/);
  });

  it('refuses a prefix inside the broker\'s own names', () => {
    assert.match(refusal(() => new BrokerNamespace('redis', '__herald:', [])).message, /Redis channels starting with __/);
    assert.match(refusal(() => new BrokerNamespace('nats', '$herald.', [])).message, /starting with \$/);
    assert.match(refusal(() => new BrokerNamespace('nats', '_INBOX.herald.', [])).message, /_INBOX/);
    assert.doesNotThrow(() => new BrokerNamespace('redis', '$herald:', []), '$ is only NATS\'s');
    assert.doesNotThrow(() => new BrokerNamespace('nats', '__herald.', []), '__ is only Redis\'s');
  });

  it('refuses a NATS prefix a subject cannot hold', () => {
    for (const prefix of ['her ald.', 'herald.*.', 'herald.>', 'tab\t']) assert.match(refusal(() => new BrokerNamespace('nats', prefix, [])).message, /whitespace, \* or >/, prefix);
    assert.doesNotThrow(() => new BrokerNamespace('redis', 'her ald:*', []), 'Redis channels may');
  });

  it('a raw topic whose bare name falls inside Herald\'s namespace is refused, so two topics never share a name', () => {
    const redis = new BrokerNamespace('redis', 'herald:', ['herald:*', 'ok']);
    assert.match(redis.topicProblem('herald:x') ?? '', /is raw \(redis\.rawTopics\) but its name falls inside Herald's namespace "herald:"/);
    assert.equal(redis.topicProblem('ok'), null);
    assert.equal(redis.topicProblem('x'), null, 'not raw: herald:x, Herald\'s own');
  });

  it('no topic reaches the broker\'s reserved names, raw or not', () => {
    const redis = new BrokerNamespace('redis', 'herald:', ['__*', '*']);
    for (const topic of ['__keyevent@0__:set', '__keyspace@0__:x', '__redis__:invalidate', '__sentinel__:hello']) {
      assert.match(redis.topicProblem(topic) ?? '', /Redis channels starting with __/, topic);
    }
    const nats = new BrokerNamespace('nats', 'herald.', ['$JS.*', '_INBOX*', '_R_*', '_GR_*', 'raw.*']);
    assert.match(nats.topicProblem('$JS.API.INFO') ?? '', /starting with \$/);
    assert.match(nats.topicProblem('_INBOX.abc') ?? '', /_INBOX/);
    // The server's reply subjects for service imports (_R_.) and gateways (_GR_.), which a forged publish could answer.
    for (const topic of ['_R_.abc.def', '_GR_.xyz.abc']) assert.match(nats.topicProblem(topic) ?? '', /_R_\. or _GR_\./, topic);
    assert.equal(nats.topicProblem('raw.orders'), null);
    assert.equal(new BrokerNamespace('nats', 'herald.', []).topicProblem('$JS.API'), null, 'prefixed, $ is inside Herald\'s namespace: harmless');
  });

  it('on NATS a topic may not make an empty subject token', () => {
    const nats = new BrokerNamespace('nats', 'herald.', ['raw.*', '.*']);
    for (const topic of ['.lead', 'trail.', 'dou..ble', 'raw.x.', '.x']) {
      assert.match(nats.topicProblem(topic) ?? '', /empty token \(leading, trailing or double dot\)/, topic);
    }
    for (const topic of ['chat.room1', 'a', 'ünïcode.ok', 'raw.orders']) assert.equal(nats.topicProblem(topic), null, topic);
    assert.equal(new BrokerNamespace('redis', 'herald:', []).topicProblem('dou..ble.'), null, 'dots mean nothing to Redis');
  });
});
