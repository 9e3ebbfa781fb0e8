import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '@herald/protocol';
import { HTTP_STATUS } from '../../src/index.js';

const DOCS = readFileSync(new URL('../../../../../docs/protocol.md', import.meta.url), 'utf8');

/**
 * The rows of docs/protocol.md's "Error codes" table: every row of that
 * section, so that a row written in another shape is reported instead of
 * silently skipped.
 */
function documentedCodes(): Array<{ code: string; status: number; row: string }> {
  const start = DOCS.indexOf('\n## Error codes\n');
  assert.notEqual(start, -1, 'docs/protocol.md has an "Error codes" section');
  const next = DOCS.indexOf('\n## ', start + 1);
  const section = DOCS.slice(start, next === -1 ? undefined : next);
  const rows = section.split('\n').filter((line) => line.startsWith('|'));
  assert.match(rows[0] ?? '', /^\| code \| meaning \| HTTP status \|$/, 'the table header');
  assert.match(rows[1] ?? '', /^\|( -+ \|)+$/, 'the header separator');
  return rows.slice(2).map((row) => {
    const match = /^\| `([a-z_]+)` \| [^|]+ \| (\d{3}) \|$/.exec(row);
    assert.ok(match, `a row of the error table in the form | \`code\` | meaning | status |: ${row}`);
    return { code: match[1]!, status: Number(match[2]), row };
  });
}

describe('error catalogue', () => {
  it('every code has an HTTP status, and docs/protocol.md shows the same status', () => {
    const documented = new Map(documentedCodes().map(({ code, status }) => [code, status]));
    for (const code of Object.keys(ERROR_CODES) as Array<keyof typeof ERROR_CODES>) {
      assert.equal(typeof HTTP_STATUS[code], 'number', `status for ${code}`);
      assert.equal(documented.get(code), HTTP_STATUS[code], `documented status of ${code}`);
    }
  });

  it('docs/protocol.md documents no code that does not exist, and each code once', () => {
    const seen = new Set<string>();
    for (const { code, row } of documentedCodes()) {
      assert.ok(Object.hasOwn(ERROR_CODES, code), `documented code ${code} is in ERROR_CODES (@herald/protocol): ${row}`);
      assert.ok(!seen.has(code), `${code} is documented once`);
      seen.add(code);
    }
    assert.equal(seen.size, Object.keys(ERROR_CODES).length, 'as many documented codes as codes');
  });

  it('HTTP_STATUS maps exactly the codes of ERROR_CODES', () => {
    assert.deepEqual(Object.keys(HTTP_STATUS).sort(), Object.keys(ERROR_CODES).sort());
  });
});
