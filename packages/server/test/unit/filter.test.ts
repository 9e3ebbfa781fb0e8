import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeraldError } from '../../src/errors.js';
import { compileFilter, FILTER_LIMITS } from '../../src/util/filter.js';

const EU3 = { region: 'eu', level: '3' };
const US10 = { region: 'us', level: '10' };
const ODD = { region: 'apac', level: 'high' };
const NONE = undefined;
const EMPTY = {};

/** What the compiled filter says for each tag set, in order: EU3, US10, ODD, EMPTY, NONE. */
function verdicts(spec: unknown): boolean[] {
  const filter = compileFilter(spec);
  return [EU3, US10, ODD, EMPTY, NONE].map((tags) => filter(tags));
}

function refusal(spec: unknown): string {
  try {
    compileFilter(spec);
  } catch (err) {
    assert.ok(err instanceof HeraldError, `a HeraldError for ${JSON.stringify(spec)}`);
    assert.equal(err.code, 'bad_request');
    return err.message;
  }
  assert.fail(`compiled ${JSON.stringify(spec)}`);
}

/** A filter nested `depth` operators deep (not inside not inside ... eq). */
function nested(depth: number): unknown {
  let spec: unknown = { eq: ['region', 'eu'] };
  for (let i = 1; i < depth; i++) spec = { not: spec };
  return spec;
}

