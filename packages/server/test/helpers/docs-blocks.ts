import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { deadline } from './helpers.js';

/**
 * The fenced blocks of README.md and docs/*.md, and the means to run them:
 * shell commands with the answers they show, Node programs, servers. Used by
 * docs-examples.test.ts, whose header says what each marker means.
 */

export const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));

export type Marker =
  | { kind: 'run'; meanwhile?: string }
  | { kind: 'scenario'; name: string }
  | { kind: 'skip'; reason: string };

export interface Block {
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  code: string;
  marker: Marker | null;
}

export function where(block: Block): string {
  return `${block.file}:${block.line} (\`\`\`${block.lang} block)`;
}

/** Every fenced block of README.md and docs/*.md, with the marker before it. */
export function blocks(): Block[] {
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
      let marker: Marker | null = null;
      if (comment) {
        const text = comment[1]!;
        const skip = /^skip\s*\((.+)\)$/.exec(text);
        const run = /^run(?:;\s*meanwhile:\s*(.+))?$/.exec(text);
        const scenario = /^scenario\s+([\w-]+)$/.exec(text);
        if (skip) marker = { kind: 'skip', reason: skip[1]! };
        else if (run) marker = run[1] ? { kind: 'run', meanwhile: run[1] } : { kind: 'run' };
        else if (scenario) marker = { kind: 'scenario', name: scenario[1]! };
        else throw new Error(`${file}:${before + 1}: unknown test marker "${text}" (use <!-- test: run -->, <!-- test: scenario <name> --> or <!-- test: skip (reason) -->)`);
      }
      // The indentation of a block inside a list item is not part of its text.
      const indent = open[1]!.length;
      const code = lines.slice(i + 1, end).map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)));
      found.push({ file, line: i + 1, lang: open[3]!.toLowerCase(), code: code.join('\n'), marker });
      i = end;
    }
  }
  return found;
}

/** Deep equality where the string "..." in `expected` matches anything. */
export function matches(actual: unknown, expected: unknown): boolean {
  if (expected === '...') return true;
  if (Array.isArray(expected)) return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => matches(actual[i], e));
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
    const keys = Object.keys(expected);
    return keys.length === Object.keys(actual).length && keys.every((k) => k in actual && matches((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k]));
  }
  return Object.is(actual, expected);
}

export function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

/** A shell command of a block, with the answers the block shows after it. */
export interface Step {
  command: string;
  line: number;
  /** JSON values, one per line of output. */
  expected: unknown[];
  /** An HTTP answer as `curl -i` prints it: the status line and some of the headers. */
  http?: { status: string; headers: Array<[string, string]> };
}

/**
 * A shell block's commands. A comment holding JSON right after a command is
 * its output; `# HTTP/1.1 200 OK` is the status line `curl -i` prints (text
 * after two spaces is a remark), and `# name: value` lines right after it
 * are headers of that answer. Other comments are prose.
 */
