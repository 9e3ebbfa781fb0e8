import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, validateConfig, type HeraldConfigInput } from '../../src/config.js';
import type { Policy } from '../../src/policy/policy.js';
import type { Protocol } from '../../src/protocols/protocol.js';
import { RawProtocol } from '../../src/protocols/raw.js';
import { Protocols, type ProtocolsOptions } from '../../src/protocols/registry.js';

/** The registry over a configuration; nothing here runs a command, so the policy and the JSON host are inert. */
function registry(input: HeraldConfigInput = {}, topicProblem: (topic: string) => string | null = () => null): Protocols {
  const options: ProtocolsOptions = {
    config: validateConfig(input),
    policy: {} as Policy,
    json: {} as ProtocolsOptions['json'],
    topicProblem,
    closeSession: () => undefined,
    reportError: () => undefined,
  };
  return new Protocols(options);
}

const none = new Set<string>();
const offer = (...names: string[]): Set<string> => new Set(names);
const nameOf = (protocol: Protocol | null | undefined): string | null | undefined => (protocol ? protocol.codec.name : protocol);

/** Collects the problems of a ConfigError thrown by `fn` (fails when it does not throw one). */
function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `a ConfigError, not ${String(err)}`);
    return err.problems;
  }
  assert.fail('no ConfigError');
}

describe('Protocols.forPath', () => {
  it('by path: wsPath speaks JSON, lhttp.paths speak LHTTP (by default / and /echo), anywhere else nothing (404)', () => {
    const protocols = registry();
    assert.equal(nameOf(protocols.forPath('/ws', none)), 'json');
    assert.equal(nameOf(protocols.forPath('/', none)), 'lhttp');
    assert.equal(nameOf(protocols.forPath('/echo', none)), 'lhttp');
    assert.equal(protocols.forPath('/elsewhere', none), undefined);
    assert.equal(protocols.forPath('/ws/', none), undefined, 'exact paths are exact');
  });

  it('a configured wsPath moves JSON there', () => {
    const protocols = registry({ wsPath: '/live' });
    assert.equal(nameOf(protocols.forPath('/live', none)), 'json');
    assert.equal(protocols.forPath('/ws', none), undefined);
  });

  it('wsPath comes first, even when lhttp.paths match every path', () => {
    const protocols = registry({ lhttp: { paths: ['/*'] } });
    assert.equal(nameOf(protocols.forPath('/ws', none)), 'json');
    assert.equal(nameOf(protocols.forPath('/anything/at/all', none)), 'lhttp');
  });

  it('raw endpoints come before lhttp.paths; the first matching endpoint wins; prefixes match below them', () => {
    const protocols = registry({
      raw: [
        { path: '/echo', topics: ['news'] },
        { path: '/feeds/*', topics: ['feed'] },
        { path: '/feeds/special', topics: ['special'] },
      ],
    });
    const echo = protocols.forPath('/echo', none);
    assert.equal(nameOf(echo), 'raw');
    assert.deepEqual((echo!.handler as RawProtocol).endpoint.topics, ['news'], 'not LHTTP although lhttp.paths has /echo');
    const special = protocols.forPath('/feeds/special', none);
    assert.deepEqual((special!.handler as RawProtocol).endpoint.topics, ['feed'], '/feeds/* is listed first');
    assert.equal(nameOf(protocols.forPath('/feeds/a/b', none)), 'raw');
    assert.equal(nameOf(protocols.forPath('/', none)), 'lhttp');
  });

  it('an offered subprotocol that is spoken wins on any of these paths; the first spoken one in the offer is taken', () => {
    const protocols = registry({ raw: [{ path: '/raw', topics: ['t'] }] });
    assert.equal(nameOf(protocols.forPath('/ws', offer('lhttp'))), 'lhttp');
    assert.equal(nameOf(protocols.forPath('/', offer('json'))), 'json');
    assert.equal(nameOf(protocols.forPath('/raw', offer('json'))), 'json');
    assert.equal(nameOf(protocols.forPath('/ws', offer('mqtt', 'lhttp', 'json'))), 'lhttp');
  });

  it('offering only unknown subprotocols answers null (400); an unknown path stays undefined (404) whatever is offered', () => {
    const protocols = registry({ raw: [{ path: '/raw', topics: ['t'] }] });
    assert.equal(protocols.forPath('/ws', offer('mqtt')), null);
    assert.equal(protocols.forPath('/', offer('mqtt', 'stomp')), null);
    assert.equal(protocols.forPath('/raw', offer('raw')), null, 'raw is not a subprotocol a client can offer');
    assert.equal(protocols.forPath('/nowhere', offer('json')), undefined);
  });

  it('each connection on a path gets the same protocol object (one handler per protocol or endpoint)', () => {
    const protocols = registry({ raw: [{ path: '/raw', topics: ['t'] }] });
    assert.equal(protocols.forPath('/ws', none), protocols.forPath('/ws', offer('json')));
    assert.equal(protocols.forPath('/raw', none), protocols.forPath('/raw', none));
    assert.equal(protocols.forPath('/ws', none)!.handler, protocols.json);
    assert.equal(protocols.forPath('/', none)!.handler, protocols.lhttp);
  });

  it('names lists the subprotocols a client may offer; spoken adds raw only with raw endpoints', () => {
    assert.deepEqual(registry().names, ['json', 'lhttp']);
    assert.deepEqual(registry().spoken, ['json', 'lhttp']);
    const withRaw = registry({ raw: [{ path: '/raw' }] });
    assert.deepEqual(withRaw.names, ['json', 'lhttp']);
    assert.deepEqual(withRaw.spoken, ['json', 'lhttp', 'raw']);
  });
});