describe('filter compiler', () => {
  it('eq and ne: the tag present and equal / different; a missing tag is false for both; a number compares as its text', () => {
    assert.deepEqual(verdicts({ eq: ['region', 'eu'] }), [true, false, false, false, false]);
    assert.deepEqual(verdicts({ ne: ['region', 'eu'] }), [false, true, true, false, false]);
    assert.deepEqual(verdicts({ eq: ['level', 3] }), [true, false, false, false, false]);
    assert.deepEqual(verdicts({ eq: ['nope', 'x'] }), [false, false, false, false, false]);
  });

  it('in: one of the values', () => {
    assert.deepEqual(verdicts({ in: ['region', ['eu', 'us']] }), [true, true, false, false, false]);
    assert.deepEqual(verdicts({ in: ['level', [10, 'high']] }), [false, true, true, false, false]);
  });

  it('gt, gte, lt, lte: on the numeric value; a missing or non-numeric tag is false', () => {
    assert.deepEqual(verdicts({ gt: ['level', 3] }), [false, true, false, false, false], 'numeric, not text order ("10" > 3)');
    assert.deepEqual(verdicts({ gte: ['level', 3] }), [true, true, false, false, false]);
    assert.deepEqual(verdicts({ lt: ['level', 10] }), [true, false, false, false, false]);
    assert.deepEqual(verdicts({ lte: ['level', 10] }), [true, true, false, false, false]);
    const gt = compileFilter({ gt: ['v', 0] });
    assert.deepEqual(['1.5', '-2', '1e3', '', ' 1', '0x10', 'Infinity', 'NaN', '.5'].map((v) => gt({ v })), [true, false, true, false, false, false, false, false, true]);
  });

  it('and, or, not: combined; not turns a missing tag around', () => {
    assert.deepEqual(verdicts({ and: [{ eq: ['region', 'eu'] }, { gte: ['level', 3] }] }), [true, false, false, false, false]);
    assert.deepEqual(verdicts({ or: [{ eq: ['region', 'apac'] }, { gt: ['level', 5] }] }), [false, true, true, false, false]);
    assert.deepEqual(verdicts({ not: { eq: ['region', 'eu'] } }), [false, true, true, true, true]);
    assert.deepEqual(verdicts({ and: [{ eq: ['region', 'eu'] }] }), [true, false, false, false, false], 'one branch');
    assert.deepEqual(verdicts({ or: [{ eq: ['region', 'x'] }, { eq: ['region', 'y'] }, { eq: ['level', 'high'] }] }), [false, false, true, false, false], 'three branches');
    assert.deepEqual(verdicts({ and: [{ ne: ['region', 'x'] }, { ne: ['region', 'y'] }, { lt: ['level', 5] }] }), [true, false, false, false, false]);
  });

  it('a tag name that Object.prototype has finds nothing', () => {
    for (const name of ['constructor', 'toString', 'hasOwnProperty', 'valueOf']) {
      assert.equal(compileFilter({ ne: [name, 'x'] })({}), false, name);
      assert.equal(compileFilter({ in: [name, ['x']] })({}), false, name);
      assert.equal(compileFilter({ gte: [name, 0] })({}), false, name);
    }
    assert.equal(compileFilter({ eq: ['constructor', 'x'] })(JSON.parse('{"constructor":"x"}')), true, 'an own tag of that name is found');
  });

  it('refuses what is not the grammar, saying where', () => {
    const cases: Array<[unknown, RegExp]> = [
      [null, /^filter: a filter is an object/],
      ['eq', /^filter: a filter is an object/],
      [[], /^filter: a filter is an object/],
      [{}, /exactly one operator, not 0/],
      [{ eq: ['a', 'b'], ne: ['a', 'b'] }, /exactly one operator, not 2/],
      [{ like: ['a', 'b'] }, /unknown operator "like"/],
      [{ eq: ['a'] }, /^filter\.eq: needs \[tag, value\]/],
      [{ eq: 'a' }, /^filter\.eq: needs \[tag, value\]/],
      [{ eq: ['', 'b'] }, /^filter\.eq\[0\]: a tag name/],
      [{ eq: ['x'.repeat(65), 'b'] }, /^filter\.eq\[0\]: a tag name/],
      [{ eq: ['a', true] }, /^filter\.eq\[1\]: a value is a string or a finite number/],
      [{ eq: ['a', 'v'.repeat(257)] }, /at most 256 characters/],
      [{ in: ['a', []] }, /^filter\.in\[1\]: needs an array of 1 to 64 values/],
      [{ in: ['a', Array.from({ length: 65 }, (_, i) => String(i))] }, /1 to 64 values/],
      [{ in: ['a', ['x', null]] }, /^filter\.in\[1\]\[1\]: a value/],
      [{ gt: ['a', '3'] }, /^filter\.gt\[1\]: needs a finite number/],
      [{ lte: ['a', Infinity] }, /needs a finite number/],
      [{ and: [] }, /^filter\.and: needs an array of 1 to 16 filters/],
      [{ or: { eq: ['a', 'b'] } }, /^filter\.or: needs an array/],
      [{ and: [{ eq: ['a', 'b'] }, { gt: ['a', 'x'] }] }, /^filter\.and\[1\]\.gt\[1\]: needs a finite number/],
      [{ not: [{ eq: ['a', 'b'] }] }, /^filter\.not: a filter is an object/],
      [JSON.parse('{"eq":["__proto__","x"]}'), /^filter\.eq\[0\]: the tag name "__proto__" is reserved/],
      [{ in: ['__proto__', ['x']] }, /^filter\.in\[0\]: the tag name "__proto__" is reserved/],
      [{ eq: ['a\u0000b', 'x'] }, /^filter\.eq\[0\]: a tag name holds no control or format characters/],
      [{ ne: ['a\u200eb', 'x'] }, /^filter\.ne\[0\]: a tag name holds no control or format characters/],
      [{ gt: ['a\u2028', 1] }, /^filter\.gt\[0\]: a tag name holds no control or format characters/],
    ];
    for (const [spec, message] of cases) assert.match(refusal(spec), message, JSON.stringify(spec).slice(0, 80));
  });

  it('bounds: depth and operator count', () => {
    assert.equal(compileFilter(nested(FILTER_LIMITS.maxDepth))({ region: 'x' }), true, `${FILTER_LIMITS.maxDepth} deep is allowed (seven nots around a false eq)`);
    assert.match(refusal(nested(FILTER_LIMITS.maxDepth + 1)), /nested deeper than 8 levels/);
    // 16 × 4 = 64 leaves plus the ors and the and: over 64 operators.
    const wide = { and: Array.from({ length: 16 }, () => ({ or: Array.from({ length: 4 }, () => ({ eq: ['a', 'b'] })) })) };
    assert.match(refusal(wide), /more than 64 operators/);
    const fits = { and: Array.from({ length: 9 }, () => ({ or: Array.from({ length: 6 }, () => ({ eq: ['a', 'b'] })) })) };
    assert.equal(compileFilter(fits)({ a: 'b' }), true, '1 + 9 + 54 = 64 operators');
    assert.match(refusal({ and: Array.from({ length: 17 }, () => ({ eq: ['a', 'b'] })) }), /1 to 16 filters/);
  });
});
