import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Fails a wait that an event should have ended (helpers.ts has the same; this file also serves scripts outside node:test). */
function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The Debian package of each program the tests run. */
const PACKAGES: Record<string, string> = { 'redis-server': 'redis-server', 'nats-server': 'nats-server', nginx: 'nginx', openssl: 'openssl' };

/**
 * Whether a server binary can be run (found on the PATH). Missing: the tests
 * that need it are skipped on a developer machine (the returned reason) but
 * fail under CI=true (CI must run them; .ci/run installs the Debian packages).
 */
export function requireBinary(name: string): string | null {
  const found = spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
  if (found) return null;
  const why = `${name} not found (apt-get install ${PACKAGES[name] ?? name})`;
  if (process.env.CI === 'true') throw new Error(`tests that need ${name} must run under CI: ${why}`);
  return why;
}

/** Polls `check` until it holds (for state outside Herald that emits no event, e.g. Redis's PUBSUB). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A real broker server process owned by a test, on its own free port. */
export abstract class ServerProcess {
  port = 0;
  private child: ChildProcess | null = null;

  protected abstract command(): { bin: string; args: string[]; ready: RegExp };

  get url(): string {
    return `${this.scheme}://127.0.0.1:${this.port}`;
  }

  protected abstract readonly scheme: string;

  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const { bin, args, ready } = this.command();
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let output = '';
    await deadline(
      new Promise<void>((resolve, reject) => {
        const onData = (data: Buffer): void => {
          output += data.toString();
          if (ready.test(output)) resolve();
        };
        child.stdout!.on('data', onData);
        child.stderr!.on('data', onData);
        child.once('exit', (code) => reject(new Error(`${bin} exited with ${code}: ${output}`)));
      }),
      10_000,
      `${bin} to start`,
    );
  }

  /** Freezes the server (SIGSTOP): its connections stay open, nothing is read or answered, as on a stalled host. Resolves once it is stopped. */
  async pause(): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    child.kill('SIGSTOP');
    // The signal is delivered when the kernel next schedules the process: wait until /proc says it is stopped.
    await eventually(() => {
      try {
        return /^\d+ \(.*\) [Tt]/.test(readFileSync(`/proc/${child.pid}/stat`, 'utf8'));
      } catch {
        return true;
      }
    }, 'the server to stop');
  }

  /** Lets a paused server run again (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills the server (SIGKILL: no goodbye to clients) and waits for it to be gone. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    this.child = null;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}

export class RedisServer extends ServerProcess {
  protected readonly scheme = 'redis';
  private dir: string | null = null;

  /** `durable`: an append-only file fsynced on every write, so that what Redis acknowledged survives a kill and restart. */
  constructor(private readonly durable = false) {
    super();
  }

  protected command() {
    const persistence = this.durable
      ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', (this.dir ??= mkdtempSync(join(tmpdir(), 'herald-redis-')))]
      : ['--appendonly', 'no'];
    return {
      bin: 'redis-server',
      args: ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--loglevel', 'notice'],
      ready: /Ready to accept connections/,
    };
  }
}

export class NatsServer extends ServerProcess {
  protected readonly scheme = 'nats';
  monitorPort = 0;

  /** With `jetstream`, the server runs with `-js` (storage in a fresh temporary folder), as a shared NATS of other services would. */
  constructor(private readonly options: { jetstream?: boolean } = {}) {
    super();
  }

  protected command() {
    const args = ['-a', '127.0.0.1', '-p', String(this.port), '-m', String(this.monitorPort)];
    if (this.options.jetstream) args.push('-js', '-sd', mkdtempSync(join(tmpdir(), 'herald-nats-js-')));
    return { bin: 'nats-server', args, ready: /Server is ready/ };
  }

  override async start(): Promise<void> {
    if (this.monitorPort === 0) this.monitorPort = await freePort();
    await super.start();
  }

  /** Subjects of every subscription the server holds (from its monitoring endpoint). */
  async subjects(): Promise<string[]> {
    const response = await fetch(`http://127.0.0.1:${this.monitorPort}/connz?subs=1`);
    const body = (await response.json()) as { connections?: Array<{ subscriptions_list?: string[] }> };
    return (body.connections ?? []).flatMap((c) => c.subscriptions_list ?? []);
  }
}

/** A Redis Sentinel watching `master` (redis-server --sentinel, from the same Debian package). */
export class RedisSentinel extends ServerProcess {
  protected readonly scheme = 'redis';
  private configFile = '';

  constructor(private readonly master: ServerProcess) {
    super();
  }

  protected command() {
    return { bin: 'redis-server', args: [this.configFile, '--sentinel'], ready: /Sentinel ID is|monitor master/ };
  }

  override async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'herald-sentinel-'));
    this.configFile = join(dir, 'sentinel.conf');
    writeFileSync(this.configFile, `port ${this.port}\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 ${this.master.port} 1\n`);
    await super.start();
  }
}
