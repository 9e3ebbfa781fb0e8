import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CLOSE_CODE_MEANINGS, CloseCode, ERROR_CODES, isValidTopic, shouldReconnect, topicProblem, utf8Length } from '../src/index.js';

const DOCS = readFileSync(new URL('../../../../docs/protocol.md', import.meta.url), 'utf8');

describe('error codes', () => {
  it('are short snake_case words', () => {
    for (const code of Object.keys(ERROR_CODES)) assert.match(code, /^[a-z]+(_[a-z]+)*$/);
  });

  it('docs/protocol.md lists exactly the codes of the catalogue', () => {
    const documented = new Set([...DOCS.matchAll(/^\| `([a-z_]+)` \| [^|]+ \| \d{3} \|/gm)].map((m) => m[1]));
    assert.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
  });
});

describe('close codes', () => {
  it('docs/protocol.md lists every close code Herald uses', () => {
    for (const code of Object.values(CloseCode)) assert.match(DOCS, new RegExp(`^\\| ${code} \\|`, 'm'), `close code ${code} documented`);
    for (const code of Object.values(CloseCode)) assert.ok(CLOSE_CODE_MEANINGS[code], `meaning of ${code}`);
  });

  it('tell clients when to reconnect', () => {
    assert.equal(shouldReconnect(CloseCode.NORMAL), false);
    assert.equal(shouldReconnect(CloseCode.POLICY_VIOLATION), false);
    assert.equal(shouldReconnect(CloseCode.UNAUTHORIZED), false);
    assert.equal(shouldReconnect(CloseCode.FORBIDDEN), false);
    assert.equal(shouldReconnect(CloseCode.DISCONNECTED), false);
    assert.equal(shouldReconnect(CloseCode.GOING_AWAY), true);
    assert.equal(shouldReconnect(1006), true);
    assert.equal(shouldReconnect(CloseCode.MESSAGE_TOO_BIG), true);
    assert.equal(shouldReconnect(CloseCode.TRY_AGAIN_LATER), true);
    assert.equal(shouldReconnect(CloseCode.TOKEN_EXPIRED), true);
    assert.equal(shouldReconnect(CloseCode.IDENTITY_REVOKED), true);
    assert.equal(shouldReconnect(4499), true);
    assert.equal(shouldReconnect(4500), false);
    assert.equal(shouldReconnect(4999), false);
  });
});

describe('topic names', () => {
  it('accepts printable Unicode: letters of any script, punctuation, symbols', () => {
    for (const topic of ['news', 'chat:room-1', 'user:123', 'private:orders.42', 'boards:zoo:visits', 'a/b=c+d~e!f#g$h,i@j', 'x'.repeat(255), '聊天室', 'café', 'a&b', "it's", '"quoted"', 'émoji-🎉', 'q?x=1%20']) {
      assert.equal(topicProblem(topic), null, topic);
    }
  });

  it('counts the limit in bytes of UTF-8, not characters', () => {
    assert.equal(topicProblem('x'.repeat(256)), 'topic is 256 bytes long, over the limit of 255');
    assert.equal(topicProblem('x'.repeat(11), 10), 'topic is 11 bytes long, over the limit of 10');
    // 85 × 3 bytes = 255: fits; one more character does not.
    assert.equal(topicProblem('聊'.repeat(85)), null);
    assert.equal(topicProblem('聊'.repeat(86)), 'topic is 258 bytes long, over the limit of 255');
    assert.equal(topicProblem('🎉'.repeat(3), 11), 'topic is 12 bytes long, over the limit of 11');
    assert.equal(utf8Length('a\u00e9聊🎉'), 1 + 2 + 3 + 4);
  });

  it('refuses empty names, whitespace, wildcards, | and control or format characters, naming the character', () => {
    assert.equal(topicProblem(''), 'topic must not be empty');
    assert.equal(topicProblem(5), 'topic must be a string');
    const cases: Array<[string, string]> = [
      ['a b', 'U+0020'],
      ['a\u3000b', 'U+3000'],
      ['a*', '*'],
      ['a>', '>'],
      ['herald|cluster', '|'],
      ['tab\there', 'U+0009'],
      ['new\nline', 'U+000A'],
      ['nul\u0000', 'U+0000'],
      ['rtl\u202Eevil', 'U+202E'],
      ['zero\u200Bwidth', 'U+200B'],
      ['lone\uD800', 'U+D800'],
    ];
    for (const [topic, shown] of cases) {
      assert.equal(isValidTopic(topic), false, topic);
      assert.equal(topicProblem(topic), `topic ${JSON.stringify(topic)} contains ${shown}: topics are printable characters other than whitespace, * > and |`);
    }
  });
});
