import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeLhttp, decodeLhttpWithBytes, encodeLhttp, LhttpError, lhttpGate, splitMultipart } from '../src/index.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const headersOf = (text: string): Record<string, string> => Object.fromEntries(decodeLhttp(text).headers);

describe('LHTTP gate (frames the original skips silently)', () => {
  it('skips 9 bytes or less, more than 40960 bytes, and anything not starting with LHTTP/1.0', () => {
    assert.equal(lhttpGate(bytes('LHTTP/1.0')), 'too_short');
    assert.equal(lhttpGate(bytes('LHTTP/1.0 ')), null);
    const atLimit = `LHTTP/1.0 c\r\n\r\n${'x'.repeat(40960 - 15)}`;
    assert.equal(bytes(atLimit).length, 40960);
    assert.equal(lhttpGate(bytes(atLimit)), null);
    assert.equal(lhttpGate(bytes(`${atLimit}x`)), 'too_long');
    assert.equal(lhttpGate(bytes('LHTTP/1.1 chat\r\n\r\n')), 'not_lhttp');
    assert.equal(lhttpGate(bytes('lhttp/1.0 chat\r\n\r\n')), 'not_lhttp');
    assert.equal(lhttpGate(bytes('{"action":"subscribe"}')), 'not_lhttp');
  });
});

describe('LHTTP decode (golden frames from the original parser)', () => {
  it('reads the chat demo frames', () => {
    const subscribe = decodeLhttp('LHTTP/1.0 chat\r\nsubscribe:chatroom\r\n\r\n');
    assert.equal(subscribe.command, 'chat');
    assert.deepEqual([...subscribe.headers], [['subscribe', 'chatroom']]);
    assert.equal(subscribe.body, '');
    const publish = decodeLhttp('LHTTP/1.0 chat\r\npublish:chatroom\r\n\r\nhello everyone');
    assert.deepEqual(Object.fromEntries(publish.headers), { publish: 'chatroom' });
    assert.equal(publish.body, 'hello everyone');
  });

  it('does not trim, keeps case, splits at the first colon', () => {
    assert.deepEqual(headersOf('LHTTP/1.0 c\r\nsubscribe: a\r\nSubscribe:b\r\n\r\n'), { subscribe: ' a', Subscribe: 'b' });
    assert.deepEqual(headersOf('LHTTP/1.0 c\r\nupstream:POST http://x:8080/p?a=b:c\r\n\r\n'), { upstream: 'POST http://x:8080/p?a=b:c' });
  });

  it('lets a later duplicate overwrite, keeping the first position', () => {
    const message = decodeLhttp('LHTTP/1.0 c\r\na:1\r\nb:2\r\na:3\r\n\r\n');
    assert.deepEqual([...message.headers], [['a', '3'], ['b', '2']]);
  });

  it('gives a line without colon the key ""', () => {
    assert.deepEqual(headersOf('LHTTP/1.0 c\r\nno colon here\r\n\r\nbody'), { '': 'no colon here' });
  });

  it('makes the bogus header "" → "" when there are no headers at all', () => {
    const message = decodeLhttp('LHTTP/1.0 cmd\r\n\r\nbody');
    assert.deepEqual([...message.headers], [['', '']]);
    assert.equal(message.body, 'body');
  });

  it('ends the headers at a header with an empty value (which is not stored)', () => {
    const message = decodeLhttp('LHTTP/1.0 c\r\na:\r\nb:c\r\n\r\nX');
    assert.deepEqual([...message.headers], []);
    assert.equal(message.body, 'b:c\r\n\r\nX');
  });

  it('tolerates a missing blank line, and reads a last line without CRLF as body', () => {
    const noBlank = decodeLhttp('LHTTP/1.0 c\r\nsubscribe:x\r\n');
    assert.deepEqual(Object.fromEntries(noBlank.headers), { subscribe: 'x' });
    assert.equal(noBlank.body, '');
    const noCrlf = decodeLhttp('LHTTP/1.0 c\r\nsubscribe:x');
    assert.deepEqual([...noCrlf.headers], []);
    assert.equal(noCrlf.body, 'x');
  });

  it('keeps CRLFs and colons in the body after the first blank line', () => {
    assert.equal(decodeLhttp('LHTTP/1.0 c\r\na:b\r\n\r\nline1\r\n\r\nk:v\r\n').body, 'line1\r\n\r\nk:v\r\n');
  });

  it('takes the command as the raw bytes from 10 to the first CRLF', () => {
    assert.equal(decodeLhttp('LHTTP/1.0  chat\r\n\r\n').command, ' chat');
    assert.equal(decodeLhttp('LHTTP/1.0 chat extra\r\n\r\n').command, 'chat extra');
    assert.equal(decodeLhttp('LHTTP/1.0Xchat\r\n\r\n').command, 'chat');
    assert.equal(decodeLhttp('LHTTP/1.0 \r\n\r\n').command, '');
  });

  it('reads UTF-8 commands, headers and bodies', () => {
    const message = decodeLhttp('LHTTP/1.0 聊天\r\nname:张三\r\n\r\n你好 ✓');
    assert.equal(message.command, '聊天');
    assert.deepEqual(Object.fromEntries(message.headers), { name: '张三' });
    assert.equal(message.body, '你好 ✓');
  });

  it('throws LhttpError where the original crashed: no CRLF, or CRLF before byte 10', () => {
    assert.throws(() => decodeLhttp('LHTTP/1.0 chat'), LhttpError);
    assert.throws(() => decodeLhttp('LHTTP/1.0 chat\nsubscribe:x\n\n'), LhttpError);
    assert.throws(() => decodeLhttp('LHTTP/1.0\r\nsubscribe:x\r\n\r\n'), LhttpError);
  });
});

