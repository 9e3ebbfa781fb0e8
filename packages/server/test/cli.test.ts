import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { deadline, http, TestClient } from './helpers.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

/** Environment without any HERALD_* variable of the machine running the tests. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  return { ...env, ...extra };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function run(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], { env: cleanEnv(env) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  const [code] = (await deadline(once(child, 'exit'), 10_000, `herald ${args.join(' ')}`)) as [number | null];
  return { code, stdout, stderr };
}

interface Server {
  child: ChildProcess;
  url: string;
  logs: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/** Spawns `herald serve` on a free port and waits for its "listening" log line. */
async function serve(args: string[] = []): Promise<Server> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--host', '127.0.0.1', ...args], { env: cleanEnv() });
  const logs: Array<Record<string, unknown>> = [];
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const url = await deadline(
    new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'herald listening') resolve(entry.url as string);
      });
      child.once('exit', (code) => reject(new Error(`herald serve exited with ${code}`)));
    }),
    10_000,
    'herald serve to listen',
  );
  return { child, url, logs, exited };
}

describe('herald serve', () => {
  it('on SIGTERM delivers what is queued, closes every client with 1001 and exits 0', async () => {
    const server = await serve();
    const ws = server.url.replace('http', 'ws') + '/ws';
    const clients = await Promise.all([TestClient.open(ws), TestClient.open(ws), TestClient.open(ws)]);
    await Promise.all(clients.map((c) => c.request({ action: 'subscribe', topic: 'last-words' })));
    const batch = Array.from({ length: 20 }, (_, i) => ({ topic: 'last-words', message: i }));
    assert.equal((await http(server.url, 'POST', '/api/publish', batch)).status, 200);
    server.child.kill('SIGTERM');
    for (const c of clients) {
      const closed = await deadline(c.closed, 10_000, 'the 1001 close');
      assert.equal(closed.code, 1001);
      assert.deepEqual(
        c.received.map((f: any) => f.message),
        Array.from({ length: 20 }, (_, i) => i),
      );
    }
    assert.equal(await server.exited, 0);
    const closes = server.logs.filter((l) => l.msg === 'connection closed');
    assert.equal(closes.length, 3);
    assert.ok(closes.every((l) => l.code === 1001 && l.by === 'server'));
    assert.ok(server.logs.some((l) => l.msg === 'herald stopped'));
  });

  it('logs one line per connection open and close, none per message', async () => {
    const server = await serve();
    const c = await TestClient.open(server.url.replace('http', 'ws') + '/ws');
    await c.request({ action: 'subscribe', topic: 'quiet' });
    for (let i = 0; i < 50; i++) await c.request({ action: 'publish', topic: 'quiet', message: i });
    await c.close();
    server.child.kill('SIGINT');
    assert.equal(await server.exited, 0);
    const messages = server.logs.map((l) => l.msg);
    assert.equal(messages.filter((m) => m === 'connection opened').length, 1);
    assert.equal(messages.filter((m) => m === 'connection closed').length, 1);
    assert.ok(server.logs.length < 15, `few log lines, got ${server.logs.length}: ${messages.join(', ')}`);
  });

  it('refuses a bad option naming it, with exit code 2', async () => {
    const result = await run(['serve', '--set', 'limits.maxFrameByte=10']);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /limits\.maxFrameByte: unknown option \(did you mean limits\.maxFrameBytes\?\)/);
    const env = await run(['serve'], { HERALD_PORT: 'eighty' });
    assert.equal(env.code, 2);
    assert.match(env.stderr, /port: /);
    const flag = await run(['serve', '--port', 'x']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--port/);
  });
});

describe('herald publish and status', () => {
  let server: Server;
  before(async () => {
    server = await serve(['--api-key', 'cli-test-key-123456']);
  });
  after(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
  });

  it('publish sends a JSON message through the HTTP API', async () => {
    const sub = await TestClient.open(server.url.replace('http', 'ws') + '/ws');
    await sub.request({ action: 'subscribe', topic: 'cli' });
    const result = await run(['publish', 'cli', '{"from":"cli"}', '--url', server.url, '--key', 'cli-test-key-123456']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { ok: true });
    assert.deepEqual(await sub.next(), { action: 'publish', topic: 'cli', message: { from: 'cli' } });
    const asString = await run(['publish', 'cli', 'plain words', '--string'], { HERALD_URL: server.url, HERALD_API_KEY: 'cli-test-key-123456' });
    assert.equal(asString.code, 0, asString.stderr);
    assert.deepEqual(await sub.next(), { action: 'publish', topic: 'cli', message: 'plain words' });
    await sub.close();
  });

  it('status prints the server status', async () => {
    const result = await run(['status', '--url', server.url, '--key', 'cli-test-key-123456']);
    assert.equal(result.code, 0, result.stderr);
    const status = JSON.parse(result.stdout);
    assert.equal(status.broker.name, 'memory');
    assert.equal(typeof status.connections, 'number');
  });

  it('exits 1 on an API error, 2 on bad usage, 3 when the server is unreachable', async () => {
    const noKey = await run(['status', '--url', server.url]);
    assert.equal(noKey.code, 1);
    assert.match(noKey.stderr, /401 unauthorized/);
    const badJson = await run(['publish', 'cli', '{oops', '--url', server.url]);
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /not valid JSON/);
    const missing = await run(['publish', 'cli']);
    assert.equal(missing.code, 2);
    const unreachable = await run(['status', '--url', 'http://127.0.0.1:1']);
    assert.equal(unreachable.code, 3);
    assert.match(unreachable.stderr, /cannot reach/);
    const unknown = await run(['frobnicate']);
    assert.equal(unknown.code, 2);
  });

  it('prints help for every command', async () => {
    for (const args of [['--help'], ['serve', '--help'], ['publish', '--help'], ['status', '--help']]) {
      const result = await run(args);
      assert.equal(result.code, 0);
      assert.match(result.stdout, /^Usage: herald/);
    }
  });
});
