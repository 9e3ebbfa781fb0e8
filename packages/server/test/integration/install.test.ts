import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { VERSION } from '../../src/version.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../../../../', import.meta.url));
const SERVER = join(ROOT, 'packages/server');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Runs a command, failing with its output when it exits non-zero. */
async function sh(file: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }): Promise<string> {
  try {
    const { stdout } = await run(file, args, { cwd: options.cwd, env: options.env ?? process.env, timeout: options.timeout ?? 120_000, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed in ${options.cwd}: ${(err as Error).message}\n${stdout ?? ''}\n${stderr ?? ''}`);
  }
}

const temporary: string[] = [];
after(() => {
  for (const dir of temporary) rmSync(dir, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

describe('the herald command in a checkout', () => {
  it('is a file of the repository, so npm links it on the first install, before any build', async () => {
    const pkg = JSON.parse(readFileSync(join(SERVER, 'package.json'), 'utf8')) as { bin: Record<string, string>; files: string[] };
    const target = join(SERVER, pkg.bin.herald!);
    assert.ok(!pkg.bin.herald!.includes('dist/'), `the bin is not a build output: ${pkg.bin.herald}`);
    assert.ok(existsSync(target));
    // `.ci/run` installs a clean clone with `npm ci` before `npm test` builds: the link exists only if npm
    // found its target at install time.
    const link = join(ROOT, 'node_modules/.bin/herald');
    assert.ok(existsSync(link), 'npm linked node_modules/.bin/herald');
    assert.equal(realpathSync(link), realpathSync(target));
    assert.equal((await sh(NPM, ['exec', '--', 'herald', '--version'], { cwd: ROOT })).trim(), VERSION);
  });

  it('says to run npm run build when the CLI is not built yet', async () => {
    const dir = tempDir('herald-unbuilt-');
    mkdirSync(join(dir, 'bin'));
    copyFileSync(join(SERVER, 'bin/herald.js'), join(dir, 'bin/herald.js'));
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    await assert.rejects(sh(process.execPath, [join(dir, 'bin/herald.js'), 'status'], { cwd: dir }), (err: Error) => {
      assert.match(err.message, /herald: the CLI is not built yet: run "npm run build"/);
      return true;
    });
  });
});

describe('the production install of docs/deployment.md', () => {
  it('builds the /client.js bundle before the prune, and the prune keeps it', async () => {
    const doc = readFileSync(join(ROOT, 'docs/deployment.md'), 'utf8');
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    for (const [where, text] of [['docs/deployment.md', doc], ['Dockerfile', dockerfile]] as const) {
      const line = text.split('\n').find((l) => /npm ci\b.*npm prune --omit=dev/.test(l));
      assert.ok(line, `${where} has the install line`);
      assert.match(line, /npm run build && npm prune --omit=dev/, `${where}: the build (with the bundle) runs before the prune: ${line}`);
    }
    assert.match(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts.build, /npm run bundle -w @herald\/client/);
    // The bundler goes with the prune (so the bundle cannot be made after it); the SDK package with its bundle stays.
    const { stdout } = await run(NPM, ['prune', '--omit=dev', '--dry-run'], { cwd: ROOT, timeout: 120_000 });
    const removed = stdout.split('\n').filter((l) => l.startsWith('remove ')).map((l) => l.split(' ')[1]);
    assert.ok(removed.includes('esbuild'), `esbuild is a dev dependency: ${removed.join(', ')}`);
    for (const kept of ['@herald/client', '@herald/protocol', 'herald', 'fastify', '@fastify/static']) assert.ok(!removed.includes(kept), `${kept} is kept`);
  });
});

describe('npm pack: herald, @herald/client and @herald/protocol installed into an empty project', () => {
  it('install from their tarballs and work there: ESM exports, types, /client.js, the CLI, a publish/subscribe round trip', async () => {
    const packed = tempDir('herald-pack-');
    const answer = await sh(NPM, ['pack', '--json', '--pack-destination', packed, '-w', '@herald/protocol', '-w', '@herald/client', '-w', 'herald'], { cwd: ROOT });
    const tarballs = (JSON.parse(answer) as Array<{ filename: string; files: Array<{ path: string }> }>).map((entry) => {
      assert.ok(!entry.files.some((file) => file.path.includes('/test/')), `${entry.filename} ships no tests`);
      return join(packed, entry.filename);
    });
    assert.equal(tarballs.length, 3);

    const project = join(packed, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'uses-herald', private: true, type: 'module' }));
    // Dependencies come from the npm cache when they are there (the checkout's install filled it), else the registry.
    await sh(NPM, ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], { cwd: project, timeout: 300_000 });
    assert.ok(existsSync(join(project, 'node_modules/@herald/client/dist/herald-client.min.js')), 'the bundle is installed with the SDK');

    writeFileSync(
      join(project, 'round-trip.mjs'),
      `import { createHerald } from 'herald';
import { HeraldClient } from '@herald/client';
import { CloseCode, topicProblem } from '@herald/protocol';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import WebSocket from 'ws';

const herald = await createHerald({ port: 0, host: '127.0.0.1', log: { level: 'silent' } });
const bundle = await fetch(herald.url + '/client.js');
const client = new HeraldClient({ url: herald.url.replace('http', 'ws') + '/ws', WebSocket });
const news = client.subscribe('news');
client.connect();
await news.ready;
const received = [];
const both = new Promise((resolve) => news.on('message', ({ message }) => { received.push(message); if (received.length === 2) resolve(); }));
await herald.publish('news', { from: 'library' });
// The CLI of the installed package, against the running server.
const cli = await promisify(execFile)('node_modules/.bin/herald', ['publish', 'news', '{"from":"cli"}', '--url', herald.url]);
await both;
client.close();
await herald.close();
console.log(JSON.stringify({ bundle: bundle.status, bundleType: bundle.headers.get('content-type'), received, cli: cli.stdout.trim(), goingAway: CloseCode.GOING_AWAY, badTopic: topicProblem('') !== null }));
`,
    );
    const result = JSON.parse(await sh(process.execPath, ['round-trip.mjs'], { cwd: project, timeout: 30_000 }));
    assert.deepEqual(result, {
      bundle: 200,
      bundleType: 'text/javascript; charset=utf-8',
      received: [{ from: 'library' }, { from: 'cli' }],
      cli: '{"ok":true}',
      goingAway: 1001,
      badTopic: true,
    });

    // Types: a TypeScript program using the three packages compiles, and a wrong type is caught (were the
    // types missing, everything would be \`any\` and each @ts-expect-error line would itself be an error).
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022', 'dom'], strict: true, noEmit: true, skipLibCheck: true } }),
    );
    writeFileSync(
      join(project, 'uses.ts'),
      `import { createHerald, HeraldError, type Herald } from 'herald';
import { HeraldClient } from '@herald/client';
import { CloseCode } from '@herald/protocol';
const herald: Herald = await createHerald({ port: 0, apiKeys: ['a-long-enough-key'] });
herald.handle('echo', (command) => command.text);
new HeraldClient({ url: 'ws://localhost:8080/ws' }).subscribe('news').on('message', ({ message }) => console.log(message));
const code: number = CloseCode.GOING_AWAY;
if (code !== 1001) throw new HeraldError('unauthorized', 'no');
// @ts-expect-error a close code is a number
const wrong: string = CloseCode.GOING_AWAY;
// @ts-expect-error createHerald knows its options
await createHerald({ prot: 8080 });
`,
    );
    await sh(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', '.'], { cwd: project });
  });
});