describe('LHTTP encode', () => {
  it('writes the start line, k:v lines in insertion order, a blank line and the body', () => {
    const text = encodeLhttp({ command: 'auth', headers: [['content-type', 'image/png'], ['publish', 'a b']], body: 'hi' });
    assert.equal(text, 'LHTTP/1.0 auth\r\ncontent-type:image/png\r\npublish:a b\r\n\r\nhi');
  });

  it('round-trips what it writes', () => {
    const cases = [
      { command: 'chat', headers: [['subscribe', 'room1 room2']] as Array<[string, string]>, body: 'body\r\nwith lines' },
      { command: '聊天', headers: [['k', 'v:with:colons']] as Array<[string, string]>, body: '' },
    ];
    for (const message of cases) {
      const decoded = decodeLhttp(encodeLhttp(message));
      assert.equal(decoded.command, message.command);
      assert.deepEqual([...decoded.headers], message.headers);
      assert.equal(decoded.body, message.body);
    }
  });
});

describe('LHTTP multipart', () => {
  it('splits the body at byte offsets into parts with their own headers (the source example)', () => {
    const { bodyBytes } = decodeLhttpWithBytes('LHTTP/1.0 upload\r\nmultipart:0 14\r\n\r\nk1:v1\r\n\r\nbody1k2:v2\r\n\r\nbody2');
    const parts = splitMultipart('0 14', bodyBytes);
    assert.deepEqual(parts.map((p) => [Object.fromEntries(p.headers), p.body]), [
      [{ k1: 'v1' }, 'body1'],
      [{ k2: 'v2' }, 'body2'],
    ]);
  });

  it('counts offsets in bytes, ignores bytes before the first one, and reads "\\r\\n\\r\\nbody" as {"":""}', () => {
    const body = 'junk\r\n\r\n✓✓k:v\r\n\r\nend';
    const { bodyBytes } = decodeLhttpWithBytes(`LHTTP/1.0 c\r\na:b\r\n\r\n${body}`);
    const parts = splitMultipart('4 14', bodyBytes);
    assert.deepEqual(Object.fromEntries(parts[0]!.headers), { '': '' });
    assert.equal(parts[0]!.body, '✓✓');
    assert.deepEqual(Object.fromEntries(parts[1]!.headers), { k: 'v' });
    assert.equal(parts[1]!.body, 'end');
  });

  it('refuses bad offsets and parts without a blank line', () => {
    const { bodyBytes } = decodeLhttpWithBytes('LHTTP/1.0 c\r\na:b\r\n\r\nk:v\r\n\r\nxyz');
    assert.throws(() => splitMultipart('0 x', bodyBytes), /not a number/);
    assert.throws(() => splitMultipart('0  5', bodyBytes), /not a number/);
    assert.throws(() => splitMultipart('5 0', bodyBytes), /must not decrease/);
    assert.throws(() => splitMultipart('-1', bodyBytes), /outside the body/);
    assert.throws(() => splitMultipart('0 99', bodyBytes), /outside the body/);
    assert.throws(() => splitMultipart('0 3', bodyBytes), /no blank line/);
  });
});

describe('LHTTP property: random input never throws anything but LhttpError', () => {
  it('holds for 20,000 random frames', () => {
    let state = 42;
    const random = (): number => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const alphabet = ['L', 'H', 'T', 'P', '/', '1', '.', '0', ' ', '\r', '\n', ':', 'a', 'b', '✓', '\u0000', 'LHTTP/1.0 ', '\r\n', '\r\n\r\n', 'multipart:'];
    for (let n = 0; n < 20_000; n++) {
      let text = random() < 0.7 ? 'LHTTP/1.0 ' : '';
      const len = Math.floor(random() * 30);
      for (let i = 0; i < len; i++) text += alphabet[Math.floor(random() * alphabet.length)];
      for (const run of [() => decodeLhttp(text), () => splitMultipart(text.slice(0, 8), text)]) {
        try {
          run();
        } catch (err) {
          assert.ok(err instanceof LhttpError, `${JSON.stringify(text)} threw ${String(err)}`);
        }
      }
    }
  });
});
