import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as tcpConnect, type AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import type { BrowserContext, Page } from 'playwright-core';
import ts from 'typescript';
import { parse as parseYaml } from 'yaml';
import { loadConfig, type Herald, type HeraldOptions } from '../../src/index.js';
import { useBrowser } from '../helpers/browser.js';
import { bash, type Block, blocks, matches, parseJson, Program, ROOT, runShell, steps, substitute, where, workdir } from '../helpers/docs-blocks.js';
import { deadline, http, startHerald, brokerReady, TestClient, wsUrl } from '../helpers/helpers.js';
import { eventually, freePort, RedisServer, requireBinary } from '../helpers/servers.js';
import { openSse } from '../helpers/sse.js';

/**
 * The examples of README.md and docs/*.md, run as written against live
 * servers. Every shell, JavaScript and TypeScript block carries a marker on
 * the line before its fence:
 *
 *   <!-- test: run -->                       run it and compare with the answers it shows
 *   <!-- test: run; meanwhile: <command> --> (browser JS) run <command> until the page logged what the block shows
 *   <!-- test: scenario <name> -->           the scenario <name> below runs it (with the blocks around it that
 *                                            it needs) and checks what the block and its text say it does
 *   <!-- test: skip (why) -->                not run, for the reason given (which names the test that covers it)
 *
 * A block without a marker fails the test, naming its file and line. Every
 * YAML block is a Herald configuration and is validated as a config file
 * (`herald config check`'s path), so an example that drifts from the schema
 * fails; a YAML block of another program is marked skip, and must then fail
 * that validation. TypeScript blocks are also type-checked (strict) against
 * the built packages.
 *
 * Shell blocks run with bash in the repository root, one command at a time
 * (lines ending in `\` continue a command). A comment line holding JSON right
 * after a command (`# {"ok":true}`) is that command's expected output, one
 * JSON value per line; `# HTTP/1.1 400 Bad Request` and the `# name: value`
 * lines after it are the status line and headers `curl -i` must print; a
 * command without either must only exit 0. JavaScript blocks run as a
 * module in Chromium on a page of another origin; their `// ← <json>` lines
 * are what `console.log` must print, in order. In both, `"..."` in an
 * expected answer matches any value.
 *
 * Substitutions, made by the test and nowhere else:
 * - `localhost:8080`, and the example host `push.example.com`, stand for the
 *   live server (`wss://` becoming `ws://`, `https://` `http://`);
 * - a fixed port that a program or server of the example listens on (8080,
 *   8081, 3000, 9000) becomes a free port; a server command or program that
 *   names none (Herald's default, 8080) is given one (HERALD_PORT, or
 *   `port` among its createHerald options);
 * - `https://app.example.com`, an allowed origin, is the origin of the test's pages;
 * - `redis-cli` talks to the suite's own redis-server (`-p <port>`), never to
 *   a Redis of the machine;
 * - `/etc/herald/` is a temporary folder;
 * - `npx herald` runs as `herald` from node_modules/.bin, which is what npx
 *   finds (without its seconds of start-up per call;
 *   test/integration/install.test.ts runs `npm exec -- herald` itself).
 * What a block calls yours (a session store, a user, render functions, `$KEY`)
 * is supplied by its scenario, defined before the block runs, as the text
 * around the block describes it; each scenario says what it supplies. Lines a
 * scenario adds after a block, to observe it (print the token it made, log
 * what a page receives), say "Added by the test" in the source that runs.
 */

const RUNNABLE = new Set(['sh', 'bash', 'shell', 'console', 'js', 'javascript', 'mjs', 'ts', 'typescript']);
const SHELL = new Set(['sh', 'bash', 'shell', 'console']);
const TYPESCRIPT = new Set(['ts', 'typescript']);

const all = blocks();

/** The blocks a scenario runs, in document order. */
function scenarioBlocks(name: string): Block[] {
  return all.filter((b) => b.marker?.kind === 'scenario' && b.marker.name === name);
}

/** The environment of commands: this checkout's node_modules/.bin first, no HERALD_* of the machine. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` };
  for (const name of Object.keys(env)) if (name.startsWith('HERALD_')) delete env[name];
  return { ...env, ...extra };
}

/** `npx herald` as `herald` from node_modules/.bin (what npx runs). */
function cli(text: string): string {
  return text.replace(/\bnpx herald\b/g, 'herald');
}

/** The text of a block with `localhost:8080` standing for the server at `url` (and `npx herald` as `herald`). */
function live(text: string, url: string): string {
  return cli(text.replaceAll('localhost:8080', url.replace('http://', '')));
}

/** TypeScript to the JavaScript Node runs (types removed, nothing else changed). */
function stripTypes(source: string): string {
  return ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
}

