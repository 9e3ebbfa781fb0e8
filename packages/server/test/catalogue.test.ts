import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES } from '@herald/protocol';
import { HTTP_STATUS } from '../src/index.js';

const DOCS = readFileSync(new URL('../../../../docs/protocol.md', import.meta.url), 'utf8');

describe('error catalogue', () => {
  it('every code has an HTTP status, and docs/protocol.md shows the same status', () => {
    const documented = new Map([...DOCS.matchAll(/^\| `([a-z_]+)` \| [^|]+ \| (\d{3}) \|/gm)].map((m) => [m[1]!, Number(m[2])]));
    for (const code of Object.keys(ERROR_CODES) as Array<keyof typeof ERROR_CODES>) {
      assert.equal(typeof HTTP_STATUS[code], 'number', `status for ${code}`);
      assert.equal(documented.get(code), HTTP_STATUS[code], `documented status of ${code}`);
    }
  });
});
