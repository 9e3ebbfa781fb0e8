import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { deadline } from './helpers.js';

/** Running the `herald` command in tests: one-shot commands (`run`) and servers (`serve`). */

export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Environment without any HERALD_* variable of the machine running the tests. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  return { ...env, ...extra };
}

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export async function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], { env: cleanEnv(env) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const [code] = (await deadline(once(child, 'exit'), 30_000, `herald ${args.join(' ')}`)) as [number | null];
  return { code, stdout, stderr };
}

export interface Server {
  child: ChildProcess;
  url: string;
  logs: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  /** What the server wrote to stderr so far. */
  stderr: () => string;
}

const spawned: ChildProcess[] = [];

// A server left running by a failed test would keep this file's process alive.
after(() => {
  for (const child of spawned) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Spawns `herald serve` on a free port and waits until `listeners` processes log "herald listening". */
export async function serve(args: string[] = [], listeners = 1, env: Record<string, string> = {}, host: string[] = ['--host', '127.0.0.1']): Promise<Server> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', ...host, ...args], { env: cleanEnv(env) });
  spawned.push(child);
  const logs: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let listening = 0;
  const url = await deadline(
    new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'herald listening' && ++listening === listeners) resolve(entry.url as string);
      });
      child.once('exit', (code) => reject(new Error(`herald serve exited with ${code}`)));
    }),
    // Generous: workers each load the server's modules, slow on a busy machine.
    30_000,
    'herald serve to listen',
  );
  return { child, url, logs, exited, stderr: () => stderr };
}
