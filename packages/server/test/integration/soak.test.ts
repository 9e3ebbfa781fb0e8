import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { requireBinary } from '../helpers/servers.js';
import { describeFigures, runSoak } from '../helpers/soak-run.js';

/** The 30-second version of `npm run soak` (scripts/soak.mjs): the same run, the same checks. */
describe('soak', () => {
  const skip = requireBinary('redis-server') ?? requireBinary('nats-server');

  it('30 s of publishers, SDK clients dropping at random, Redis and NATS restarts and subscriber-link cuts: nothing acknowledged lost, doubled or reordered on history topics (whole runs and fresh subscribes), every miss signalled on the others, none doubled, every publish answered in time', async (t) => {
    if (skip) return t.skip(skip);
    const figures = await runSoak({ seconds: 30, rate: 200, clients: 9 });
    t.diagnostic(describeFigures(figures).split('\n').join(' | '));
    assert.ok(figures.publications.acknowledged > 1000, `publications went through (${figures.publications.acknowledged})`);
    assert.ok(figures.faults.subscriberCuts >= 2 && figures.faults.redisRestarts >= 1 && figures.faults.natsRestarts >= 1, 'every kind of fault was injected');
    assert.ok(figures.recoveries > 0, 'SDK clients recovered');
    assert.ok(figures.freshSubscribes > 20, `fresh subscribes to topics with history were judged (${figures.freshSubscribes})`);
    assert.ok(figures.notShared > 0, 'the memory-history node answered recoveries not_shared');
    assert.deepEqual(figures.violations, []);
  });
});
