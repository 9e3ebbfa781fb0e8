import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NO_GRANTS, Permissions, topicMatches, type Grants, type Subject } from '../../src/auth/permissions.js';
import type { HeraldConfig } from '../../src/config.js';

const auth = { privatePrefix: 'private:', userPrefix: 'user:' } as HeraldConfig['auth'];
const anonymous: Subject = { uid: undefined, grants: NO_GRANTS };
const ann = (grants: Partial<Grants> = {}): Subject => ({ uid: 'ann', grants: { topics: [], publish: [], ...grants } });

describe('topicMatches', () => {
  it('an exact pattern matches only itself; a trailing * matches its prefix', () => {
    assert.equal(topicMatches(['news'], 'news'), true);
    assert.equal(topicMatches(['news'], 'news2'), false);
    assert.equal(topicMatches(['news'], 'new'), false);
    assert.equal(topicMatches(['team-*'], 'team-a'), true);
    assert.equal(topicMatches(['team-*'], 'team-'), true, 'the prefix alone');
    assert.equal(topicMatches(['team-*'], 'team'), false);
    assert.equal(topicMatches(['*'], 'anything'), true);
    assert.equal(topicMatches(['a*b'], 'a*b'), true, 'a * inside a pattern is a character');
    assert.equal(topicMatches(['a*b'], 'axb'), false);
    assert.equal(topicMatches([], 'news'), false);
    assert.equal(topicMatches(['x', 'news'], 'news'), true, 'any pattern of the list');
  });
});

describe('Permissions', () => {
  it('public topics are open to everyone', () => {
    const permissions = new Permissions(auth, 'all');
    assert.equal(permissions.subscribeProblem(anonymous, 'news'), null);
    assert.equal(permissions.isRestricted('news'), false);
  });

  it('a user topic is only for its user', () => {
    const permissions = new Permissions(auth, 'all');
    assert.equal(permissions.isRestricted('user:ann'), true);
    assert.equal(permissions.subscribeProblem(ann(), 'user:ann'), null);
    assert.equal(permissions.subscribeProblem(ann(), 'user:bob'), 'user:bob is the topic of another user');
    assert.equal(permissions.subscribeProblem(ann(), 'user:ann2'), 'user:ann2 is the topic of another user', 'a uid that only starts the same');
    assert.equal(permissions.subscribeProblem(anonymous, 'user:'), 'user: is the topic of another user', 'anonymous has no user topic');
    assert.equal(permissions.subscribeProblem(ann({ topics: ['user:*'] }), 'user:bob'), 'user:bob is the topic of another user', 'a grant does not open another user\'s topic');
  });

  it('a private topic needs a grant, from the token or from the extra grants passed in', () => {
    const permissions = new Permissions(auth, 'all');
    assert.equal(permissions.subscribeProblem(ann(), 'private:board'), 'private:board is private: it needs a token that grants it');
    assert.equal(permissions.subscribeProblem(ann({ topics: ['private:board'] }), 'private:board'), null);
    assert.equal(permissions.subscribeProblem(ann({ topics: ['private:team-*'] }), 'private:team-a'), null);
    assert.notEqual(permissions.subscribeProblem(ann({ topics: ['private:team-*'] }), 'private:teams'), null);
    assert.equal(permissions.subscribeProblem(anonymous, 'private:board', ['private:*']), null, 'extra grants (e.g. a connect hook\'s)');
    assert.equal(permissions.subscribeProblem(ann({ publish: ['private:board'] }), 'private:board') !== null, true, 'a publish grant is not a subscribe grant');
  });

  it('publishing follows clientPublish on public topics', () => {
    const all = new Permissions(auth, 'all');
    const authenticated = new Permissions(auth, 'authenticated');
    const none = new Permissions(auth, 'none');
    assert.equal(all.publishProblem(anonymous, 'news'), null);
    assert.equal(authenticated.publishProblem(anonymous, 'news'), 'log in to publish');
    assert.equal(authenticated.publishProblem(ann(), 'news'), null);
    assert.equal(none.publishProblem(ann(), 'news'), 'publishing from connections is disabled on this server');
  });

  it('private and user topics need an explicit publish grant in every mode, even a user\'s own topic', () => {
    const all = new Permissions(auth, 'all');
    assert.equal(all.publishProblem(ann(), 'private:board'), 'publishing to private:board needs a "publish" grant');
    assert.equal(all.publishProblem(ann({ topics: ['private:board'] }), 'private:board'), 'publishing to private:board needs a "publish" grant', 'a subscribe grant is not a publish grant');
    assert.equal(all.publishProblem(ann(), 'user:ann'), 'publishing to user:ann needs a "publish" grant');
    assert.equal(all.publishProblem(ann({ publish: ['private:*'] }), 'private:board'), null);
  });

  it('a publish grant allows what it names in any mode, and only that', () => {
    const none = new Permissions(auth, 'none');
    const authenticated = new Permissions(auth, 'authenticated');
    const granted = ann({ publish: ['alerts'] });
    assert.equal(none.publishProblem(granted, 'alerts'), null);
    assert.equal(none.publishProblem(granted, 'alerts2'), 'publishing from connections is disabled on this server');
    assert.equal(authenticated.publishProblem({ uid: undefined, grants: { topics: [], publish: ['alerts'] } }, 'alerts'), null, 'even without a uid');
  });

  it('the prefixes are configurable', () => {
    const permissions = new Permissions({ privatePrefix: 'p/', userPrefix: 'u/' } as HeraldConfig['auth'], 'all');
    assert.equal(permissions.subscribeProblem(ann(), 'private:board'), null, 'the default prefix means nothing here');
    assert.notEqual(permissions.subscribeProblem(ann(), 'p/board'), null);
    assert.equal(permissions.subscribeProblem(ann(), 'u/ann'), null);
    assert.notEqual(permissions.subscribeProblem(ann(), 'u/bob'), null);
  });

  it('NO_GRANTS cannot be changed', () => {
    assert.ok(Object.isFrozen(NO_GRANTS));
  });
});
