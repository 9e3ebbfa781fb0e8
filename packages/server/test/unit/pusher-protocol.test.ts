import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { CloseCode } from '@herald/protocol';
import { validateConfig } from '../../src/config.js';
import { channelAuthString, userAuthString, verifyAuth } from '../../src/protocols/pusher/auth.js';
import { DEFAULT_EVENT, pusherData, pusherText } from '../../src/protocols/pusher/codec.js';
import { channelKind, isCacheChannel, pusherCloseCode, SocketIds, validChannel } from '../../src/protocols/pusher/handler.js';
import { PusherApps } from '../../src/pusher/apps.js';
import { restrictedPrefixes, withPusherRules } from '../../src/pusher/rules.js';

const config = validateConfig({ pusher: { enabled: true, apps: [{ id: 'a1', key: 'k1', secret: 'secret-one-123' }, { id: 'a2', key: 'k2', secret: 'secret-two-123', topicPrefix: 'other/' }] } });
const apps = new PusherApps(config.pusher);
const text = pusherText(apps);

describe('Pusher codec', () => {
  it("encodes a publication as {event, channel, data}: the app's channel, the event name or 'message', data a string", () => {
    const frame = JSON.parse(text.publication({ topic: 'pusher:a1:news', payload: '{"n":1}', event: 'headline' }));
    assert.deepEqual(frame, { event: 'headline', channel: 'news', data: '{"n":1}' });
    const other = JSON.parse(text.publication({ topic: 'other/private-x', payload: '"already a string"' }));
    assert.deepEqual(other, { event: DEFAULT_EVENT, channel: 'private-x', data: 'already a string' });
    const tagged = JSON.parse(text.publication({ topic: 'pusher:a1:presence-r', payload: '1', event: 'client-x', tags: { user_id: 'u1' } }));
    assert.equal(tagged.user_id, 'u1');
  });

  it('maps payloads to data both ways: a JSON string is the string, other JSON its text', () => {
    assert.equal(JSON.parse(pusherData('"a \\"quoted\\" string"')), 'a "quoted" string');
    assert.equal(JSON.parse(pusherData('{"a":[1,2]}')), '{"a":[1,2]}');
    assert.equal(JSON.parse(pusherData('42')), '42');
  });

  it('presence: member_added/removed only on a user edge, with the Pusher user id; nothing otherwise', () => {
    const entry = { conn: '1.1', uid: PusherApps.uidOf(apps.withId('a1')!, 'u7'), info: { name: 'Seven' } };
    assert.equal(text.presence('join', 'pusher:a1:presence-r', entry, false), null, 'a second connection of a member');
    const added = JSON.parse(text.presence('join', 'pusher:a1:presence-r', entry, true)!);
    assert.deepEqual([added.event, added.channel, JSON.parse(added.data)], ['pusher_internal:member_added', 'presence-r', { user_id: 'u7', user_info: { name: 'Seven' } }]);
    const removed = JSON.parse(text.presence('leave', 'pusher:a1:presence-r', entry, true)!);
    assert.deepEqual([removed.event, JSON.parse(removed.data)], ['pusher_internal:member_removed', { user_id: 'u7' }]);
    assert.equal(text.presence('join', 'pusher:a1:presence-r', { conn: 'x' }, true), null, 'no uid: no member');
  });
});

describe('Pusher signatures', () => {
  const sign = (secret: string, value: string): string => createHmac('sha256', secret).update(value).digest('hex');
  it("accepts key:HMAC-SHA256 over the protocol's strings, refuses any other key, signature, socket or length", () => {
    const channel = channelAuthString('1.2', 'private-a');
    assert.equal(channel, '1.2:private-a');
    assert.equal(channelAuthString('1.2', 'presence-a', '{"user_id":"u"}'), '1.2:presence-a:{"user_id":"u"}');
    assert.equal(userAuthString('1.2', '{"id":"u"}'), '1.2::user::{"id":"u"}');
    const good = `k1:${sign('secret-one-123', channel)}`;
    assert.equal(verifyAuth(good, 'k1', 'secret-one-123', channel), true);
    assert.equal(verifyAuth(good, 'k2', 'secret-one-123', channel), false, 'another key');
    assert.equal(verifyAuth(good, 'k1', 'secret-two-123', channel), false, 'another secret');
    assert.equal(verifyAuth(good, 'k1', 'secret-one-123', channelAuthString('1.3', 'private-a')), false, 'another socket');
    assert.equal(verifyAuth(good, 'k1', ['secret-two-123', 'secret-one-123'], channel), true, 'a previous secret during a rotation');
    assert.equal(verifyAuth(good, 'k1', ['secret-two-123', 'secret-three-123'], channel), false, 'neither secret');
    assert.equal(verifyAuth(`${good}00`, 'k1', 'secret-one-123', channel), false, 'a longer signature');
    assert.equal(verifyAuth('k1', 'k1', 'secret-one-123', channel), false, 'no colon');
    assert.equal(verifyAuth(undefined, 'k1', 'secret-one-123', channel), false);
  });
});

describe('Pusher channels, ids, close codes and rules', () => {
  it('tells channel kinds and names apart', () => {
    assert.deepEqual(['a', 'private-a', 'private-encrypted-a', 'presence-a', '#server-to-user-7'].map(channelKind), ['public', 'private', 'encrypted', 'presence', 'user']);
    assert.deepEqual(['cache-a', 'private-cache-a', 'private-encrypted-cache-a', 'presence-cache-a', 'a-cache-b'].map(isCacheChannel), [true, true, true, true, false]);
    assert.equal(validChannel('ok-name_=@,.;'), true);
    assert.equal(validChannel('bad name'), false);
    assert.equal(validChannel('x'.repeat(165)), false);
  });

  it('makes socket ids of Pusher form, distinct', () => {
    const ids = new SocketIds();
    const [a, b] = [ids.next(), ids.next()];
    assert.match(a, /^\d+\.\d+$/);
    assert.notEqual(a, b);
  });

  it("maps Herald's close codes into Pusher's ranges, and keeps Pusher's own", () => {
    assert.equal(pusherCloseCode(CloseCode.GOING_AWAY), 4200);
    assert.equal(pusherCloseCode(CloseCode.TRY_AGAIN_LATER), 4100);
    assert.equal(pusherCloseCode(CloseCode.TOKEN_EXPIRED), 4009, "Herald's 4001 is not Pusher's 4001");
    assert.equal(pusherCloseCode(CloseCode.DISCONNECTED), 4009);
    assert.equal(pusherCloseCode(CloseCode.TOO_MANY_CONNECTIONS), 4100);
    for (const own of [4004, 4009, 4100, 4201, 4301]) assert.equal(pusherCloseCode(own), own);
  });

  it("adds each app's presence and cache rules before the configured ones, and restricts its private channels", () => {
    const ruled = withPusherRules(config, apps);
    assert.deepEqual(ruled.presence.map((r) => r.pattern), ['pusher:a1:presence-*', 'other/presence-*']);
    assert.ok(ruled.history.every((r) => r.cache && r.size === 1));
    assert.ok(ruled.history.some((r) => r.pattern === 'other/private-encrypted-cache-*'));
    assert.deepEqual(restrictedPrefixes(config, apps).slice(0, 3), ['pusher:a1:private-', 'pusher:a1:presence-', 'pusher:a1:#server-to-user-']);
    const off = validateConfig({});
    assert.equal(withPusherRules(off, new PusherApps(off.pusher)), off);
  });
});
