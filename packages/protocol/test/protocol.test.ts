import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CLOSE_CODE_MEANINGS, CloseCode, ERROR_CODES, isValidTopic, shouldReconnect, topicProblem } from '../src/index.js';

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
    assert.equal(shouldReconnect(4499), true);
    assert.equal(shouldReconnect(4500), false);
    assert.equal(shouldReconnect(4999), false);
  });
});

describe('topic names', () => {
  it('accepts the documented character set', () => {
    for (const topic of ['news', 'chat:room-1', 'user:123', 'private:orders.42', 'boards:zoo:visits', 'a/b=c+d~e!f#g$h,i@j', 'x'.repeat(255)]) {
      assert.equal(topicProblem(topic), null, topic);
    }
  });

  it('refuses empty, long, spaced, wildcard and control-character names with a reason', () => {
    assert.equal(topicProblem(''), 'topic must not be empty');
    assert.equal(topicProblem('x'.repeat(256)), 'topic is 256 characters long, over the limit of 255');
    assert.equal(topicProblem('x'.repeat(11), 10), 'topic is 11 characters long, over the limit of 10');
    assert.equal(topicProblem(5), 'topic must be a string');
    for (const topic of ['a b', 'a*', 'a>', 'tab\there', 'new\nline', '"quoted"', 'émoji', "it's"]) {
      assert.equal(isValidTopic(topic), false, topic);
      assert.match(topicProblem(topic)!, /contains a character outside/);
    }
  });
});