export function steps(block: Block): Step[] {
  const out: Step[] = [];
  const lines = block.code.split('\n');
  let inHttp = false;
  for (let i = 0; i < lines.length; i++) {
    const text = lines[i]!.trim();
    if (text === '') continue;
    if (text.startsWith('#')) {
      const comment = text.slice(1).trim();
      const shown = parseJson(comment);
      const status = /^HTTP\/\d(?:\.\d)? \d{3}\b.*?(?=\s{2,}|$)/.exec(comment);
      const header = /^([A-Za-z][\w-]*): (.*)$/.exec(comment);
      if (shown.ok && /^[[{"]/.test(comment)) {
        assert.ok(out.length > 0, `${where(block)}: an answer at line ${block.line + 1 + i} follows no command`);
        out.at(-1)!.expected.push(shown.value);
      } else if (status) {
        assert.ok(out.length > 0, `${where(block)}: an HTTP answer at line ${block.line + 1 + i} follows no command`);
        out.at(-1)!.http = { status: status[0], headers: [] };
        inHttp = true;
        continue;
      } else if (header && inHttp) {
        out.at(-1)!.http!.headers.push([header[1]!.toLowerCase(), header[2]!]);
        continue;
      }
      inHttp = false;
      continue;
    }
    inHttp = false;
    let command = lines[i]!;
    const line = block.line + 1 + i;
    while (command.endsWith('\\') && i + 1 < lines.length) command = `${command}\n${lines[++i]!}`;
    out.push({ command, line, expected: [] });
  }
  return out;
}

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

export function bash(command: string, env: NodeJS.ProcessEnv, cwd = ROOT): Promise<Ran> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { cwd, env, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Fails unless the command exited 0 and printed what the block shows after it. */
export function checkStep(block: Block, step: Step, result: Ran): void {
  const what = `${block.file}:${step.line}: \`${step.command.replace(/\s*\\\n\s*/g, ' ')}\``;
  assert.equal(result.code, 0, `${what} exited ${result.code}: ${result.stderr}${result.stdout}`);
  if (step.http) {
    const [head = ''] = result.stdout.split(/\r?\n\r?\n/);
    const [status = '', ...headerLines] = head.split(/\r?\n/);
    assert.equal(status.trim(), step.http.status, `${what}: the status line`);
    const headers = new Map(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    for (const [name, value] of step.http.headers) assert.equal(headers.get(name), value, `${what}: the ${name} header (the answer was\n${head})`);
    return;
  }
  if (step.expected.length === 0) return;
  const printed = result.stdout.trim().split('\n').filter((l) => l.trim() !== '');
  const values = printed.map((l) => parseJson(l));
  const ok = values.length === step.expected.length && values.every((v, i) => v.ok && matches(v.value, step.expected[i]));
  assert.ok(ok, `${what} printed\n  ${printed.join('\n  ')}\nbut the doc shows\n  ${step.expected.map((e) => JSON.stringify(e)).join('\n  ')}`);
}

/** Runs a shell block's commands one by one, checking each; `afterStep` runs after each command (to look at what it did). */
export async function runShell(block: Block, env: NodeJS.ProcessEnv, rewrite: (text: string) => string, afterStep?: (step: Step, index: number) => Promise<void>): Promise<void> {
  const all = steps(block);
  for (const [index, step] of all.entries()) {
    checkStep(block, step, await bash(rewrite(step.command), env));
    await afterStep?.(step, index);
  }
}

/** Replaces each `from` (all occurrences) with its `to`, failing when a `from` is not in the text (a substitution that no longer applies). */
export function substitute(text: string, pairs: Array<[string | RegExp, string]>, what: string): string {
  for (const [from, to] of pairs) {
    const found = typeof from === 'string' ? text.includes(from) : new RegExp(from.source, from.flags.replace('g', '')).test(text);
    assert.ok(found, `${what}: "${from}" is not in the block any more (the test substitutes it)`);
    text = typeof from === 'string' ? text.replaceAll(from, to) : text.replace(from, to);
  }
  return text;
}

let folder: string | null = null;
// Registered here, at the top level, so that it runs after the last test of the file, wherever workdir() was first called.
after(() => {
  if (folder) rmSync(folder, { recursive: true, force: true });
});

/**
 * A temporary folder where programs run: its node_modules is this
 * checkout's, so `import 'herald'`, `'@herald/client'`, `'ws'` and `'jose'`
 * resolve as in a project that installed them. Removed after the tests.
 */
export function workdir(): string {
  if (folder) return folder;
  const dir = mkdtempSync(join(tmpdir(), 'herald-docs-'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  writeFileSync(join(dir, 'package.json'), '{"type":"module","private":true}\n');
  return (folder = dir);
}

const running = new Set<Program>();
after(async () => {
  await Promise.all([...running].map((program) => program.stop('SIGKILL')));
});

/**
 * A process started from a block: a Node program, or a server command run
 * with bash in its own process group. Its stdout is kept line by line, so a
 * test can wait for a line it prints.
 */
export class Program {
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private partial = '';
  private waiters: Array<() => void> = [];
  private done = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly name: string,
    private readonly group: boolean,
  ) {
    running.add(this);
    child.stdout!.on('data', (data: Buffer) => {
      const parts = (this.partial + data.toString()).split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts);
      this.wake();
    });
    child.stderr!.on('data', (data: Buffer) => {
      this.stderr += data.toString();
    });
    this.exited = once(child, 'exit').then(([code, signal]) => {
      this.done = true;
      running.delete(this);
      this.wake();
      return { code: code as number | null, signal: signal as NodeJS.Signals | null };
    });
  }

  /** Runs `source` as the ES module `<name>.mjs` in workdir(). */
  static node(name: string, source: string, env: NodeJS.ProcessEnv = {}): Program {
    const file = join(workdir(), `${name}.mjs`);
    writeFileSync(file, source);
    return new Program(spawn(process.execPath, [file], { cwd: workdir(), env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }), name, false);
  }

  /** Runs a shell command with bash in the repository root, in a process group of its own. */
  static shell(command: string, env: NodeJS.ProcessEnv): Program {
    return new Program(spawn('bash', ['-c', command], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }), command, true);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  /** The first line printed on stdout that `test` accepts; fails when the program ends first, or after `ms` (generous: a program that loads Herald is slow to start on a busy machine). */
  line(test: RegExp | ((line: string) => boolean), what: string, ms = 30_000): Promise<string> {
    const accepts = typeof test === 'function' ? test : (line: string) => test.test(line);
    return deadline(
      (async () => {
        for (;;) {
          const found = this.lines.find(accepts);
          if (found !== undefined) return found;
          if (this.done) throw new Error(`${this.name} ended before printing ${what}:\n${this.lines.join('\n')}\n${this.stderr}`);
          await new Promise<void>((resolve) => this.waiters.push(resolve));
        }
      })(),
      ms,
      `${this.name} to print ${what}`,
    );
  }

  /** The JSON log line (pino) whose `msg` is `msg`, parsed. */
  async log(msg: string): Promise<Record<string, unknown>> {
    const line = await this.line((l) => {
      const parsed = parseJson(l);
      return parsed.ok && (parsed.value as { msg?: unknown } | null)?.msg === msg;
    }, `the log line "${msg}"`);
    return JSON.parse(line) as Record<string, unknown>;
  }

  /** Sends `signal` (to the whole group of a shell command) and resolves with how the process ended. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.done && this.child.pid !== undefined) {
      try {
        if (this.group) process.kill(-this.child.pid, signal);
        else this.child.kill(signal);
      } catch {
        /* already gone */
      }
    }
    return deadline(this.exited, 20_000, `${this.name} to exit after ${signal}`);
  }
}
