import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PathPatterns, pathPatternProblem } from '../../src/util/paths.js';

describe('PathPatterns', () => {
  it('an exact pattern matches only that path', () => {
    const patterns = new PathPatterns(['/echo']);
    assert.equal(patterns.matches('/echo'), true);
    for (const path of ['/echo/', '/echo2', '/ech', '/', '/Echo']) assert.equal(patterns.matches(path), false, path);
  });

  it('a pattern ending in * matches its prefix and everything under it, not the path without its slash', () => {
    const patterns = new PathPatterns(['/chat/*']);
    for (const path of ['/chat/', '/chat/room-1', '/chat/a/b']) assert.equal(patterns.matches(path), true, path);
    for (const path of ['/chat', '/chatroom', '/', '/other/chat/']) assert.equal(patterns.matches(path), false, path);
  });

  it('/* matches every path; several patterns match any of them; none matches nothing', () => {
    assert.equal(new PathPatterns(['/*']).matches('/anything/at/all'), true);
    const several = new PathPatterns(['/', '/echo', '/rooms/*']);
    assert.deepEqual(['/', '/echo', '/rooms/1', '/x'].map((path) => several.matches(path)), [true, true, true, false]);
    assert.equal(new PathPatterns([]).matches('/'), false);
  });
});

describe('pathPatternProblem', () => {
  it('accepts exact paths and prefixes ending in *', () => {
    for (const pattern of ['/', '/echo', '/chat/*', '/*', '/a-b_c.d~e/%20']) assert.equal(pathPatternProblem(pattern), null, pattern);
  });

  it('refuses a pattern that does not start with /', () => {
    for (const pattern of ['', 'echo', '*', 'http://x/']) assert.match(pathPatternProblem(pattern) ?? '', /must start with "\/"/, pattern);
  });

  it('refuses a * anywhere but at the end', () => {
    for (const pattern of ['/*/x', '/a*b', '/**', '/chat/*/']) assert.match(pathPatternProblem(pattern) ?? '', /"\*" may only end a pattern/, pattern);
  });

  it('refuses spaces, query strings and fragments', () => {
    for (const pattern of ['/a b', '/echo?x=1', '/page#top', '/tab\there', '/line\n']) assert.match(pathPatternProblem(pattern) ?? '', /must not contain spaces, "\?" or "#"/, JSON.stringify(pattern));
  });
});
