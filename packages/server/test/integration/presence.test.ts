import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { connect, http, startHerald } from '../helpers/helpers.js';
import { SECRET, signToken } from '../helpers/tokens.js';

describe('presence', () => {
  it('counts connections and users, lists them with their info, sends join and leave, and caps the list', async () => {
    const herald = await startHerald({ auth: { jwt: { secret: SECRET } }, presence: [{ pattern: 'room:*', joinLeave: true, maxList: 2 }] });
    const alice1 = await connect(herald, { path: `/ws?token=${await signToken({ sub: 'alice', info: { name: 'Alice' } })}` });
    const alice2 = await connect(herald, { path: `/ws?token=${await signToken({ sub: 'alice', info: { name: 'Alice' } })}` });
    const guest = await connect(herald);
    await alice1.request({ action: 'subscribe', topic: 'room:1' });
    await alice2.request({ action: 'subscribe', topic: 'room:1' });
    const joined = await alice1.next();
    assert.equal(joined.action, 'join');
    assert.equal(joined.topic, 'room:1');
    assert.equal(joined.info.uid, 'alice');
    assert.deepEqual(joined.info.info, { name: 'Alice' });
    await guest.request({ action: 'subscribe', topic: 'room:1' });
    for (const c of [alice1, alice2]) {
      const event = await c.next();
      assert.equal(event.action, 'join');
      assert.equal(event.info.uid, undefined, 'an anonymous connection has no uid');
    }
    assert.equal(guest.received.length, 0, 'no join event for yourself');

    const viaCommand = await guest.request({ action: 'presence', topic: 'room:1' });
    assert.equal(viaCommand.connections, 3);
    assert.equal(viaCommand.users, 1);
    assert.equal(viaCommand.list.length, 2, 'the list is capped by maxList');
    const viaHttp = await http(herald, 'GET', '/api/presence?topic=room:1');
    assert.equal(viaHttp.body.connections, 3);
    assert.deepEqual(herald.presence('room:1').connections, 3);

    await alice2.close();
    const left = await alice1.next();
    assert.equal(left.action, 'leave');
    assert.equal(left.info.uid, 'alice');
    assert.equal((await guest.next()).action, 'leave');
    assert.deepEqual([herald.presence('room:1').connections, herald.presence('room:1').users], [2, 1], 'alice is still there in her other tab');
    await alice1.request({ action: 'unsubscribe', topic: 'room:1' });
    assert.equal((await guest.next()).action, 'leave');
    assert.deepEqual([herald.presence('room:1').connections, herald.presence('room:1').users], [1, 0]);

    const notKept = await guest.request({ action: 'presence', topic: 'lobby' });
    assert.equal(notKept.error.code, 'not_found');
    assert.equal((await http(herald, 'GET', '/api/presence?topic=lobby')).status, 404);
    const privateTopic = await guest.request({ action: 'presence', topic: 'user:alice' });
    assert.equal(privateTopic.error.code, 'forbidden', 'presence of a topic you may not subscribe to is refused');
    await herald.close();
  });
});
