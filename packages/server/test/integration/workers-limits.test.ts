import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { deadline, http, TestClient } from '../helpers/helpers.js';
import { eventually } from '../helpers/servers.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const spawned: ChildProcess[] = [];

after(() => {
  for (const child of spawned) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Spawns `herald serve` on a free port and waits until `listeners` processes listen. */
async function serve(args: string[], listeners: number): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null>; problems: string[] }> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--host', '127.0.0.1', ...args], { env });
  spawned.push(child);
  // What the processes said that a failed assertion should show: stderr, and log lines at warn level or above.
  const problems: string[] = [];
  child.stderr!.on('data', (chunk: Buffer) => problems.push(chunk.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let listening = 0;
  const url = await deadline(
    new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (typeof entry.level === 'number' && entry.level >= 40) problems.push(line);
        if (entry.msg === 'herald listening' && ++listening === listeners) resolve(entry.url as string);
      });
      child.once('exit', (code) => reject(new Error(`herald serve exited with ${code}`)));
    }),
    30_000,
    'herald serve to listen',
  );
  return { child, url, exited, problems };
}

describe('herald serve --workers: connection limits', () => {
  it('--workers 2: the per-address connection limit holds for the machine, not once per worker', async () => {
    const server = await serve(['--workers', '2', '--set', 'limits.maxConnectionsPerIp=5', '--set', 'cluster.heartbeatInterval=200'], 2);
    const ws = server.url.replace('http', 'ws') + '/ws';
    const statusOf = (attempt: Promise<TestClient>): Promise<number | TestClient> =>
      attempt.then(
        (client) => client,
        (err: Error) => Number(/Unexpected server response: (\d+)/.exec(err.message)?.[1] ?? 0),
      );
    const attempts = await Promise.all(Array.from({ length: 10 }, () => statusOf(TestClient.open(ws))));
    const open = attempts.filter((a): a is TestClient => typeof a !== 'number');
    assert.equal(open.length, 5, `5 of 10 admitted, got ${open.length}: ${attempts.map((a) => (typeof a === 'number' ? a : 101)).join(',')}`);
    assert.deepEqual(attempts.filter((a) => typeof a === 'number'), [429, 429, 429, 429, 429]);
    // The two workers together hold exactly those five.
    await eventually(async () => {
      const cluster = (await http(server.url, 'GET', '/api/cluster')).body;
      return cluster.nodes.length === 2 && cluster.nodes.reduce((sum: number, n: { connections: number }) => sum + n.connections, 0) === 5;
    }, 'both workers to report their connections');
    // A close frees its place on the machine's count, whichever worker takes the next one.
    await open[0]!.close();
    await eventually(async () => (await http(server.url, 'GET', '/api/status')).body.cluster.connections === 4, 'the close to be counted');
    const again = await statusOf(TestClient.open(ws));
    assert.ok(typeof again !== 'number', `a place is free again (got ${String(again)})`);
    assert.equal(await statusOf(TestClient.open(ws)), 429);
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0, `herald serve --workers exited with another code than 0; it said:\n${server.problems.join('\n')}`);
  });

});