describe('Protocols: the raw endpoints are checked at construction', () => {
  it('a raw endpoint at wsPath is refused', () => {
    assert.deepEqual(problemsOf(() => registry({ wsPath: '/live', raw: [{ path: '/live' }] })), ['raw.0.path: /live is wsPath, where the JSON protocol is spoken']);
  });

  it("topics and the publish topic go through the topic rule (Herald's and the broker's)", () => {
    const problem = (topic: string): string | null => (topic.startsWith('bad') ? `${topic} is refused` : null);
    assert.deepEqual(problemsOf(() => registry({ raw: [{ path: '/a', topics: ['ok', 'bad1'], publish: 'bad2' }] }, problem)), ['raw.0: bad1 is refused', 'raw.0: bad2 is refused']);
    assert.doesNotThrow(() => registry({ raw: [{ path: '/a', topics: ['ok'], publish: false }] }, problem));
  });

  it('more topics than a connection may hold, or subscribe at once, is refused naming the smaller limit', () => {
    const topics = (n: number): string[] => Array.from({ length: n }, (_, i) => `t${i}`);
    assert.deepEqual(problemsOf(() => registry({ limits: { maxTopicsPerConnection: 3, subscriptionBurst: 5 }, raw: [{ path: '/a', topics: topics(4) }] })), [
      'raw.0.topics: 4 topics, over limits.maxTopicsPerConnection (3)',
    ]);
    assert.deepEqual(problemsOf(() => registry({ limits: { maxTopicsPerConnection: 5, subscriptionBurst: 3 }, raw: [{ path: '/a', topics: topics(4) }] })), [
      'raw.0.topics: 4 topics, over limits.subscriptionBurst (3)',
    ]);
    assert.doesNotThrow(() => registry({ limits: { maxTopicsPerConnection: 3, subscriptionBurst: 3 }, raw: [{ path: '/a', topics: topics(3) }] }), 'at the limit');
  });

  it('every problem of every endpoint is reported at once, by index', () => {
    const problems = problemsOf(() =>
      registry({ raw: [{ path: '/ok', topics: ['fine'] }, { path: '/ws', topics: ['x y'] }, { path: '/b', publish: 'p q' }] }, (topic) => (topic.includes(' ') ? `"${topic}" has a space` : null)),
    );
    assert.deepEqual(problems, ['raw.1.path: /ws is wsPath, where the JSON protocol is spoken', 'raw.1: "x y" has a space', 'raw.2: "p q" has a space']);
  });
});
