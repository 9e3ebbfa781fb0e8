import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { optionNames } from '../../src/config.js';

const DOC = readFileSync(new URL('../../../../../docs/configuration.md', import.meta.url), 'utf8');

describe('docs/configuration.md', () => {
  const documented = new Set([...DOC.matchAll(/^\| `([A-Za-z.]+)` \|/gm)].map((m) => m[1]!));
  const options = optionNames();

  it('documents every option of the schema', () => {
    assert.ok(options.length > 15, `found ${options.length} options`);
    for (const name of options) assert.ok(documented.has(name), `${name} is documented`);
  });

  it('documents no option the schema does not have', () => {
    for (const name of documented) assert.ok(options.includes(name), `${name} exists in the schema`);
  });
});
