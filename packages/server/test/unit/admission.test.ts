import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import type { IpcMessage } from '../../src/broker/ipc.js';
import { AdmissionAuthority, LocalAdmission, type AdmissionLimits } from '../../src/transport/admission.js';

const limits = (overrides: Partial<AdmissionLimits> = {}): AdmissionLimits => ({ maxConnectionsPerIp: 1000, connectionsPerSecond: 1000, connectionsPerSecondPerIp: 1000, ...overrides });

/** Admits from `ip` `count` times; the refusal codes (null: admitted). */
function admitMany(admission: LocalAdmission, ip: string, count: number): Array<string | null> {
  return Array.from({ length: count }, () => admission.admit(ip)?.code ?? null);
}

describe('LocalAdmission', () => {
  afterEach(() => mock.timers.reset());

  it('counts the connections an address holds and refuses past maxConnectionsPerIp with 429, Retry-After 10', () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const admission = new LocalAdmission(limits({ maxConnectionsPerIp: 2 }));
    assert.deepEqual(admitMany(admission, '192.0.2.1', 2), [null, null]);
    assert.deepEqual(admission.admit('192.0.2.1'), { status: 429, code: 'rate_limited', message: 'too many connections from 192.0.2.1 (limit 2)', headers: { 'Retry-After': '10' } });
    assert.equal(admission.connectionsOf('192.0.2.1'), 2, 'a refused connection is not counted');
    assert.equal(admission.admit('192.0.2.2'), null, 'other addresses are not affected');
    admission.release('192.0.2.1');
    assert.equal(admission.connectionsOf('192.0.2.1'), 1);
    assert.equal(admission.admit('192.0.2.1'), null, 'a released slot can be taken again');
  });

  it('release never goes below zero, and releasing an unknown address is nothing', () => {
    const admission = new LocalAdmission(limits({ maxConnectionsPerIp: 1 }));
    admission.release('198.51.100.1');
    assert.equal(admission.connectionsOf('198.51.100.1'), 0);
    assert.equal(admission.admit('198.51.100.1'), null);
    admission.release('198.51.100.1');
    admission.release('198.51.100.1');
    assert.equal(admission.connectionsOf('198.51.100.1'), 0);
    assert.equal(admission.admit('198.51.100.1'), null);
    assert.equal(admission.admit('198.51.100.1')?.code, 'rate_limited', 'an extra release does not open a second slot');
  });

  it('refuses new connections from one address past its rate (burst twice the rate) with 429, Retry-After 1; it refills', () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const admission = new LocalAdmission(limits({ connectionsPerSecondPerIp: 2 }));
    assert.deepEqual(admitMany(admission, '192.0.2.1', 5), [null, null, null, null, 'rate_limited']);
    const refusal = admission.admit('192.0.2.1');
    assert.deepEqual([refusal?.status, refusal?.headers], [429, { 'Retry-After': '1' }]);
    assert.match(refusal?.message ?? '', /too many new connections from 192\.0\.2\.1 \(limit 2 per second\)/);
    mock.timers.tick(500);
    assert.deepEqual(admitMany(admission, '192.0.2.1', 2), [null, 'rate_limited'], 'one token after half a second');
  });

  it('the node\'s rate comes behind the address checks: one address cannot empty it for the others', () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const admission = new LocalAdmission(limits({ connectionsPerSecond: 3, connectionsPerSecondPerIp: 1 }));
    // The node bucket holds 6; each address may take 2.
    assert.deepEqual(admitMany(admission, 'flood', 50), [null, null, ...Array<string>(48).fill('rate_limited')]);
    assert.deepEqual([...admitMany(admission, 'a', 2), ...admitMany(admission, 'b', 2)], [null, null, null, null], 'the flood took only its own two');
    const refusal = admission.admit('c');
    assert.deepEqual(refusal, { status: 503, code: 'unavailable', message: 'too many new connections: retry shortly', headers: { 'Retry-After': '1' } });
    assert.equal(admission.connectionsOf('c'), 0);
  });

  it('forgets idle addresses once it tracks many, but never one that holds connections', () => {
    mock.timers.enable({ apis: ['Date'], now: 1_000_000 });
    const admission = new LocalAdmission(limits({ maxConnectionsPerIp: 1 }));
    const tracked = (): number => (admission as unknown as { addresses: Map<string, unknown> }).addresses.size;
    admission.admit('holder');
    for (let i = 0; i < 1100; i++) {
      admission.admit(`10.0.${i >> 8}.${i & 255}`);
      admission.release(`10.0.${i >> 8}.${i & 255}`);
    }
    assert.equal(tracked(), 1101);
    mock.timers.tick(3001);
    admission.admit('newcomer');
    assert.equal(tracked(), 2, 'the idle ones are forgotten');
    assert.equal(admission.connectionsOf('holder'), 1, 'the holder is not');
    assert.equal(admission.admit('holder')?.code, 'rate_limited', 'and its limit still holds');
  });
});

describe('AdmissionAuthority (the primary of --workers)', () => {
  it('answers each worker\'s admissions from one count, and frees a dead worker\'s slots', () => {
    const authority = new AdmissionAuthority(limits({ maxConnectionsPerIp: 2 }));
    const replies: IpcMessage[] = [];
    const reply = (message: IpcMessage): void => void replies.push(message);
    const w1 = { id: 1 };
    const w2 = { id: 2 };
    assert.equal(authority.handle(w1, { herald: 'admit', node: 'w1', id: 1, ip: 'x' }, reply), true);
    authority.handle(w2, { herald: 'admit', node: 'w2', id: 1, ip: 'x' }, reply);
    authority.handle(w2, { herald: 'admit', node: 'w2', id: 2, ip: 'x' }, reply);
    assert.deepEqual(
      replies.map((m) => (m.herald === 'admitted' ? [m.node, m.id, m.refusal?.code ?? null] : m)),
      [['w1', 1, null], ['w2', 1, null], ['w2', 2, 'rate_limited']],
      'the limit holds for the machine, not once per worker',
    );
    authority.handle(w1, { herald: 'release', node: 'w1', ip: 'never-admitted' }, reply);
    authority.handle(w1, { herald: 'release', node: 'w1', ip: 'x' }, reply);
    authority.handle(w1, { herald: 'release', node: 'w1', ip: 'x' }, reply); // a second release of one slot frees nothing
    authority.handle(w2, { herald: 'admit', node: 'w2', id: 3, ip: 'x' }, reply);
    authority.handle(w2, { herald: 'admit', node: 'w2', id: 4, ip: 'x' }, reply);
    assert.deepEqual(replies.slice(3).map((m) => (m.herald === 'admitted' ? m.refusal?.code ?? null : m)), [null, 'rate_limited']);
    authority.forget(w2);
    authority.handle(w1, { herald: 'admit', node: 'w1', id: 2, ip: 'x' }, reply);
    authority.handle(w1, { herald: 'admit', node: 'w1', id: 3, ip: 'x' }, reply);
    assert.deepEqual(replies.slice(5).map((m) => (m.herald === 'admitted' ? m.refusal?.code ?? null : m)), [null, null], 'w2 died: its two slots are free');
    assert.equal(authority.handle(w1, { herald: 'hello', node: 'w1' }, reply), false, 'not an admission message');
  });
});
