import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import type { ClusterRegistry, NodeView } from '../../src/cluster/registry.js';
import { nodeStats, nodeStatus, type StatusSource } from '../../src/cluster/status.js';
import { Hub } from '../../src/hub/hub.js';
import { encodeTextFrame } from '../../src/hub/frame.js';
import { VERSION } from '../../src/version.js';
import { FakeBroker } from '../helpers/fake-broker.js';
import { fakeSession } from '../helpers/fake-session.js';

const START = 1_000_000;

/**
 * A node with 3 live connections (2 users, 2 topics, 3 subscriptions), whose
 * live sessions have seen 4 frames in and 2 out, and whose closed ones 10 in
 * and 20 out.
 */
function source(options: { workerOf?: string; view?: (self: NodeView) => NodeView[] } = {}): StatusSource {
  const hub = new Hub({ onTopicOpened: () => undefined, onTopicClosed: () => undefined });
  const sessions = ['a', 'b', 'c'].map((id) => fakeSession({ id }).session);
  for (const session of sessions) hub.add(session);
  hub.setUser(sessions[0]!, 'ann');
  hub.setUser(sessions[1]!, 'ann');
  hub.setUser(sessions[2]!, 'bob');
  hub.subscribe(sessions[0]!, 'x');
  hub.subscribe(sessions[1]!, 'x');
  hub.subscribe(sessions[2]!, 'y');
  for (let i = 0; i < 4; i++) sessions[i % 3]!.receive(Buffer.from('{}'), false);
  sessions[0]!.write(encodeTextFrame('1'));
  sessions[2]!.write(encodeTextFrame('2'));
  hub.deliveries = 7;
  const broker = new FakeBroker();
  broker.state = 'down';
  const status: StatusSource = {
    hub,
    broker,
    cluster: { view: () => [] } as unknown as ClusterRegistry,
    nodeId: 'w-1',
    workerOf: options.workerOf,
    startedAt: START,
    counts: { framesIn: 10, framesOut: 20, slowConsumers: 2 },
    publications: 5,
  };
  const self: NodeView = { id: 'w-1', self: true, lastSeen: START, ...nodeStats(status) };
  (status.cluster as { view: () => NodeView[] }).view = () => options.view?.(self) ?? [self];
  return status;
}

const peer = (id: string, stats: Partial<NodeView>): NodeView => ({ id, self: false, lastSeen: START, connections: 0, users: 0, topics: 0, subscriptions: 0, ...stats });

describe('nodeStats', () => {
  it("a single process tells its hub's figures, nothing more", () => {
    assert.deepEqual(nodeStats(source()), { connections: 3, users: 2, topics: 2, subscriptions: 3 });
  });

  it("a worker also tells its counters, live and closed connections' frames added", () => {
    assert.deepEqual(nodeStats(source({ workerOf: 'node-A' })), {
      connections: 3,
      users: 2,
      topics: 2,
      subscriptions: 3,
      workerOf: 'node-A',
      messagesIn: 14,
      messagesOut: 22,
      publications: 5,
      deliveries: 7,
      slowConsumerDisconnects: 2,
    });
  });
});

describe('nodeStatus', () => {
  afterEach(() => mock.timers.reset());

  it("a single process answers its own figures, and the cluster's sums over every live node", () => {
    mock.timers.enable({ apis: ['Date'], now: START + 61_600 });
    const status = nodeStatus(source({ view: (self) => [self, peer('other', { connections: 10, users: 4 })] }));
    assert.deepEqual(status, {
      node: 'w-1',
      version: VERSION,
      uptime: 62,
      broker: { name: 'fake', state: 'down' },
      connections: 3,
      topics: 2,
      subscriptions: 3,
      users: 2,
      messagesIn: 14,
      messagesOut: 22,
      publications: 5,
      deliveries: 7,
      slowConsumerDisconnects: 2,
      cluster: { nodes: 2, connections: 13, users: 6 },
    });
    assert.ok(!('workers' in status));
  });

  it("a worker answers for its node: its live figures plus its sibling workers' last heartbeats, other nodes left out", () => {
    const status = nodeStatus(
      source({
        workerOf: 'node-A',
        view: (self) => [
          // Its own entry as the view holds it is stale: the live figures count instead.
          { ...self, connections: 999, messagesIn: 999 },
          peer('w-2', { workerOf: 'node-A', connections: 4, users: 1, topics: 1, subscriptions: 6, messagesIn: 100, messagesOut: 200, publications: 1, deliveries: 3, slowConsumerDisconnects: 1 }),
          peer('w-3', { workerOf: 'node-A', connections: 1 }),
          peer('elsewhere', { workerOf: 'node-B', connections: 50, messagesIn: 50 }),
        ],
      }),
    );
    assert.equal(status.node, 'node-A');
    assert.deepEqual(status.workers, { count: 3, id: 'w-1' });
    assert.deepEqual(
      [status.connections, status.users, status.topics, status.subscriptions, status.messagesIn, status.messagesOut, status.publications, status.deliveries, status.slowConsumerDisconnects],
      [3 + 4 + 1, 2 + 1, 2 + 1, 3 + 6, 14 + 100, 22 + 200, 5 + 1, 7 + 3, 2 + 1],
      'a worker whose heartbeat lacks a counter adds 0',
    );
    assert.deepEqual(status.cluster, { nodes: 4, connections: 999 + 4 + 1 + 50, users: 2 + 1 + 0 + 0 });
  });

  it('a worker that has not seen its node in the view yet answers its own figures, as one worker', () => {
    const status = nodeStatus(source({ workerOf: 'node-A', view: () => [peer('elsewhere', { workerOf: 'node-B', connections: 50 })] }));
    assert.deepEqual(status.workers, { count: 1, id: 'w-1' });
    assert.equal(status.connections, 3);
    assert.equal(status.messagesIn, 14);
  });
});
