import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalPresence, type PresenceEntry } from '../../src/presence/presence.js';

const conns = (entries: Iterable<[string, PresenceEntry]>): string[] => [...entries].map(([topic, entry]) => `${topic}/${entry.conn}`).sort();

describe('LocalPresence', () => {
  it('counts connections and distinct users; anonymous connections are not users', () => {
    const presence = new LocalPresence();
    presence.join('room', { conn: 'c1', uid: 'ann' });
    presence.join('room', { conn: 'c2', uid: 'ann', info: { name: 'Ann' } });
    presence.join('room', { conn: 'c3', uid: 'bob' });
    presence.join('room', { conn: 'c4' });
    const view = presence.view('room', 10);
    assert.deepEqual([view.topic, view.connections, view.users], ['room', 4, 2]);
    assert.deepEqual(view.list.map((entry) => entry.conn), ['c1', 'c2', 'c3', 'c4']);
    assert.deepEqual(view.list[1], { conn: 'c2', uid: 'ann', info: { name: 'Ann' } }, 'the entry as it joined');
  });

  it('joining twice with one connection counts once', () => {
    const presence = new LocalPresence();
    presence.join('room', { conn: 'c1', uid: 'ann' });
    presence.join('room', { conn: 'c1', uid: 'ann' });
    assert.deepEqual([presence.view('room', 10).connections, presence.view('room', 10).users], [1, 1]);
    presence.leave('room', 'c1');
    assert.equal(presence.view('room', 10).users, 0, 'one leave undoes it');
  });

  it('a user stays while any of its connections does', () => {
    const presence = new LocalPresence();
    presence.join('room', { conn: 'c1', uid: 'ann' });
    presence.join('room', { conn: 'c2', uid: 'ann' });
    assert.deepEqual(presence.leave('room', 'c1'), { conn: 'c1', uid: 'ann' }, 'leave returns the entry');
    assert.deepEqual([presence.view('room', 10).connections, presence.view('room', 10).users], [1, 1]);
    presence.leave('room', 'c2');
    assert.deepEqual(presence.view('room', 10), { topic: 'room', connections: 0, users: 0, list: [] });
  });

  it('leaving what is not there returns undefined and changes nothing', () => {
    const presence = new LocalPresence();
    presence.join('room', { conn: 'c1', uid: 'ann' });
    assert.equal(presence.leave('room', 'nobody'), undefined);
    assert.equal(presence.leave('elsewhere', 'c1'), undefined);
    assert.equal(presence.view('room', 10).connections, 1);
  });

  it('a view lists at most maxList entries; the counts stay exact', () => {
    const presence = new LocalPresence();
    for (let i = 0; i < 50; i++) presence.join('crowd', { conn: `c${i}`, uid: `u${i % 20}` });
    const view = presence.view('crowd', 5);
    assert.deepEqual([view.connections, view.users, view.list.length], [50, 20, 5]);
    assert.deepEqual(presence.view('crowd', 0).list, []);
    assert.deepEqual(presence.view('nobody-here', 5), { topic: 'nobody-here', connections: 0, users: 0, list: [] });
  });

  it('topics are independent', () => {
    const presence = new LocalPresence();
    presence.join('a', { conn: 'c1', uid: 'ann' });
    presence.join('b', { conn: 'c1', uid: 'ann' });
    presence.leave('a', 'c1');
    assert.deepEqual([presence.view('a', 10).connections, presence.view('b', 10).connections], [0, 1]);
  });

  it('keeps other nodes\' entries apart from its own', () => {
    const presence = new LocalPresence();
    presence.join('room', { conn: 'local1', uid: 'ann' });
    assert.equal(presence.joinRemote('n2', 'room', { conn: 'r1', uid: 'ann' }), true);
    assert.equal(presence.joinRemote('n2', 'lobby', { conn: 'r1', uid: 'ann' }), true);
    assert.equal(presence.joinRemote('n3', 'room', { conn: 'r2', uid: 'cy' }), true);
    assert.equal(presence.joinRemote('n2', 'room', { conn: 'r1', uid: 'ann' }), false, 'already there');
    const view = presence.view('room', 10);
    assert.deepEqual([view.connections, view.users], [3, 2], 'the cluster-wide view: ann on two nodes is one user');
    assert.deepEqual(conns(presence.localEntries()), ['room/local1'], 'a snapshot of this node holds only its own');
    assert.deepEqual(conns(presence.entriesOf('n2')), ['lobby/r1', 'room/r1']);
    assert.deepEqual(conns(presence.entriesOf('n3')), ['room/r2']);
    assert.deepEqual(presence.entriesOf('unknown'), []);
  });

  it('a remote leave removes only what that node reported', () => {
    const presence = new LocalPresence();
    presence.join('room', { conn: 'local1' });
    presence.joinRemote('n2', 'room', { conn: 'r1', uid: 'bob' });
    assert.equal(presence.leaveRemote('n3', 'room', 'r1'), undefined, 'another node cannot remove it');
    assert.equal(presence.leaveRemote('n2', 'room', 'local1'), undefined, 'nor a remote leave a local entry');
    assert.deepEqual(presence.leaveRemote('n2', 'room', 'r1'), { conn: 'r1', uid: 'bob' });
    assert.deepEqual(presence.entriesOf('n2'), []);
    assert.deepEqual([presence.view('room', 10).connections, presence.view('room', 10).users], [1, 0]);
    assert.equal(presence.leaveRemote('n2', 'room', 'r1'), undefined, 'twice is nothing');
  });

  it('dropping a node\'s entries (what the gateway does when it is gone) leaves the rest as it was', () => {
    const presence = new LocalPresence();
    presence.join('room', { conn: 'local1', uid: 'ann' });
    presence.joinRemote('n2', 'room', { conn: 'r1', uid: 'ann' });
    presence.joinRemote('n2', 'room', { conn: 'r2', uid: 'bob' });
    for (const [topic, entry] of presence.entriesOf('n2')) presence.leaveRemote('n2', topic, entry.conn);
    assert.deepEqual(presence.view('room', 10), { topic: 'room', connections: 1, users: 1, list: [{ conn: 'local1', uid: 'ann' }] });
    assert.deepEqual(conns(presence.localEntries()), ['room/local1']);
  });
});
