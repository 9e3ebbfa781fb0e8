import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startupWarnings, validateConfig, type HeraldConfigInput, type StartupFacts } from '../../src/config.js';

const KEY = 'an-api-key-of-some-length';

/** A configuration that warns about nothing, with `input` over it. */
const quiet = (input: HeraldConfigInput = {}): HeraldConfigInput => ({ apiKeys: [KEY], ...input });
const facts = (over: Partial<StartupFacts> = {}): StartupFacts => ({ historyShared: false, brokerName: 'memory', rawNamespaces: [], credentialsConfigured: false, ...over });
const messages = (input: HeraldConfigInput, over: Partial<StartupFacts> = {}): string[] => startupWarnings(validateConfig(input), facts(over)).map((w) => w.message);

describe('startupWarnings', () => {
  it('a configuration with API keys, no history, no demo backend, no raw topics warns about nothing', () => {
    assert.deepEqual(messages(quiet()), []);
  });

  it('no API keys: the HTTP API answers loopback callers only', () => {
    assert.deepEqual(messages({}), ['no apiKeys configured: the HTTP API answers loopback callers only (configure apiKeys to open it to other hosts)']);
  });

  it("history in each process's memory warns only with a broker that spans processes", () => {
    const history = quiet({ history: [{ pattern: 'h:*' }] });
    assert.deepEqual(messages(history), [], 'memory broker: one process, offsets are exact');
    assert.deepEqual(messages(history, { historyShared: true, brokerName: 'redis' }), [], 'shared history');
    assert.deepEqual(messages(history, { brokerName: 'nats' }), ["history is kept in each process's memory: with several nodes or workers, offsets are per node (use the redis broker for a shared history)"]);
    assert.deepEqual(messages(quiet(), { brokerName: 'nats' }), [], 'no history: nothing to say');
  });

  it('the demo backend warns only when the demo is on with it', () => {
    assert.deepEqual(messages(quiet({ demo: { enabled: true, backend: true } })), ['demo.backend is on: /demo/* mints tokens for any uid to callers on this machine; turn it off in production']);
    assert.deepEqual(messages(quiet({ demo: { enabled: false, backend: true } })), []);
    assert.deepEqual(messages(quiet({ demo: { enabled: true } })), []);
  });

  it("raw topics outside Herald's namespace warn per broker namespace, naming channels or subjects, with the topics as detail", () => {
    const warnings = startupWarnings(
      validateConfig(quiet()),
      facts({
        rawNamespaces: [
          { kind: 'redis', prefix: 'herald:', rawTopics: ['bookings', 'feed*'] },
          { kind: 'nats', prefix: 'herald.', rawTopics: [] },
          { kind: 'nats', prefix: 'h.', rawTopics: ['lhttp.*'] },
        ],
      }),
    );
    assert.deepEqual(warnings, [
      {
        detail: { rawTopics: ['bookings', 'feed*'] },
        message: 'redis.rawTopics: these topics are bare redis channels, outside Herald\'s namespace "herald:": any redis client can publish to them and read them',
      },
      {
        detail: { rawTopics: ['lhttp.*'] },
        message: 'nats.rawTopics: these topics are bare nats subjects, outside Herald\'s namespace "h.": any nats client can publish to them and read them',
      },
    ]);
  });

  it('insecureUidLogin warns', () => {
    assert.deepEqual(messages(quiet({ auth: { insecureUidLogin: true } })), ['auth.insecureUidLogin is on: any client can claim any uid with {"uid":...}; use it only on a trusted network']);
  });

  it('credentials without allowedOrigins warn; with allowedOrigins, or without credentials, not', () => {
    const warning = 'credentials are configured but allowedOrigins is empty: browsers on any origin may connect';
    assert.deepEqual(messages(quiet(), { credentialsConfigured: true }), [warning]);
    assert.deepEqual(messages(quiet({ allowedOrigins: ['https://app.example.com'] }), { credentialsConfigured: true }), []);
    assert.deepEqual(messages(quiet()), []);
  });

  it('several warnings come in a fixed order', () => {
    const all = messages({ history: [{ pattern: 'h' }], demo: { enabled: true, backend: true }, auth: { insecureUidLogin: true } }, { brokerName: 'nats', credentialsConfigured: true });
    assert.deepEqual(all.map((message) => message.split(/[: ]/)[0]), ['no', 'history', 'demo.backend', 'auth.insecureUidLogin', 'credentials']);
  });
});
