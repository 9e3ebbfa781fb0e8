import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PersistentTopics } from '../../src/users/persistent.js';

describe('PersistentTopics: the users\' persistent topics every node keeps', () => {
  it('adds and removes per user, at most maxPerUser each', () => {
    const topics = new PersistentTopics(2, 1000);
    topics.add('ann', ['a', 'b', 'c']);
    assert.deepEqual([...topics.of('ann')], ['a', 'b'], 'the bound holds on every node, whatever it is sent');
    assert.equal(topics.countWith('ann', ['b', 'd']), 3);
    assert.equal(topics.holdsAny('ann', ['x', 'b']), true);
    topics.remove('ann', ['a', 'b']);
    assert.equal(topics.size, 0, 'a user without topics is forgotten');
    assert.deepEqual([...topics.of('nobody')], []);
  });

  it("merges another node's map, except what was removed here since this node asked", () => {
    const topics = new PersistentTopics(10, 60_000);
    topics.asking();
    topics.add('ann', ['a', 'b']);
    topics.remove('ann', ['a']);
    // A late answer still holds `a`: it stays removed; the rest is added.
    topics.merge([['ann', ['a', 'c']], ['bob', ['x']]]);
    assert.deepEqual([...topics.of('ann')].sort(), ['b', 'c']);
    assert.deepEqual(topics.entries().sort(), [['ann', ['b', 'c']], ['bob', ['x']]]);
    // Malformed answers change nothing.
    topics.merge('nonsense' as never);
    topics.merge([[1, ['y']], ['bob', 'y']] as never);
    assert.deepEqual([...topics.of('bob')], ['x']);
  });

  it('removals are remembered only while answers may still come', () => {
    const topics = new PersistentTopics(10, 0);
    topics.asking();
    topics.add('ann', ['a']);
    topics.remove('ann', ['a']);
    topics.merge([['ann', ['a']]]);
    assert.deepEqual([...topics.of('ann')], ['a'], 'an answer after the window is taken as it is');
  });
});