/** Resolves once something accepts TCP connections on the port (a program of another process, which tells nobody). */
async function listening(port: number): Promise<void> {
  const accepts = (): Promise<boolean> =>
    new Promise((resolve) => {
      const socket = tcpConnect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
  await eventually(accepts, `a server on port ${port}`, 15_000);
}

/**
 * What the test supplies to blocks that use pieces of the reader's own
 * program, as source text put before the block. Shared by the scenarios
 * that run them and the type check.
 */
const SUPPLIED = {
  /** README.md: "sessionIsValid is your own session check" (and the imports of the example before it). */
  connectHookOption: [
    "import { createHerald, HeraldError } from 'herald';",
    '// Supplied by the test: your own session check. A session is valid with the cookie session=valid.',
    "async function sessionIsValid(cookie: string | undefined): Promise<boolean> { return cookie === 'session=valid'; }",
    '',
  ].join('\n'),
  /** docs/auth.md: "sessions is your session store". */
  sessions: [
    '// Supplied by the test: your session store. One session: cookie session=abc is Alice, in room 5.',
    "const sessions = { async fromCookie(cookie) { return cookie === 'session=abc' ? { id: 'alice', name: 'Alice', rooms: ['room:5'] } : null; } };",
    '',
  ].join('\n'),
  /** docs/auth.md: "user is yours": the user who logged in to your app. */
  user: "// Supplied by the test: the user who logged in.\nconst user = { id: '42', teamId: 7, name: 'Ann' };\n",
} as const;

/** An HTML page running each of `scripts` as a module script. */
function modulePage(scripts: string[]): string {
  return `<!doctype html><meta charset="utf-8">${scripts.map((s) => `<script type="module">\n${s}\n</script>`).join('\n')}`;
}

/** A page of the test's site, with what it logged (console.log's first argument, as JSON) and its errors. */
class BrowserPage {
  readonly logged: unknown[] = [];
  readonly errors: string[] = [];
  private waiters: Array<() => void> = [];

  constructor(
    readonly context: BrowserContext,
    readonly page: Page,
  ) {
    page.on('console', async (message) => {
      if (message.type() === 'error') this.errors.push(message.text());
      if (message.type() === 'log') this.logged.push(await message.args()[0]?.jsonValue());
      this.wake();
    });
    page.on('pageerror', (err) => {
      this.errors.push(err.message);
      this.wake();
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  /** Resolves with the first logged value `test` accepts; fails on an error of the page, or after `ms`. */
  logs(test: (value: any) => boolean, what: string, ms = 10_000): Promise<any> {
    return deadline(
      (async () => {
        for (;;) {
          assert.deepEqual(this.errors, [], `errors in the page while waiting for ${what}`);
          const found = this.logged.find(test);
          if (found !== undefined) return found;
          await new Promise<void>((resolve) => this.waiters.push(resolve));
        }
      })(),
      ms,
      `the page to log ${what}`,
    );
  }

  close(): Promise<void> {
    return this.context.close();
  }
}

interface ScenarioContext {
  t: { skip: (message?: string) => void };
  openPage?: (path: string, html: string) => Promise<BrowserPage>;
  siteUrl?: string;
  pages?: Map<string, { type: string; body: string }>;
}

interface Scenario {
  /** Needs the browser and the test's site. */
  browser?: boolean;
  run: (blocks: Block[], context: ScenarioContext) => Promise<void>;
}

/** Fails unless `blocks` are of these languages, in this order. */
function expectBlocks(blocks: Block[], langs: string[], name: string): void {
  assert.deepEqual(
    blocks.map((b) => b.lang),
    langs,
    `scenario ${name} runs ${langs.length} blocks (${langs.join(', ')}); marked: ${blocks.map(where).join(', ') || 'none'}`,
  );
}

/** A `herald serve` command of a block, run until it listens; checks that it starts cleanly on `port`. */
async function serveCommand(block: Block, command: string, port: number, extraEnv: Record<string, string> = {}): Promise<Program> {
  const server = Program.shell(cli(command), cleanEnv(extraEnv));
  const listening = await server.log('herald listening');
  assert.equal(new URL(String(listening.url)).port, String(port), `${where(block)}: \`${command}\` listens on the port it names`);
  return server;
}

/** Stops a server of a block with SIGTERM, as systemd or Ctrl-C would; it must drain and exit 0 without warnings. */
async function stopServer(block: Block, server: Program): Promise<void> {
  const { code, signal } = await server.stop('SIGTERM');
  assert.equal(code, 0, `${where(block)}: \`${server.name}\` exited ${code ?? signal} after SIGTERM: ${server.stderr}`);
  assert.doesNotMatch(server.stderr, /herald: warning/, `${where(block)}: \`${server.name}\` warned`);
}

const SCENARIOS: Record<string, Scenario> = {
  /** README.md: `npx herald serve --workers auto`: one process per CPU, sharing the port. Given a free port (HERALD_PORT). */
  'serve-workers': {
    async run(blocks) {
      expectBlocks(blocks, ['sh'], 'serve-workers');
      const [block] = blocks as [Block];
      const [step] = steps(block);
      const port = await freePort();
      const server = await serveCommand(block, step!.command, port, { HERALD_PORT: String(port) });
      const url = `http://127.0.0.1:${port}`;
      assert.equal((await http(url, 'GET', '/readyz')).status, 200);
      // "auto": one worker per CPU. A worker counts the workers it has heard from (their cluster heartbeats).
      const workers = availableParallelism();
      await eventually(async () => (await http(url, 'GET', '/api/status')).body?.workers?.count === workers, `${workers} workers`, 30_000);
      await stopServer(block, server);
    },
  },

  /** README.md: the flags and variables of `herald serve`. $KEY is supplied; port 9000 becomes a free port. */
  'serve-flags': {
    async run(blocks) {
      expectBlocks(blocks, ['sh'], 'serve-flags');
      const [block] = blocks as [Block];
      const [withFlags, withEnv] = steps(block);
      assert.ok(withFlags && withEnv, `${where(block)} has two commands`);
      const key = `docs-key-${process.pid}-${Date.now()}`;
      // Both at once, each on a port of its own.
      await Promise.all([
        (async () => {
          const port = await freePort();
          const server = await serveCommand(block, substitute(withFlags.command, [['9000', String(port)]], where(block)), port, { KEY: key });
          const url = `http://127.0.0.1:${port}`;
          // --api-key took effect: the API wants the key, even from this machine.
          assert.equal((await http(url, 'GET', '/api/status')).status, 401);
          assert.equal((await http(url, 'GET', '/api/status', undefined, { authorization: `Bearer ${key}` })).status, 200);
          await stopServer(block, server);
        })(),
        (async () => {
          const port = await freePort();
          const server = await serveCommand(block, substitute(withEnv.command, [['9000', String(port)]], where(block)), port);
          assert.equal((await http(`http://127.0.0.1:${port}`, 'GET', '/readyz')).status, 200);
          await stopServer(block, server);
        })(),
      ]);
    },
  },

  /**
   * README.md: Herald as a library. HERALD_KEY is supplied; port 8080 becomes a free port. Checks what its
   * comments say: the echo action's reply, the connect and disconnect events, the API key, and SIGTERM
   * closing open connections with 1001.
   */
  library: {
    async run(blocks) {
      expectBlocks(blocks, ['ts'], 'library');
      const [block] = blocks as [Block];
      const port = await freePort();
      const key = `docs-key-${process.pid}-${Date.now()}`;
      const program = Program.node('library', stripTypes(substitute(block.code, [['port: 8080', `port: ${port}`]], where(block))), { HERALD_KEY: key });
      await program.log('herald listening');
      const url = `ws://127.0.0.1:${port}/ws`;

      const echo = /\/\/ Custom client actions: (\{.*\}) → (\{.*\})$/m.exec(block.code);
      assert.ok(echo, `${where(block)} shows a command of the echo action and its reply`);
      const client = await TestClient.open(url);
      const id = (await program.line(/^connected /, 'connected <id>')).split(' ')[1]!;
      client.send(echo[1]!);
      assert.deepEqual(await client.next(), JSON.parse(echo[2]!), `${where(block)}: the echo action's reply`);
      client.ws.close(1000, 'bye');
      assert.equal(await program.line(/^gone /, 'gone <id> <code> <reason>'), `gone ${id} 1000 bye`);

      const api = `http://127.0.0.1:${port}`;
      assert.equal((await http(api, 'GET', '/api/status')).status, 401, 'apiKeys: the API wants the key');
      assert.equal((await http(api, 'GET', '/api/status', undefined, { authorization: `Bearer ${key}` })).status, 200);

      const open = await TestClient.open(url);
      const ended = program.stop('SIGTERM');
      assert.equal((await open.closed).code, 1001, 'SIGTERM closes open connections with 1001');
      assert.deepEqual(await ended, { code: 0, signal: null }, `the program exits once closed: ${program.stderr}`);
    },
  },

  /** README.md: the connect hook option. Supplies sessionIsValid (cookie session=valid) and a free port. */
  'connect-hook-option': {
    async run(blocks) {
      expectBlocks(blocks, ['ts'], 'connect-hook-option');
      const [block] = blocks as [Block];
      const port = await freePort();
      const source = SUPPLIED.connectHookOption + substitute(block.code, [['createHerald({', `createHerald({ port: ${port},`]], where(block));
      const program = Program.node('connect-hook-option', stripTypes(source));
      await program.log('herald listening');
      const refused = new TestClient(`ws://127.0.0.1:${port}/ws`);
      const comment = /HeraldError\('unauthorized', '(.*?)'\); \/\/ closes with (\d+)/.exec(block.code);
      assert.ok(comment, `${where(block)} says how a refused connection is closed`);
      assert.deepEqual(await deadline(refused.closed, 5000, 'the refusal'), { code: Number(comment[2]), reason: comment[1] });
      const accepted = await TestClient.open(`ws://127.0.0.1:${port}/ws`, { headers: { cookie: 'session=valid' } });
      assert.equal((await accepted.request({ action: 'ping' })).ok, true);
      await accepted.close();
      await program.stop('SIGTERM');
    },
  },

  /**
   * docs/auth.md: the push-centre seed's own test. As its text says: a Herald with
   * auth.insecureUidLogin, and a WebSocket that sent {"uid": "123"}.
   */
  'seed-send': {
    async run(blocks) {
      expectBlocks(blocks, ['sh'], 'seed-send');
      const [block] = blocks as [Block];
      const herald = await startHerald({ auth: { insecureUidLogin: true } });
      const page = await TestClient.open(wsUrl(herald));
      page.send('{"uid": "123"}');
      await page.request({ action: 'ping' }); // handled after the login
      const remark = /\(the page receives the text frame (.+)\)/.exec(block.code);
      assert.ok(remark, `${where(block)} says what the page receives`);
      await runShell(block, cleanEnv(), (text) => live(text, herald.url), async (_step, index) => {
        if (index === 0) assert.equal(await page.next(), remark[1], 'the page receives the raw message');
      });
      await herald.close();
    },
  },

  /** docs/auth.md: a connect hook backend. Supplies `sessions`; port 3000 becomes a free port. */
  'connect-hook': {
    async run(blocks) {
      expectBlocks(blocks, ['js'], 'connect-hook');
      const [block] = blocks as [Block];
      const port = await freePort();
      const program = Program.node('connect-hook', SUPPLIED.sessions + substitute(block.code, [['.listen(3000)', `.listen(${port})`]], where(block)));
      await listening(port);
      const herald = await startHerald({ auth: { connectHook: { url: `http://127.0.0.1:${port}/herald/connect` } } });
      const alice = await TestClient.open(wsUrl(herald), { headers: { cookie: 'session=abc' } });
      await alice.request({ action: 'ping' }); // held back until the backend answered
      // The backend's answer made the connection Alice's, subscribed to her user topic and her rooms.
      await herald.publish('room:5', 'in the room');
      assert.deepEqual(await alice.next(), { action: 'publish', topic: 'room:5', message: 'in the room' });
      await herald.publish('user:alice', 'to alice');
      assert.deepEqual(await alice.next(), { action: 'publish', topic: 'user:alice', message: 'to alice' });
      await herald.send('alice', 'pushed');
      assert.deepEqual(await alice.next(), { action: 'push', message: 'pushed' });
      const stranger = new TestClient(wsUrl(herald));
      const closed = await deadline(stranger.closed, 5000, 'the refusal');
      assert.equal(closed.code, 4501);
      assert.match(closed.reason, /log in first/);
      await alice.close();
      await herald.close();
      await program.stop('SIGTERM');
    },
  },

  /**
   * docs/backend.md: the proxies' configuration, the Node backend, and curl against it. Port 3000 becomes a
   * free port, and the refresh interval (1m) 200ms, so that a refresh comes within the test. Checks what the
   * text after the backend says: Alice's subscribe and its data, the refusal without a session, the replaced
   * and the refused publication, room.members, and Bob closed with 4002 after session.logout.
   */
  'backend-proxies': {
    async run(blocks) {
      expectBlocks(blocks, ['yaml', 'js', 'sh'], 'backend-proxies');
      const [config, backend, curl] = blocks as [Block, Block, Block];
      const port = await freePort();
      const program = Program.node('backend-proxies', substitute(backend.code, [['.listen(3000)', `.listen(${port})`]], where(backend)));
      await listening(port);
      await runShell(curl, cleanEnv(), (text) => substitute(text, [['localhost:3000', `127.0.0.1:${port}`]], where(curl)));
      const yaml = substitute(config.code, [['localhost:3000', `127.0.0.1:${port}`], ['interval: 1m', 'interval: 200ms']], where(config));
      const herald = await startHerald(parseYaml(yaml) as HeraldOptions);
      const alice = await TestClient.open(wsUrl(herald), { headers: { cookie: 'session=a1' } });
      assert.deepEqual(await alice.request({ action: 'subscribe', topic: 'room:5' }), { id: 1, action: 'subscribe', ok: true, data: { members: ['alice', 'bob'] } });
      const stranger = await TestClient.open(wsUrl(herald));
      assert.deepEqual((await stranger.request({ action: 'subscribe', topic: 'room:5' })).error, { code: 'forbidden', message: 'members only' });
      assert.equal((await alice.request({ action: 'publish', topic: 'room:5', message: { text: 'hi' } })).ok, true);
      assert.deepEqual(await alice.next(), { action: 'publish', topic: 'room:5', message: { text: 'hi', from: 'alice' } });
      assert.deepEqual((await alice.request({ action: 'publish', topic: 'room:5', message: { text: 'buy spam' } })).error, { code: 'forbidden', message: 'no spam' });
      assert.deepEqual((await alice.request({ action: 'rpc', method: 'room.members', data: { room: 'room:5' } })).result, ['alice', 'bob']);
      const bob = await TestClient.open(wsUrl(herald), { headers: { cookie: 'session=b2' } });
      assert.equal((await bob.request({ action: 'rpc', method: 'session.logout' })).result, 'bye');
      assert.deepEqual(await deadline(bob.closed, 5000, 'the refresh that ends the session'), { code: 4002, reason: 'logged out' });
      assert.equal((await alice.request({ action: 'ping' })).ok, true, "Alice's session is still valid");
      await Promise.all([alice.close(), stranger.close()]);
      await herald.close();
      await program.stop('SIGTERM');
    },
  },

  /**
   * docs/auth.md: the worked example with JWTs, end to end: Herald with the example's configuration,
   * the backend's token (Node, jose; supplies `user`, and HERALD_JWT_SECRET as configured), the page
   * (supplies `token`, `userId`, `teamId`; logs what it receives), the backend's push; and "giving the
   * token" on the URL (supplies `jwt`).
   */
  'jwt-example': {
    browser: true,
    async run(blocks, { openPage, siteUrl }) {
      expectBlocks(blocks, ['js', 'yaml', 'js', 'js', 'sh'], 'jwt-example');
      const [onUrl, config, backend, page, push] = blocks as [Block, Block, Block, Block, Block];
      const options = parseYaml(substitute(config.code, [['https://app.example.com', siteUrl!]], where(config))) as HeraldOptions;
      const herald = await startHerald(options);
      const connected: Array<string | undefined> = [];
      const both = new Promise<void>((resolve) =>
        herald.on('connect', (connection) => {
          if (connected.push(connection.uid) === 2) resolve();
        }),
      );

      const signer = Program.node('jwt-backend', `${SUPPLIED.user}${backend.code}\n// Added by the test: hand the token over.\nconsole.log(token);\n`, {
        HERALD_JWT_SECRET: options.auth!.jwt!.secret!,
      });
      const token = await signer.line(/^ey/, 'the token');
      assert.deepEqual(await signer.exited, { code: 0, signal: null }, signer.stderr);

      const wss = (text: string, block: Block): string => substitute(text, [['wss://push.example.com', wsUrl(herald, '')]], where(block));
      const opened = await openPage!('/auth-jwt-example.html', modulePage([
        `const jwt = ${JSON.stringify(token)};\n${wss(onUrl.code, onUrl)}`,
        [
          `const token = ${JSON.stringify(token)}, userId = '42', teamId = 7;`,
          wss(page.code, page),
          '// Added by the test: log what the page receives.',
          'ws.addEventListener("message", (event) => console.log(JSON.parse(event.data)));',
        ].join('\n'),
      ]));
      try {
        // The token's topics claim grants private:team-7; user:42 is the user's own.
        assert.deepEqual(await opened.logs((v) => v?.id === 1, 'the subscribe reply'), { id: 1, action: 'subscribe', ok: true });
        await deadline(both, 5000, 'both connections');
        assert.deepEqual(connected, ['42', '42'], 'both connections, with the token on the URL and on the page, are user 42');
        const sent = (/-d '(.*)'/.exec(push.code) ?? [])[1];
        assert.ok(sent, `${where(push)} sends a JSON body`);
        await runShell(push, cleanEnv(), (text) => substitute(text, [['https://push.example.com', herald.url]], where(push)));
        assert.deepEqual(await opened.logs((v) => v?.action === 'push', 'the push'), { action: 'push', message: JSON.parse(sent).message });
      } finally {
        await opened.close();
      }
      await herald.close();
    },
  },

  /**
   * docs/client.md: a page of your site with the SDK. The site serves the token endpoint (a token signed
   * like auth.md's); render, reloadNews, notify and showBadge are supplied and log their calls. Topic news
   * keeps history, so that messages carry their offset.
   */
  'client-page': {
    browser: true,
    async run(blocks, { openPage, pages }) {
      expectBlocks(blocks, ['js'], 'client-page');
      const [block] = blocks as [Block];
      const secret = 'a-long-random-secret-of-32-chars-or-more';
      const herald = await startHerald({ auth: { jwt: { secret } }, history: [{ pattern: 'news' }] });
      const token = await new SignJWT({ sub: 'reader-1' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(secret));
      pages!.set('/my-app/herald-token', { type: 'text/plain', body: token });
      const opened = await openPage!('/client-page.html', modulePage([
        [
          '// Supplied by the test: your page\'s own functions, which log their calls.',
          'const render = (message, offset) => console.log({ render: message, offset });',
          'const reloadNews = () => console.log({ reloadNews: true });',
          'const notify = (message) => console.log({ notify: message });',
          'const showBadge = (state) => console.log({ badge: state });',
          substitute(block.code, [['wss://push.example.com', wsUrl(herald, '')], ['https://push.example.com', herald.url]], where(block)),
          'console.log({ published: true });',
        ].join('\n'),
      ]));
      try {
        // The publish resolved on the server's reply: the subscription to news, sent before it, stands.
        await opened.logs((v) => v?.published, 'the publish to resolve');
        await herald.publish('news', { title: 'hello' });
        assert.deepEqual(await opened.logs((v) => 'render' in (v ?? {}), 'render'), { render: { title: 'hello' }, offset: 1 });
        const pushed = await http(herald, 'POST', '/api/send', { uid: 'reader-1', message: 'for you' });
        assert.equal(pushed.body.delivered, 1, 'the page logged in as the token\'s user');
        assert.deepEqual(await opened.logs((v) => 'notify' in (v ?? {}), 'notify'), { notify: 'for you' });
        assert.deepEqual(
          opened.logged.filter((v: any) => 'badge' in (v ?? {})),
          [{ badge: 'connecting' }, { badge: 'connected' }],
          'showBadge follows the states',
        );
        assert.ok(!opened.logged.some((v: any) => v?.reloadNews), 'nothing was missed');
      } finally {
        await opened.close();
      }
      await herald.close();
    },
  },

  /**
   * docs/client.md: the Node blocks, as one program in their order: the client (connected, as the page
   * example does), a subscription from a position (supplies `since`: the first of two publications kept
   * in history; `token` is none, for a public topic; `recover` true), and the error codes (supplies
   * askForAccess and retryLater, which print their name).
   */
  'client-node': {
    async run(blocks) {
      expectBlocks(blocks, ['js', 'js', 'js'], 'client-node');
      const [create, subscribe, errors] = blocks as [Block, Block, Block];
      const herald = await startHerald({ history: [{ pattern: 'chat:*' }] });
      const first = await herald.publish('chat:lobby', 'first');
      await herald.publish('chat:lobby', 'second');
      const program = Program.node(
        'client-node',
        [
          live(create.code, herald.url),
          'client.connect(); // Added by the test.',
          `// Supplied by the test.\nconst since = ${JSON.stringify({ offset: first.offset, epoch: first.epoch })}, token = undefined, recover = true;`,
          subscribe.code,
          "room.on('message', ({ message, context }) => console.log(JSON.stringify({ message, offset: context.offset }))); // Added by the test.",
          "// Supplied by the test.\nconst askForAccess = () => console.log('askForAccess'), retryLater = () => console.log('retryLater');",
          errors.code,
          'client.close(); // Added by the test.',
        ].join('\n'),
      );
      assert.deepEqual(JSON.parse(await program.line(/^\{/, 'the publication after `since`')), { message: 'second', offset: 2 });
      await program.line(/^askForAccess$/, 'askForAccess (the publish to private:x is forbidden)');
      assert.deepEqual(await program.exited, { code: 0, signal: null }, program.stderr);
      assert.ok(!program.lines.includes('retryLater'));
      await herald.close();
    },
  },

  /**
   * docs/transports.md: resumable streams, end to end. The Node backend runs as a program (port 8080 becomes a
   * free port); the test supplies `model`, whose stream yields the tokens of a known text 20 ms apart, asks
   * once and reads the answer's topic from its start (`0.`): exactly those tokens, then the end. The curl
   * block then writes answer:7f3a one step at a time while the EventSource page reads it; after the first
   * chunk the page is reloaded: it shows what it saved and goes on from there, with no repeat. The SDK page
   * then reads the whole answer from its start. Both pages get `render` (logs the text and the end) and
   * `gone` (logs the reason).
   */
  'resumable-stream': {
    browser: true,
    async run(blocks, { openPage }) {
      expectBlocks(blocks, ['js', 'sh', 'js', 'js'], 'resumable-stream');
      const [backend, curl, eventSource, sdk] = blocks as [Block, Block, Block, Block];
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const tokens = ['Once', ' upon', ' a', ' time', ',', ' a', ' stream', ' — ✓'];
      const program = Program.node(
        'resumable-stream',
        [
          '// Supplied by the test: a model that streams a known text.',
          `const model = { async *stream() { for (const token of ${JSON.stringify(tokens)}) { await new Promise((resolve) => setTimeout(resolve, 20)); yield token; } } };`,
          substitute(backend.code, [['port: 8080', `port: ${port}`]], where(backend)),
          "console.log(`topic ${await ask('why?')}`); // Added by the test.",
          "process.on('SIGTERM', () => herald.close()); // Added by the test.",
        ].join('\n'),
      );
      const topic = (await program.line(/^topic answer:/, 'the topic of the answer')).slice('topic '.length);
      const reader = await openSse(url, [topic], { query: { lastEventId: '0.' } });
      assert.equal((await reader.next()).json.recovered, true);
      assert.deepEqual(
        (await reader.take(tokens.length + 1)).map((event) => event.json.message),
        [...tokens.map((text, i) => ({ seq: i + 1, text })), { seq: tokens.length + 1, end: 'done' }],
        `${where(backend)}: the model's tokens in order, then the end`,
      );
      reader.destroy();

      const supplied = [
        "// Supplied by the test: your page's functions, which log their calls.",
        'const render = (text, end) => console.log({ render: text, end });',
        'const gone = (reason) => console.log({ gone: reason });',
      ].join('\n');
      const rendered = (text: string, end: string | null) => ({ render: text, end });
      const page = await openPage!('/resumable-stream.html', modulePage([`${supplied}\n${live(eventSource.code, url)}`]));
      let mark = 0;
      /** Waits until the page logged `value` at or after `mark`. */
      const shows = (value: unknown, what: string) => page.logs((v) => page.logged.indexOf(v) >= mark && matches(v, value), what);
      try {
        await shows(rendered('', null), 'the empty answer');
        await runShell(curl, cleanEnv(), (text) => live(text, url), async (_step, index) => {
          if (index === 0) {
            await shows(rendered('Hello', null), 'the first chunk');
            mark = page.logged.length;
            await page.page.reload();
            await shows(rendered('Hello', null), 'the saved text after the reload');
          }
          if (index === 1) await shows(rendered('Hello from curl', null), 'the second chunk, after the reload');
          if (index === 2) await shows(rendered('Hello from curl', 'done'), 'the end');
        });
        assert.deepEqual(
          page.logged.slice(mark),
          [rendered('Hello', null), rendered('Hello from curl', null), rendered('Hello from curl', 'done')],
          `${where(eventSource)}: after the reload, the saved text, then exactly what followed it`,
        );
      } finally {
        await page.close();
      }

      const sdkPage = await openPage!('/resumable-stream-sdk.html', modulePage([`${supplied}\n${live(sdk.code, url)}`]));
      try {
        await sdkPage.logs((v) => v?.end === 'done', 'the end, with the SDK');
        assert.deepEqual(
          sdkPage.logged,
          [rendered('', null), rendered('Hello', null), rendered('Hello from curl', null), rendered('Hello from curl', 'done')],
          `${where(sdk)}: the whole answer from its start`,
        );
      } finally {
        await sdkPage.close();
      }
      assert.deepEqual(await program.stop('SIGTERM'), { code: 0, signal: null }, program.stderr);
    },
  },

  /**
   * docs/client.md: the server-side subscriptions block, in a Node program: supplied a client logged in as
   * ann (a token the test signs), connected once the block ran. The test subscribes ann to task:7 through
   * the server API, publishes to it, and ends the subscription; the program prints what the block logs.
   */
  'client-server-subscriptions': {
    async run(blocks) {
      expectBlocks(blocks, ['js'], 'client-server-subscriptions');
      const [block] = blocks as [Block];
      const secret = 'a-docs-secret-that-is-at-least-32-chars';
      const herald = await startHerald({ auth: { jwt: { secret } } });
      const token = await new SignJWT({ sub: 'ann' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(secret));
      const program = Program.node(
        'client-server-subscriptions',
        [
          "import WebSocket from 'ws'; // Supplied by the test.",
          "import { HeraldClient } from '@herald/client'; // Supplied by the test.",
          `const client = new HeraldClient({ url: ${JSON.stringify(wsUrl(herald))}, WebSocket, token: ${JSON.stringify(token)} }); // Supplied by the test.`,
          block.code,
          "client.on('connected', () => console.log('connected')); // Added by the test.",
          "client.on('serverSubscribed', ({ subscription }) => subscription.on('unsubscribed', () => client.close())); // Added by the test.",
          'client.connect(); // Added by the test.',
        ].join('\n'),
      );
      await program.line(/^connected$/, 'connected');
      await eventually(() => herald.userConnections('ann') === 1, 'ann on the server');
      assert.deepEqual(await herald.subscribeUser('ann', 'task:7'), { connections: 1, nodes: 0 });
      await herald.publish('task:7', { progress: 50 });
      assert.equal(await program.line(/^task:7 /, 'the message'), 'task:7 {"progress":50}');
      await herald.unsubscribeUser('ann', 'task:7', { reason: 'done' });
      assert.equal(await program.line(/^left /, 'the end'), 'left task:7 done');
      assert.deepEqual(await program.exited, { code: 0, signal: null }, program.stderr);
      await herald.close();
    },
  },

  /**
   * docs/deployment.md: the configuration of a production install. The YAML and the environment file are
   * written as they are under /etc/herald (a temporary folder); the check command must read both and
   * print them with keys and secrets masked.
   */
  'deployment-config': {
    async run(blocks) {
      expectBlocks(blocks, ['yaml', 'sh', 'sh'], 'deployment-config');
      const [yaml, envFile, check] = blocks as [Block, Block, Block];
      const etc = join(workdir(), 'etc/herald/');
      mkdirSync(etc, { recursive: true });
      writeFileSync(join(etc, 'herald.yaml'), yaml.code);
      writeFileSync(join(etc, 'herald.env'), `${envFile.code}\n`);
      // One shell: the first line exports the variables the second reads.
      const result = await bash(substitute(check.code, [['/etc/herald/', etc]], where(check)), cleanEnv());
      assert.equal(result.code, 0, `${where(check)} exited ${result.code}: ${result.stderr}`);
      const effective = JSON.parse(result.stdout) as { apiKeys: string[]; auth: { jwt: { secret: string } }; host: string; shutdown: { drainWindow: number } };
      const secrets = [...envFile.code.matchAll(/^HERALD_\w+=(.*)$/gm)].flatMap((m) => m[1]!.split(','));
      assert.equal(secrets.length, 3);
      for (const secret of secrets) assert.ok(!result.stdout.includes(secret), `${where(check)} printed a secret`);
      assert.equal(effective.apiKeys.length, 2, 'both keys of herald.env');
      assert.match(effective.auth.jwt.secret, /\*\*\*$/, 'the JWT secret of herald.env, masked');
      assert.equal(effective.host, '127.0.0.1', 'the YAML was read');
      assert.equal(effective.shutdown.drainWindow, 10_000);
    },
  },

  /** docs/deployment.md: the sysctl file. Not applied (that takes root): each setting must name a kernel parameter, with a value of its shape. */
  sysctl: {
    async run(blocks) {
      expectBlocks(blocks, ['sh'], 'sysctl');
      const [block] = blocks as [Block];
      const settings = block.code.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
      assert.ok(settings.length >= 5);
      for (const line of settings) {
        const setting = /^([\w.-]+) = ([\d ]+?)\s*(?:#.*)?$/.exec(line);
        assert.ok(setting, `${where(block)}: "${line}" is a sysctl setting`);
        const path = `/proc/sys/${setting[1]!.replaceAll('.', '/')}`;
        assert.ok(existsSync(path), `${where(block)}: ${setting[1]} is no kernel parameter`);
        const current = readFileSync(path, 'utf8').trim().split(/\s+/);
        assert.equal(setting[2]!.split(/\s+/).length, current.length, `${where(block)}: ${setting[1]} takes ${current.length} number(s)`);
      }
    },
  },

  /**
   * docs/lhttp.md: the processor and filter example (port 8081 becomes a free port). Checks what its
   * comments say: the processor's reply, onOpen and onClose, and the filter dropping an anonymous post.
   */
  'lhttp-processors': {
    async run(blocks) {
      expectBlocks(blocks, ['ts'], 'lhttp-processors');
      const [block] = blocks as [Block];
      const port = await freePort();
      const program = Program.node('lhttp-processors', stripTypes(substitute(block.code, [['port: 8081', `port: ${port}`]], where(block))));
      await program.log('herald listening');
      const reply = /\/\/ → (LHTTP\/1\.0 .*<body>)$/m.exec(block.code);
      assert.ok(reply, `${where(block)} shows the processor's reply`);
      const expected = (body: string): string => reply[1]!.replaceAll('\\r\\n', '\r\n').replace('<body>', body);

      const reader = await TestClient.open(`ws://127.0.0.1:${port}/`);
      reader.send('LHTTP/1.0 chat\r\nsubscribe:room\r\n\r\nhello');
      assert.equal(await reader.next(), expected('hello'));
      await program.line(/^first message from \S+$/, 'onOpen (the first message of the connection)');

      const writer = await TestClient.open(`ws://127.0.0.1:${port}/`);
      writer.send('LHTTP/1.0 chat\r\npublish:room\r\n\r\nanonymous');
      writer.send('LHTTP/1.0 chat\r\npublish:room\r\nnick:bo\r\n\r\nsigned');
      assert.equal(await writer.next(), expected('anonymous'));
      // Handled in order: the first publication the reader gets is the signed one.
      assert.match(await reader.next(), /^LHTTP\/1\.0 chat\r\n[^]*\r\n\r\nsigned$/);
      await reader.close();
      assert.equal(await program.line(/^gone after /, 'onClose'), 'gone after chat');
      await writer.close();
      await program.stop('SIGTERM');
    },
  },

  /**
   * docs/lhttp.md: the complete chat: the server (port 8081 becomes a free port) and its page, opened in
   * two windows: a line typed in one appears in both, and twice in the sender's.
   */
  'lhttp-chat': {
    browser: true,
    async run(blocks, { openPage }) {
      expectBlocks(blocks, ['js', 'html'], 'lhttp-chat');
      const [server, html] = blocks as [Block, Block];
      const port = await freePort();
      const program = Program.node('lhttp-chat', substitute(server.code, [['port: 8081', `port: ${port}`]], where(server)));
      await program.log('herald listening');
      const page = `<!doctype html><meta charset="utf-8">\n${substitute(html.code, [['ws://localhost:8081/', `ws://127.0.0.1:${port}/`]], where(html))}`;
      const windows = await Promise.all([openPage!('/lhttp-chat.html', page), openPage!('/lhttp-chat.html', page)]);
      try {
        // Both windows subscribed (the server counts them; LHTTP has no reply to a subscribe).
        await eventually(
          async () => ((await http(`http://127.0.0.1:${port}`, 'GET', '/api/topics')).body?.topics ?? []).some((t: any) => t.topic === 'chatroom' && t.subscribers === 2),
          'both windows in chatroom',
        );
        const [sender, other] = windows as [BrowserPage, BrowserPage];
        await sender.page.fill('#text', 'hello from one window');
        await sender.page.click('#send');
        const lines = (page: Page) => page.$$eval('#lines li', (items) => items.map((li) => li.textContent));
        await other.page.waitForFunction("document.querySelectorAll('#lines li').length >= 1");
        await sender.page.waitForFunction("document.querySelectorAll('#lines li').length >= 2");
        assert.deepEqual(await lines(sender.page), ['hello from one window', 'hello from one window']);
        assert.deepEqual(await lines(other.page), ['hello from one window']);
        for (const window of windows) assert.deepEqual(window.errors, []);
      } finally {
        for (const window of windows) await window.close();
      }
      assert.deepEqual(await program.stop('SIGTERM'), { code: 0, signal: null }, program.stderr);
    },
  },

  /**
   * docs/scaling.md: publishing into Redis without an SDK, with the suite's own redis-server: one node
   * with the rawTopics the block names, one without, and a WebSocket subscriber on each; each PUBLISH
   * must reach the subscriber the comments name, as they show.
   */
  'raw-redis': {
    async run(blocks, { t }) {
      expectBlocks(blocks, ['sh'], 'raw-redis');
      const [block] = blocks as [Block];
      const missing = requireBinary('redis-server');
      if (missing) return t.skip(missing);
      const redis = new RedisServer();
      await redis.start();
      try {
        const named = /^# with redis\.rawTopics: (\[.*\])$/m.exec(block.code);
        assert.ok(named, `${where(block)} names its rawTopics`);
        const rawTopics = parseYaml(named[1]!) as string[];
        const raw = await startHerald({ broker: 'redis', redis: { url: redis.url, rawTopics } });
        const plain = await startHerald({ broker: 'redis', redis: { url: redis.url } });
        await Promise.all([brokerReady(raw), brokerReady(plain)]);
        const channel = await TestClient.open(wsUrl(raw));
        const orders = await TestClient.open(wsUrl(raw));
        const namespaced = await TestClient.open(wsUrl(plain));
        await channel.request({ action: 'subscribe', topic: 'channel' });
        await orders.request({ action: 'subscribe', topic: 'orders' });
        await namespaced.request({ action: 'subscribe', topic: 'orders' });
        const client = new Redis(redis.url);
        await eventually(async () => {
          const counts = (await client.call('PUBSUB', 'NUMSUB', 'channel', 'orders', 'herald:orders')) as Array<string | number>;
          return counts[1] === 1 && counts[3] === 1 && counts[5] === 1;
        }, 'the nodes to subscribe in Redis');
        client.disconnect();

        const get = /subscribers of topic "channel" get (\{.*\})$/m.exec(block.code);
        const paid = /^#\s+\.\.\. "message":(\{.*\})$/m.exec(block.code);
        assert.ok(get && paid, `${where(block)} shows what subscribers get`);
        const ordersFrame = { action: 'publish', topic: 'orders', message: JSON.parse(paid[1]!) };
        const expected: Array<[TestClient, unknown]> = [
          [channel, JSON.parse(get[1]!)],
          [orders, ordersFrame],
          [namespaced, ordersFrame],
        ];
        assert.equal(steps(block).length, expected.length, `${where(block)}: one subscriber to look at per command`);
        await runShell(
          block,
          cleanEnv(),
          (text) => substitute(text, [[/^redis-cli /, `redis-cli -p ${redis.port} `]], where(block)),
          async (step, index) => {
            const [subscriber, frame] = expected[index]!;
            assert.deepEqual(await subscriber.next(), frame, `${block.file}:${step.line}: what the subscriber gets`);
          },
        );
        await raw.close();
        await plain.close();
      } finally {
        await redis.stop();
      }
    },
  },
};

/**
 * Type-checks the TypeScript blocks, with what their scenarios supply, in one tsc run started before
 * the tests (it takes seconds of CPU, spent while the other tests wait on their servers).
 */
function useTypecheck(): { typed: Block[]; result: () => Promise<number | null>; output: () => string } {
  const typed = all.filter((block) => TYPESCRIPT.has(block.lang) && block.marker?.kind !== 'skip');
  let output = '';
  let child: ReturnType<typeof spawn> | null = null;
  let result: Promise<number | null> | null = null;
  before(() => {
    const dir = join(workdir(), 'typecheck');
    mkdirSync(dir, { recursive: true });
    const files = typed.map((block) => {
      const name = `${block.file.replace(/\W/g, '-')}-${block.line}.ts`;
      const prelude = block.marker?.kind === 'scenario' && block.marker.name === 'connect-hook-option' ? SUPPLIED.connectHookOption : '';
      writeFileSync(join(dir, name), `${prelude}${block.code}\nexport {};\n`);
      return name;
    });
    const compilerOptions = { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022'], types: ['node'], strict: true, noEmit: true, skipLibCheck: true };
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files }));
    child = spawn(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json'), '--pretty', 'false'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d: Buffer) => (output += d));
    child.stderr!.on('data', (d: Buffer) => (output += d));
    result = once(child, 'exit').then(([code]) => code as number | null);
  });
  after(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });
  return { typed, result: () => result!, output: () => output };
}

describe('the examples of README.md and docs/', () => {
  const typecheck = useTypecheck();
  const chromium = useBrowser();
  // Pages come from another origin than Herald's, as a site that uses Herald would.
  let site: Server;
  let siteUrl: string;
  const pages = new Map<string, { type: string; body: string }>();
  before(async () => {
    site = createServer((request, response) => {
      const page = pages.get(request.url ?? '');
      response.writeHead(200, { 'content-type': page?.type ?? 'text/plain' });
      response.end(page?.body ?? '');
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => site.close(() => resolve())));

  /** Serves `html` as a page of the site and opens it in a new browser context (a window of its own). */
  async function openPage(path: string, html: string): Promise<BrowserPage> {
    pages.set(path, { type: 'text/html; charset=utf-8', body: html });
    const context = await chromium.browser()!.newContext();
    const opened = new BrowserPage(context, await context.newPage());
    await opened.page.goto(siteUrl + path);
    return opened;
  }

  it('mark every shell and JavaScript block with <!-- test: run -->, <!-- test: scenario <name> --> or <!-- test: skip (reason) -->', () => {
    const unmarked = all.filter((block) => RUNNABLE.has(block.lang) && block.marker === null).map(where);
    assert.deepEqual(unmarked, [], `blocks without a test marker on the line before the fence:\n  ${unmarked.join('\n  ')}`);
    const runnable = all.filter((block) => RUNNABLE.has(block.lang));
    assert.ok(runnable.length > 20, `found ${runnable.length} blocks`);
    for (const block of all) {
      if (block.marker?.kind === 'skip') assert.ok(block.marker.reason.trim().length > 3, `${where(block)}: a skip says why`);
    }
    const named = new Set(all.flatMap((b) => (b.marker?.kind === 'scenario' ? [b.marker.name] : [])));
    assert.deepEqual([...named].filter((name) => !(name in SCENARIOS)), [], 'markers naming a scenario this file does not have');
    assert.deepEqual(Object.keys(SCENARIOS).filter((name) => !named.has(name)), [], 'scenarios no block is marked for');
  });

  it('every YAML block is a valid Herald configuration file (or, marked skip, not a Herald configuration at all)', () => {
    const yaml = all.filter((block) => block.lang === 'yaml' || block.lang === 'yml');
    assert.ok(yaml.length >= 10, `found ${yaml.length} YAML blocks`);
    const dir = join(workdir(), 'yaml');
    mkdirSync(dir, { recursive: true });
    for (const block of yaml) {
      const file = join(dir, `${block.file.replace(/\W/g, '-')}-${block.line}.yaml`);
      writeFileSync(file, block.code);
      const check = (): unknown => loadConfig({ file, env: {} });
      if (block.marker?.kind === 'skip') assert.throws(check, `${where(block)} is marked skip but is a valid Herald configuration: validate it instead`);
      else assert.doesNotThrow(check, `${where(block)} is not a valid Herald configuration`);
    }
  });

  // One after the other: they share one Herald, and several publish to its topic news.
  describe('blocks marked run', () => {
    let herald: Herald;
    let env: NodeJS.ProcessEnv;
    before(async () => {
      herald = await startHerald();
      env = cleanEnv({ HERALD_URL: herald.url });
    });

    for (const block of all.filter((b) => SHELL.has(b.lang) && b.marker?.kind === 'run')) {
      it(`${where(block)} runs as shown`, async () => {
        await runShell(block, env, (text) => live(text, herald.url));
      });
    }

    for (const block of all.filter((b) => !SHELL.has(b.lang) && RUNNABLE.has(b.lang) && b.marker?.kind === 'run')) {
      it(`${where(block)} runs as shown in a browser`, async (t) => {
        if (!chromium.browser()) return t.skip(chromium.skipped());
        const marker = block.marker as { kind: 'run'; meanwhile?: string };
        const expected = [...block.code.matchAll(/\/\/ ← (.+)$/gm)].map((m) => {
          const parsed = parseJson(m[1]!);
          assert.ok(parsed.ok, `${where(block)}: "// ← ${m[1]}" is not JSON`);
          return parsed.value;
        });
        const page = await openPage(`/${block.file.replace(/\W/g, '-')}-${block.line}.html`, modulePage([live(block.code, herald.url)]));
        const until = Date.now() + 10_000;
        while (page.logged.length < expected.length && page.errors.length === 0 && Date.now() < until) {
          if (marker.meanwhile) {
            const result = await bash(live(marker.meanwhile, herald.url), env);
            assert.equal(result.code, 0, `${where(block)}: the meanwhile command failed: ${result.stderr}`);
          }
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        await page.close();
        assert.deepEqual(page.errors, [], `${where(block)}: errors in the page`);
        const ok = expected.every((e, i) => matches(page.logged[i], e));
        assert.ok(ok, `${where(block)} logged\n  ${page.logged.map((v) => JSON.stringify(v)).join('\n  ')}\nbut the doc shows\n  ${expected.map((e) => JSON.stringify(e)).join('\n  ')}`);
      });
    }
  });

  // Two at a time: each has servers of its own on free ports, and mostly waits for processes to start.
  describe('scenarios', { concurrency: 2 }, () => {
    for (const [name, scenario] of Object.entries(SCENARIOS)) {
      const used = scenarioBlocks(name);
      it(`${name}: ${used.map(where).join(', ')}`, async (t) => {
        if (scenario.browser && !chromium.browser()) return t.skip(chromium.skipped());
        await scenario.run(used, { t, openPage, siteUrl, pages });
      });
    }

    it('the TypeScript blocks type-check (strict), with what their scenarios supply', async () => {
      assert.ok(typecheck.typed.length >= 3, `found ${typecheck.typed.length} TypeScript blocks`);
      const code = await deadline(typecheck.result(), 60_000, 'tsc');
      assert.equal(code, 0, `tsc found errors in the TypeScript blocks (${typecheck.typed.map(where).join(', ')}):\n${typecheck.output()}`);
    });
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
