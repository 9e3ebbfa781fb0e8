import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import type { Herald } from '../../src/index.js';
import { useBrowser } from '../helpers/browser.js';
import { startHerald } from '../helpers/helpers.js';

/**
 * The examples of README.md and docs/*.md, run as written against one live
 * Herald. Every shell and JavaScript/TypeScript block carries a marker on the
 * line before its fence:
 *
 *   <!-- test: run -->                      run it and compare with the answers it shows
 *   <!-- test: run; meanwhile: <command> --> (browser JS) run <command> until the page logged what the block shows
 *   <!-- test: skip (why) -->               not run, for the reason given
 *
 * A block without a marker fails the test, naming its file and line.
 *
 * Shell blocks run with bash in the repository root, one command at a time
 * (lines ending in `\` continue a command). A comment line holding JSON right
 * after a command (`# {"ok":true}`) is that command's expected output, one
 * JSON value per line; a command without one must only exit 0. JavaScript
 * blocks run as a module in Chromium on a page of another origin; their
 * `// ← <json>` lines are what `console.log` must print, in order. In both,
 * `localhost:8080` stands for the live server, and `"..."` in an expected
 * answer matches any value. `npx herald` runs as `herald` from
 * node_modules/.bin, which is what npx finds (without its seconds of start-up
 * per call; test/install.test.ts runs `npm exec -- herald` itself).
 */

const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
const RUNNABLE = new Set(['sh', 'bash', 'shell', 'console', 'js', 'javascript', 'mjs', 'ts', 'typescript']);
const SHELL = new Set(['sh', 'bash', 'shell', 'console']);

interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  code: string;
  marker: { run: true; meanwhile?: string } | { run: false; reason: string } | null;
}

function where(block: Block): string {
  return `${block.file}:${block.line} (\`\`\`${block.lang} block)`;
}

