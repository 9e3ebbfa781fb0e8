import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { WebSocket } from 'ws';
import type { Herald } from '../../src/index.js';
import { useBrowser } from '../helpers/browser.js';
import { startHerald } from '../helpers/helpers.js';
import { APP, pusherOptions, serverLib, type PusherServerLib } from '../helpers/pusher.js';

const require = createRequire(import.meta.url);
/** The libraries' own browser builds, served as they are: pusher-js (UMD, window.Pusher) and Laravel Echo (IIFE, window.Echo). */
const PUSHER_JS = readFileSync(require.resolve('pusher-js/dist/web/pusher.js'));
/** pusher-js's browser build with end-to-end encryption (tweetnacl inside): what a page with private-encrypted- channels loads. */
const PUSHER_ENC_JS = readFileSync(require.resolve('pusher-js/dist/web/pusher-with-encryption.js'));
// laravel-echo's exports name no subpath: its IIFE build sits beside its main file.
const ECHO_JS = readFileSync(join(dirname(require.resolve('laravel-echo')), 'echo.iife.js'));

/** The page's global object, as the functions passed to page.evaluate see it (they run in the browser). */
declare const window: any;

/**
 * The application's site: its page, the two libraries, and its auth endpoint
 * (`/broadcasting/auth`, `/pusher/user-auth`) signing with the official
 * server library, as a Laravel app's broadcasting routes do. `?user=` says
 * who the visitor is.
 */
