import { HeraldError } from '../errors.js';
import { INVISIBLE } from './invisible.js';

/**
 * A subscription's filter on publication tags (docs/backend.md, "Tags and
 * filters"), compiled once per subscription by `compileFilter` into a
 * closure: delivery calls it with the publication's tags and interprets
 * nothing. `undefined` tags (a publication without any) are a publication
 * whose every tag is missing.
 */
export type TagFilter = (tags: Readonly<Record<string, string>> | undefined) => boolean;

/**
 * The grammar, as JSON (one operator per object):
 *
 *     {"eq":  [tag, value]}            the tag is present and equals value
 *     {"ne":  [tag, value]}            the tag is present and differs from value
 *     {"in":  [tag, [value, ...]]}     the tag is present and is one of the values (1 to 64)
 *     {"gt"|"gte"|"lt"|"lte": [tag, number]}   the tag's numeric value compares so;
 *                                      a missing or non-numeric tag is false
 *     {"and": [filter, ...]}           every one holds (1 to 16 filters)
 *     {"or":  [filter, ...]}           at least one holds (1 to 16 filters)
 *     {"not": filter}                  the filter does not hold
 *
 * A value is a string (or a finite number, compared as its decimal text:
 * `{"eq":["level",3]}` matches the tag `"3"`). A missing tag makes eq, ne,
 * in and the comparisons false; `not` turns that around
 * (`{"not":{"eq":["region","eu"]}}` holds for a publication without
 * `region`). Bounds: at most 64 operators in all, nested at most 8 deep;
 * tag names 1 to 64 characters (no control or format character, not
 * `__proto__`), values at most 256.
 */
export const FILTER_LIMITS = Object.freeze({ maxNodes: 64, maxDepth: 8, maxBranches: 16, maxValues: 64, maxNameLength: 64, maxValueLength: 256 });

const COMPARISONS = new Set(['gt', 'gte', 'lt', 'lte']);

/** A tag's numeric value: decimal notation only (no hex, no blanks, no empty string), else NaN. */
const NUMERIC = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function numeric(value: string | undefined): number {
  return typeof value === 'string' && NUMERIC.test(value) ? Number(value) : NaN;
}

/**
 * Compiles a filter (the grammar above) into a closure; throws
 * `HeraldError('bad_request')` naming where the filter is wrong
 * (`filter.and[1].eq: ...`, from `root`: the name the filter came under,
 * `filter` unless told), or over a bound.
 */
export function compileFilter(spec: unknown, root = 'filter'): TagFilter {
  const budget = { nodes: 0 };
  return compile(spec, root, 1, budget);
}

function fail(where: string, message: string): never {
  throw new HeraldError('bad_request', `${where}: ${message}`);
}

function compile(spec: unknown, where: string, depth: number, budget: { nodes: number }): TagFilter {
  if (depth > FILTER_LIMITS.maxDepth) fail(where, `nested deeper than ${FILTER_LIMITS.maxDepth} levels`);
  if (++budget.nodes > FILTER_LIMITS.maxNodes) fail(where, `more than ${FILTER_LIMITS.maxNodes} operators in one filter`);
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) fail(where, 'a filter is an object with one operator: eq, ne, in, gt, gte, lt, lte, and, or, not');
  const keys = Object.keys(spec);
  if (keys.length !== 1) fail(where, `a filter has exactly one operator, not ${keys.length} (${keys.slice(0, 4).join(', ')})`);
  const op = keys[0]!;
  const arg = (spec as Record<string, unknown>)[op];
  const here = `${where}.${op}`;
  switch (op) {
    case 'and':
    case 'or': {
      if (!Array.isArray(arg) || arg.length === 0 || arg.length > FILTER_LIMITS.maxBranches) fail(here, `needs an array of 1 to ${FILTER_LIMITS.maxBranches} filters`);
      const parts = arg.map((part, i) => compile(part, `${here}[${i}]`, depth + 1, budget));
      if (parts.length === 1) return parts[0]!;
      if (parts.length === 2) {
        const [a, b] = parts as [TagFilter, TagFilter];
        return op === 'and' ? (tags) => a(tags) && b(tags) : (tags) => a(tags) || b(tags);
      }
      if (op === 'and') {
        return (tags) => {
          for (const part of parts) if (!part(tags)) return false;
          return true;
        };
      }
      return (tags) => {
        for (const part of parts) if (part(tags)) return true;
        return false;
      };
    }
    case 'not': {
      const inner = compile(arg, here, depth + 1, budget);
      return (tags) => !inner(tags);
    }
    case 'eq':
    case 'ne': {
      const [name, value] = pair(arg, here);
      const text = valueText(value, `${here}[1]`);
      if (op === 'eq') return (tags) => tags !== undefined && tags[name] === text;
      return (tags) => {
        const tag = tags?.[name];
        return typeof tag === 'string' && tag !== text;
      };
    }
    case 'in': {
      const [name, values] = pair(arg, here);
      if (!Array.isArray(values) || values.length === 0 || values.length > FILTER_LIMITS.maxValues) fail(`${here}[1]`, `needs an array of 1 to ${FILTER_LIMITS.maxValues} values`);
      const set = new Set(values.map((value, i) => valueText(value, `${here}[1][${i}]`)));
      return (tags) => {
        const tag = tags?.[name];
        return typeof tag === 'string' && set.has(tag);
      };
    }
    default: {
      if (!COMPARISONS.has(op)) fail(where, `unknown operator ${JSON.stringify(op.slice(0, 40))} (eq, ne, in, gt, gte, lt, lte, and, or, not)`);
      const [name, bound] = pair(arg, here);
      if (typeof bound !== 'number' || !Number.isFinite(bound)) fail(`${here}[1]`, 'needs a finite number');
      // NaN (missing or non-numeric tag) compares false with every operator.
      switch (op) {
        case 'gt':
          return (tags) => numeric(tags?.[name]) > bound;
        case 'gte':
          return (tags) => numeric(tags?.[name]) >= bound;
        case 'lt':
          return (tags) => numeric(tags?.[name]) < bound;
        default:
          return (tags) => numeric(tags?.[name]) <= bound;
      }
    }
  }
}

/** `[tag name, operand]`, the name checked. */
function pair(arg: unknown, where: string): [string, unknown] {
  if (!Array.isArray(arg) || arg.length !== 2) fail(where, 'needs [tag, value]');
  const name: unknown = arg[0];
  if (typeof name !== 'string' || name.length === 0 || name.length > FILTER_LIMITS.maxNameLength) fail(`${where}[0]`, `a tag name is a string of 1 to ${FILTER_LIMITS.maxNameLength} characters`);
  if (name === '__proto__') fail(`${where}[0]`, 'the tag name "__proto__" is reserved: no publication has it');
  if (INVISIBLE.test(name)) fail(`${where}[0]`, 'a tag name holds no control or format characters');
  // A name such as "constructor" finds Object.prototype's function, never a string: every operator checks for one.
  return [name, arg[1]];
}

/** A value compared with a tag: a string, or a finite number as its decimal text. */
function valueText(value: unknown, where: string): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value !== 'string') fail(where, 'a value is a string or a finite number');
  if (value.length > FILTER_LIMITS.maxValueLength) fail(where, `a value is at most ${FILTER_LIMITS.maxValueLength} characters`);
  return value;
}
