import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { http, TestClient } from '../helpers/helpers.js';
import { run, serve } from '../helpers/cli-helpers.js';
import { eventually } from '../helpers/servers.js';

describe('herald serve: starting and answering for the node', () => {
  it('--workers with the port taken: one line on stderr, exit code 1, every worker stopped', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = String((blocker.address() as AddressInfo).port);
    try {
      for (const args of [['--workers', '2'], []]) {
        const result = await run(['serve', '--port', port, '--host', '127.0.0.1', '--log-level', 'warn', ...args]);
        assert.equal(result.code, 1, `herald serve ${args.join(' ')}: ${result.stderr}`);
        assert.equal(result.stderr, `herald: cannot listen on 127.0.0.1:${port}: the address is already in use\n`);
      }
    } finally {
      blocker.close();
    }
  });

  it('--workers: herald status answers for the node, whichever worker serves it', async () => {
    const server = await serve(['--workers', '2', '--set', 'cluster.heartbeatInterval=100', '--set', 'nodeId=box-1'], 2);
    const ws = server.url.replace('http', 'ws') + '/ws';
    const clients = await Promise.all(Array.from({ length: 12 }, () => TestClient.open(ws)));
    await Promise.all(clients.map((c) => c.request({ action: 'subscribe', topic: 'counted' })));
    for (let i = 0; i < 4; i++) assert.equal((await http(server.url, 'POST', '/api/publish', { topic: 'counted', message: i })).status, 200);
    for (const c of clients) await c.collect(4);
    // Every answer, from either worker, is the node's: 12 connections, 12 subscriptions, 4 publications, 48 deliveries.
    const answers = new Set<string>();
    await eventually(async () => {
      const seen: string[] = [];
      for (let i = 0; i < 8; i++) {
        const result = await run(['status', '--json', '--url', server.url]);
        assert.equal(result.code, 0, result.stderr);
        const status = JSON.parse(result.stdout);
        answers.add(status.workers.id);
        seen.push(`${status.node} ${status.workers.count} ${status.connections} ${status.subscriptions} ${status.publications} ${status.deliveries}`);
      }
      return seen.every((line) => line === 'box-1 2 12 12 4 48');
    }, 'every status answer to show the whole node', 30_000);
    assert.equal(answers.size, 2, 'both workers answered');
    const table = await run(['status', '--url', server.url]);
    assert.match(table.stdout, /^node\s+box-1 \(2 workers, herald /m);
    assert.match(table.stdout, /^connections\s+12$/m);
    server.child.kill('SIGTERM');
    await Promise.all(clients.map((c) => c.closed));
    assert.equal(await server.exited, 0);
  });

  it('--workers: a worker that dies while publications are relayed is replaced, and the primary keeps serving', async () => {
    const server = await serve(['--workers', '2'], 2);
    // Publications on the memory broker go from worker to worker through the primary: keep many flowing
    // (batches of 100) while a worker is killed, so that the primary relays to a worker that is gone.
    // (A request caught by the kill may never be answered: each gives up after 2 s.)
    const batch = JSON.stringify(Array.from({ length: 100 }, (_, i) => ({ topic: 'relayed', message: i })));
    const publish = (): Promise<unknown> =>
      fetch(`${server.url}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: batch, signal: AbortSignal.timeout(2000) })
        .then((response) => response.text())
        .catch(() => undefined);
    let flowing = true;
    const publishers = Array.from({ length: 4 }, async () => {
      while (flowing) await publish();
    });
    const count = (msg: string): number => server.logs.filter((l) => l.msg === msg).length;
    try {
      const [worker] = execFileSync('pgrep', ['-P', String(server.child.pid)]).toString().trim().split('\n').map(Number);
      process.kill(worker!, 'SIGKILL');
      await eventually(() => count('worker died: starting another') === 1 || server.child.exitCode !== null, 'the primary to see the worker die', 30_000);
    } finally {
      flowing = false;
      await Promise.all(publishers);
    }
    assert.equal(server.child.exitCode, null, `the primary is running: ${server.stderr()}`);
    await eventually(() => count('herald listening') === 3, 'a worker to replace the killed one', 30_000);
    const client = await TestClient.open(`${server.url.replace('http', 'ws')}/ws`);
    await client.request({ action: 'subscribe', topic: 'after' });
    assert.equal((await http(server.url, 'POST', '/api/publish', { topic: 'after', message: 'still here' })).status, 200);
    assert.deepEqual(await client.next(), { action: 'publish', topic: 'after', message: 'still here' });
    server.child.kill('SIGTERM');
    await client.closed;
    assert.equal(await server.exited, 0, server.stderr());
  });

  it('npm start (demo/herald.yaml) listens on loopback only, and every start-up warning is true', async () => {
    const demoConfig = fileURLToPath(new URL('../../../../../demo/herald.yaml', import.meta.url));
    const server = await serve(['--config', demoConfig], 1, {}, []);
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const listening = server.logs.find((l) => l.msg === 'herald listening')!;
    assert.ok(listening, 'logged its address');
    // Wait for the warnings logged right after "herald listening".
    await eventually(() => server.logs.some((l) => String(l.msg).startsWith('demo.backend is on')), 'the demo backend warning');
    const warnings = server.logs.filter((l) => l.level === 40).map((l) => String(l.msg));
    assert.ok(!warnings.some((w) => w.includes('credentials are configured')), `no credentials are configured: ${warnings.join(' | ')}`);
    assert.ok(warnings.some((w) => w.startsWith('no apiKeys configured')), warnings.join(' | '));
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0);
    // With a key it is true, and said.
    const keyed = await serve(['--config', demoConfig, '--api-key', 'a-real-api-key-0001'], 1, {}, []);
    await eventually(() => keyed.logs.some((l) => String(l.msg).startsWith('credentials are configured')), 'the credentials warning');
    keyed.child.kill('SIGTERM');
    assert.equal(await keyed.exited, 0);
  });

  it('starts with unrelated HERALD_* variables in the environment, warning about each', async () => {
    const server = await serve([], 1, { HERALD_KEY: 'an-app-secret', HERALD_DIR: '/opt/herald', HERALD_HEARTBEAT__INTERVALL: '5s' });
    const warnings = server.stderr().trim().split('\n').sort();
    assert.deepEqual(warnings, [
      'herald: warning: HERALD_DIR is not a Herald option: ignored',
      'herald: warning: HERALD_HEARTBEAT__INTERVALL is not a Herald option: ignored (did you mean HERALD_HEARTBEAT__INTERVAL?)',
      'herald: warning: HERALD_KEY is not a Herald option: ignored',
    ]);
    assert.equal((await http(server.url, 'GET', '/readyz')).status, 200);
    server.child.kill('SIGTERM');
    assert.equal(await server.exited, 0);
  });
});