function site(lib: PusherServerLib): Server {
  return createServer((req, res) => {
    const url = new URL(req.url!, 'http://site');
    if (url.pathname === '/pusher.js' || url.pathname === '/echo.js' || url.pathname === '/pusher-enc.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(url.pathname === '/pusher.js' ? PUSHER_JS : url.pathname === '/echo.js' ? ECHO_JS : PUSHER_ENC_JS);
      return;
    }
    if (url.pathname === '/encrypted') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><meta charset="utf-8"><title>app</title><script src="/pusher-enc.js"></script>');
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><meta charset="utf-8"><title>app</title><script src="/pusher.js"></script><script src="/echo.js"></script>');
      return;
    }
    if (req.method !== 'POST' || (url.pathname !== '/broadcasting/auth' && url.pathname !== '/pusher/user-auth')) {
      res.writeHead(404).end();
      return;
    }
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const params = new URLSearchParams(body);
      const user = url.searchParams.get('user') ?? 'guest';
      const socketId = params.get('socket_id')!;
      const answer =
        url.pathname === '/pusher/user-auth'
          ? lib.authenticateUser(socketId, { id: user })
          : params.get('channel_name')!.startsWith('presence-')
            ? lib.authorizeChannel(socketId, params.get('channel_name')!, { user_id: user, user_info: { name: user } })
            : lib.authorizeChannel(socketId, params.get('channel_name')!);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
}

describe('pusher-js and Laravel Echo (pusher broadcaster) in headless Chromium', () => {
  const chromium = useBrowser();
  let herald: Herald;
  let lib: PusherServerLib;
  let app: Server;
  let appUrl: string;

  before(async () => {
    herald = await startHerald(pusherOptions());
    lib = serverLib(herald);
    app = site(lib);
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => app.close(() => resolve())));

  /** A visitor's page with Echo connected to Herald as `user`; `window.seen` collects what the page's listeners got. */
  async function visitor(user: string): Promise<Page> {
    const browser = chromium.browser()!;
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('pageerror', (err) => assert.fail(`page of ${user}: ${err.message}`));
    await page.goto(`${appUrl}/?user=${user}`);
    await page.evaluate(
      ({ key, port, user }) => {
        const w = window;
        w.seen = [];
        w.echo = new w.Echo.default({
          broadcaster: 'pusher',
          key,
          cluster: 'herald',
          wsHost: '127.0.0.1',
          wsPort: port,
          forceTLS: false,
          enabledTransports: ['ws'],
          disableStats: true,
          authEndpoint: `/broadcasting/auth?user=${user}`,
          userAuthentication: { endpoint: `/pusher/user-auth?user=${user}`, transport: 'ajax' },
        });
        return new Promise<void>((resolve) => w.echo.connector.pusher.connection.bind('connected', () => resolve()));
      },
      { key: APP.key, port: herald.port, user },
    );
    return page;
  }

  const seen = (page: Page): Promise<unknown[]> => page.evaluate(() => window.seen);
  async function waitSeen(page: Page, count: number): Promise<unknown[]> {
    await page.waitForFunction((n) => window.seen.length >= n, count, { timeout: 10_000 });
    return seen(page);
  }

  it('Echo.channel().listen(), private(), join().here().joining().leaving(), whispers; pusher-js signin and server-to-user events', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const alice = await visitor('alice');
    const socketId = await alice.evaluate(() => window.echo.socketId());
    assert.match(socketId, /^\d+\.\d+$/);

    // Public and private channels: events triggered with the official server library.
    await alice.evaluate(() => {
      const w = window;
      const subscribed = (channel: any) => new Promise<void>((resolve) => channel.subscribed(() => resolve()));
      const news = w.echo.channel('news').listen('.headline', (e: unknown) => w.seen.push(['news', e]));
      const orders = w.echo.private('orders').listen('.created', (e: unknown) => w.seen.push(['orders', e]));
      return Promise.all([subscribed(news), subscribed(orders)]);
    });
    await lib.trigger('news', 'headline', { title: 'hi' });
    await lib.trigger('private-orders', 'created', { id: 1 });
    assert.deepEqual(await waitSeen(alice, 2), [['news', { title: 'hi' }], ['orders', { id: 1 }]]);

    // Presence: here, joining, leaving.
    await alice.evaluate(() => {
      const w = window;
      return new Promise<void>((resolve) => {
        w.echo
          .join('room')
          .here((users: Array<{ name: string }>) => {
            w.seen.push(['here', users.map((u) => u.name)]);
            resolve();
          })
          .joining((user: { name: string }) => w.seen.push(['joining', user.name]))
          .leaving((user: { name: string }) => w.seen.push(['leaving', user.name]));
      });
    });
    assert.deepEqual((await seen(alice))[2], ['here', ['alice']]);
    const bob = await visitor('bob');
    const bobHere = await bob.evaluate(() => {
      const w = window;
      return new Promise<string[]>((resolve) => w.echo.join('room').here((users: Array<{ name: string }>) => resolve(users.map((u) => u.name).sort())));
    });
    assert.deepEqual(bobHere, ['alice', 'bob']);
    assert.deepEqual((await waitSeen(alice, 4))[3], ['joining', 'bob']);

    // Whispers (client events) on a private channel: bob whispers, alice listens; not echoed to bob.
    await alice.evaluate(() => {
      const w = window;
      const chat = w.echo.private('chat').listenForWhisper('typing', (e: unknown) => w.seen.push(['whisper', e]));
      return new Promise<void>((resolve) => chat.subscribed(() => resolve()));
    });
    await bob.evaluate(() => {
      const w = window;
      w.seen = [];
      const chat = w.echo.private('chat').listenForWhisper('typing', (e: unknown) => w.seen.push(['own whisper', e]));
      return new Promise<void>((resolve) => chat.subscribed(() => { chat.whisper('typing', { who: 'bob' }); resolve(); }));
    });
    assert.deepEqual((await waitSeen(alice, 5))[4], ['whisper', { who: 'bob' }]);
    assert.deepEqual(await seen(bob), [], 'a whisper is not echoed to its sender');

    // pusher-js itself: sign in, then a server-to-user event from the server library.
    await bob.evaluate(() => {
      const w = window;
      const pusher = w.echo.connector.pusher;
      pusher.user.bind('notice', (data: unknown) => w.seen.push(['notice', data]));
      pusher.signin();
      return pusher.user.signinDonePromise;
    });
    await bob.waitForFunction(() => window.echo.connector.pusher.user.serverToUserChannel?.subscribed === true, null, { timeout: 10_000 });
    await lib.sendToUser('bob', 'notice', { text: 'for bob' });
    assert.deepEqual((await waitSeen(bob, 1))[0], ['notice', { text: 'for bob' }]);

    // bob leaves: alice's leaving().
    await bob.context().close();
    assert.deepEqual((await waitSeen(alice, 6))[5], ['leaving', 'bob']);
    await alice.context().close();
  });
  it('pusher-js with encryption: a private-encrypted- channel decrypted in the page (Herald relays ciphertext only); cache channels: the last event on subscribe, pusher:cache_miss when empty', async (t) => {
    if (!chromium.browser()) return t.skip(chromium.skipped());
    const page = await chromium.browser()!.newPage();
    page.on('pageerror', (err) => assert.fail(`page: ${err.message}`));
    await page.goto(`${appUrl}/encrypted?user=carol`);
    // A raw Pusher-protocol subscriber of the encrypted channel sees exactly what Herald relays.
    const raw = new WebSocket(`ws://127.0.0.1:${herald.port}/app/${APP.key}?protocol=7&client=js&version=8.6.0`);
    const frames: Array<{ event: string; data?: string }> = [];
    const arrived = new EventEmitter();
    raw.on('message', (data) => {
      frames.push(JSON.parse(String(data)));
      arrived.emit('frame');
    });
    const frame = (event: string): Promise<{ event: string; data?: string }> =>
      new Promise((resolve) => {
        const check = (): void => {
          const found = frames.find((f) => f.event === event);
          if (!found) return;
          arrived.off('frame', check);
          resolve(found);
        };
        arrived.on('frame', check);
        check();
      });
    const socketId = JSON.parse((await frame('pusher:connection_established')).data!).socket_id as string;
    raw.send(JSON.stringify({ event: 'pusher:subscribe', data: { channel: 'private-encrypted-vault', auth: lib.authorizeChannel(socketId, 'private-encrypted-vault').auth } }));
    await frame('pusher_internal:subscription_succeeded');
    await lib.trigger('cache-price', 'update', { price: 42 });
    await page.evaluate(
      ({ key, port }) => {
        const w = window;
        w.seen = [];
        w.pusher = new w.Pusher(key, {
          cluster: 'herald', wsHost: '127.0.0.1', wsPort: port, forceTLS: false, enabledTransports: ['ws'], disableStats: true,
          channelAuthorization: { endpoint: '/broadcasting/auth?user=carol', transport: 'ajax' },
        });
        const subscribed = (channel: any) => new Promise<void>((resolve) => channel.bind('pusher:subscription_succeeded', () => resolve()));
        const vault = w.pusher.subscribe('private-encrypted-vault');
        vault.bind('secret', (data: unknown) => w.seen.push(['secret', data]));
        const price = w.pusher.subscribe('cache-price');
        price.bind('update', (data: unknown) => w.seen.push(['cached', data]));
        const empty = w.pusher.subscribe('cache-empty');
        empty.bind('pusher:cache_miss', () => w.seen.push(['miss']));
        return Promise.all([subscribed(vault), subscribed(price), subscribed(empty)]);
      },
      { key: APP.key, port: herald.port },
    );
    await page.waitForFunction(() => window.seen.length >= 2, null, { timeout: 10_000 });
    const early = (await page.evaluate(() => window.seen)) as unknown[];
    assert.deepEqual(early.map((entry) => JSON.stringify(entry)).sort(), [JSON.stringify(['cached', { price: 42 }]), JSON.stringify(['miss'])].sort());

    // The server library encrypts with the master key: the page decrypts it, Herald relayed ciphertext only.
    await lib.trigger('private-encrypted-vault', 'secret', { code: 'swordfish' });
    await page.waitForFunction(() => window.seen.length >= 3, null, { timeout: 10_000 });
    assert.deepEqual(((await page.evaluate(() => window.seen)) as unknown[])[2], ['secret', { code: 'swordfish' }]);
    const relayed = await frame('secret');
    assert.ok(!String(relayed.data).includes('swordfish'), 'no plaintext in what Herald relayed');
    assert.deepEqual(Object.keys(JSON.parse(relayed.data!)).sort(), ['ciphertext', 'nonce']);
    raw.close();
    await page.close();
  });
});