/** Every fenced block of README.md and docs/*.md, with the marker before it. */
function blocks(): Block[] {
  const files = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)];
  const found: Block[] = [];
  for (const file of files) {
    const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
    for (let i = 0; i < lines.length; i++) {
      const open = /^(\s*)(`{3,}|~{3,})\s*([\w+-]*)/.exec(lines[i]!);
      if (!open) continue;
      const fence = open[2]!;
      let end = i + 1;
      while (end < lines.length && !lines[end]!.trimStart().startsWith(fence)) end++;
      let before = i - 1;
      while (before >= 0 && lines[before]!.trim() === '') before--;
      const comment = before >= 0 ? /^<!--\s*test:\s*(.*?)\s*-->$/.exec(lines[before]!.trim()) : null;
      let marker: Block['marker'] = null;
      if (comment) {
        const text = comment[1]!;
        const skip = /^skip\s*\((.+)\)$/.exec(text);
        const run = /^run(?:;\s*meanwhile:\s*(.+))?$/.exec(text);
        if (skip) marker = { run: false, reason: skip[1]! };
        else if (run) marker = run[1] ? { run: true, meanwhile: run[1] } : { run: true };
        else throw new Error(`${file}:${before + 1}: unknown test marker "${text}" (use <!-- test: run --> or <!-- test: skip (reason) -->)`);
      }
      found.push({ file, line: i + 1, lang: open[3]!.toLowerCase(), code: lines.slice(i + 1, end).join('\n'), marker });
      i = end;
    }
  }
  return found;
}

/** Deep equality where the string "..." in `expected` matches anything. */
function matches(actual: unknown, expected: unknown): boolean {
  if (expected === '...') return true;
  if (Array.isArray(expected)) return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => matches(actual[i], e));
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
    const keys = Object.keys(expected);
    return keys.length === Object.keys(actual).length && keys.every((k) => k in actual && matches((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k]));
  }
  return Object.is(actual, expected);
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

interface Step {
  command: string;
  line: number;
  expected: unknown[];
}

/** A shell block's commands, each with the JSON answers shown after it. */
function steps(block: Block): Step[] {
  const out: Step[] = [];
  const lines = block.code.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!.trim();
    if (text === '') continue;
    if (text.startsWith('#')) {
      const shown = parseJson(text.slice(1).trim());
      if (shown.ok && /^#\s*[[{"]/.test(text)) {
        assert.ok(out.length > 0, `${where(block)}: an answer at line ${block.line + 1 + i} follows no command`);
        out.at(-1)!.expected.push(shown.value);
      }
      continue;
    }
    let command = lines[i]!;
    const line = block.line + 1 + i;
    while (command.endsWith('\\') && i + 1 < lines.length) command = `${command}\n${lines[++i]!}`;
    out.push({ command, line, expected: [] });
  }
  return out;
}

function bash(command: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { cwd: ROOT, env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const all = blocks();

describe('the examples of README.md and docs/', () => {
  it('mark every shell and JavaScript block with <!-- test: run --> or <!-- test: skip (reason) -->', () => {
    const unmarked = all.filter((block) => RUNNABLE.has(block.lang) && block.marker === null).map(where);
    assert.deepEqual(unmarked, [], `blocks without a test marker on the line before the fence:\n  ${unmarked.join('\n  ')}`);
    const runnable = all.filter((block) => RUNNABLE.has(block.lang));
    assert.ok(runnable.length > 20, `found ${runnable.length} blocks`);
    for (const block of runnable) {
      if (block.marker && !block.marker.run) assert.ok(block.marker.reason.trim().length > 3, `${where(block)}: a skip says why`);
    }
  });

  let herald: Herald;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    herald = await startHerald();
    env = { ...process.env, HERALD_URL: herald.url, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` };
    for (const name of Object.keys(env)) if (name.startsWith('HERALD_') && name !== 'HERALD_URL') delete env[name];
  });
  const live = (text: string): string => text.replaceAll('localhost:8080', herald.url.replace('http://', '')).replace(/\bnpx herald\b/g, 'herald');

  for (const block of all.filter((b) => SHELL.has(b.lang) && b.marker?.run)) {
    it(`${where(block)} runs as shown`, async () => {
      for (const step of steps(block)) {
        const result = await bash(live(step.command), env);
        const what = `${block.file}:${step.line}: \`${step.command.replace(/\s*\\\n\s*/g, ' ')}\``;
        assert.equal(result.code, 0, `${what} exited ${result.code}: ${result.stderr}${result.stdout}`);
        if (step.expected.length === 0) continue;
        const printed = result.stdout.trim().split('\n').filter((l) => l.trim() !== '');
        const values = printed.map((l) => parseJson(l));
        const ok = values.length === step.expected.length && values.every((v, i) => v.ok && matches(v.value, step.expected[i]));
        assert.ok(ok, `${what} printed\n  ${printed.join('\n  ')}\nbut the doc shows\n  ${step.expected.map((e) => JSON.stringify(e)).join('\n  ')}`);
      }
    });
  }

  describe('in a browser', () => {
    const chromium = useBrowser();
    let site: Server;
    let siteUrl: string;
    const pages = new Map<string, string>();
    before(async () => {
      // Pages come from another origin than Herald's, as a site that uses Herald would.
      site = createServer((request, response) => {
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        response.end(pages.get(request.url ?? '') ?? '');
      });
      await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
      siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    });
    after(() => new Promise<void>((resolve) => site.close(() => resolve())));

    for (const block of all.filter((b) => !SHELL.has(b.lang) && RUNNABLE.has(b.lang) && b.marker?.run)) {
      it(`${where(block)} runs as shown`, async (t) => {
        const browser = chromium.browser();
        if (!browser) return t.skip(chromium.skipped());
        const expected = [...block.code.matchAll(/\/\/ ← (.+)$/gm)].map((m) => {
          const parsed = parseJson(m[1]!);
          assert.ok(parsed.ok, `${where(block)}: "// ← ${m[1]}" is not JSON`);
          return parsed.value;
        });
        const path = `/${block.file.replace(/\W/g, '-')}-${block.line}.html`;
        pages.set(path, `<!doctype html><meta charset="utf-8"><script type="module">\n${live(block.code)}\n</script>`);
        const context = await browser.newContext();
        const page = await context.newPage();
        const logged: unknown[] = [];
        const errors: string[] = [];
        page.on('console', async (message) => {
          if (message.type() === 'error') errors.push(message.text());
          if (message.type() === 'log') logged.push(await message.args()[0]?.jsonValue());
        });
        page.on('pageerror', (err) => errors.push(err.message));
        await page.goto(siteUrl + path);
        const until = Date.now() + 10_000;
        while (logged.length < expected.length && errors.length === 0 && Date.now() < until) {
          if (block.marker?.run && block.marker.meanwhile) {
            const result = await bash(live(block.marker.meanwhile), env);
            assert.equal(result.code, 0, `${where(block)}: the meanwhile command failed: ${result.stderr}`);
          }
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        await context.close();
        assert.deepEqual(errors, [], `${where(block)}: errors in the page`);
        const ok = expected.every((e, i) => matches(logged[i], e));
        assert.ok(ok, `${where(block)} logged\n  ${logged.map((v) => JSON.stringify(v)).join('\n  ')}\nbut the doc shows\n  ${expected.map((e) => JSON.stringify(e)).join('\n  ')}`);
      });
    }
  });

  it('docs/client.md gives the size of the /client.js bundle as it is (within 3%)', () => {
    const doc = readFileSync(join(ROOT, 'docs/client.md'), 'utf8');
    const bundle = readFileSync(join(ROOT, 'packages/client/dist/herald-client.min.js'));
    const claim = /Measured on this checkout: ([\d,]+) bytes minified, ([\d,]+) bytes\s+gzipped/.exec(doc);
    assert.ok(claim, 'docs/client.md states the measured size');
    const near = (stated: string, real: number, what: string): void => {
      const n = Number(stated.replaceAll(',', ''));
      assert.ok(Math.abs(n - real) / real <= 0.03, `docs/client.md says ${n} bytes ${what}; the bundle is ${real}`);
    };
    near(claim[1]!, bundle.length, 'minified');
    near(claim[2]!, gzipSync(bundle).length, 'gzipped');
    const rounded = /about (\d+) KB minified \(about ([\d.]+) KB gzipped\)/.exec(doc);
    assert.ok(rounded, 'docs/client.md rounds the size');
    const about = (stated: string, real: number, what: string): void => {
      assert.ok(Math.abs(Number(stated) * 1000 - real) / real <= 0.05, `docs/client.md says about ${stated} KB ${what}; the bundle is ${real} bytes`);
    };
    about(rounded[1]!, bundle.length, 'minified');
    about(rounded[2]!, gzipSync(bundle).length, 'gzipped');
  });
});
