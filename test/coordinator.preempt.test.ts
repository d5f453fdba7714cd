/**
 * The etcd mode's lease election with drains and preemption (SPEC 15.10, 15.11), on the lease
 * simulator: a promote request is held while the master's app drains (the asker waits past the
 * handoff window), `drained()` hands over; preemption by the first in rank after the delay,
 * through the promote key, once; a flapping server at most once per delay.
 * Tick 200 ms × 3, TTL 1 s, a store 1-5 ms away.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseSimCluster } from '../sim/lease-cluster';

const DELAY = 5000;

function cluster(): LeaseSimCluster {
  return new LeaseSimCluster({ seed: 11, tickMs: 200, checkBeats: 3, ttlSeconds: 1, minDelayMs: 1, maxDelayMs: 5, expirySweepMs: 0 });
}

function agreed(sim: LeaseSimCluster, want: string, limitMs = 5000): void {
  const at = sim.runUntilTrue(() => sim.agreedMaster() === want, limitMs);
  assert.notEqual(
    at,
    null,
    `no agreement on ${want}: ${sim
      .live()
      .map((n) => `${n.id}→${n.machine.masterHostname}`)
      .join(' ')}`,
  );
}

describe('etcd mode: the drain and preemption', () => {
  test('a promote request is held while the master drains, past the handoff window; drained() hands over', () => {
    const sim = cluster();
    for (const host of ['alpha', 'bravo', 'charlie']) sim.add(host, { drainMs: 20_000 });
    agreed(sim, 'alpha');
    sim.runFor(500);
    sim.promote('charlie');
    sim.runFor(100);
    assert.deepEqual(
      sim.eventsOf('drain', 'alpha').map((r) => r.event),
      [{ type: 'drain', target: 'charlie' }],
    );
    sim.runFor(5000);
    assert.equal(sim.agreedMaster(), 'alpha', 'alpha keeps the role while it drains');
    assert.deepEqual(sim.eventsOf('promote', 'charlie'), [], 'five handoff windows later the promote still waits');
    sim.drained('alpha');
    agreed(sim, 'charlie', 1000);
    assert.deepEqual(
      sim.eventsOf('promote', 'charlie').map((r) => (r.event as { ok: boolean }).ok),
      [true],
    );
  });

  test('preemption: the first in rank asks through the promote key after the delay, once; never before', () => {
    const sim = cluster();
    sim.add('bravo', { preemptDelayMs: DELAY });
    sim.add('charlie', { preemptDelayMs: DELAY });
    agreed(sim, 'bravo');
    sim.runFor(1000);
    sim.add('alpha', { priority: 5, preemptDelayMs: DELAY });
    const followed = sim.runUntilTrue(() => sim.node('alpha').machine.masterHostname === 'bravo', 2000);
    assert.notEqual(followed, null);
    assert.equal(
      sim.runUntilTrue(() => sim.node('alpha').machine.master, DELAY - 10),
      null,
      'not before the delay',
    );
    agreed(sim, 'alpha', 1000);
    sim.runFor(4 * DELAY);
    assert.equal(sim.agreedMaster(), 'alpha');
    assert.equal(sim.eventsOf('preempt').length, 1);
    assert.deepEqual(
      sim.eventsOf('master').map((r) => r.host),
      ['bravo', 'alpha'],
    );
  });

  test('a flapping server: never followed long enough, never preempts; up for the delay, preempts once', () => {
    const sim = cluster();
    sim.add('bravo', { preemptDelayMs: DELAY });
    agreed(sim, 'bravo');
    sim.add('alpha', { priority: 5, preemptDelayMs: DELAY });
    for (let i = 0; i < 5; i++) {
      sim.runFor(0.6 * DELAY);
      sim.restart('alpha', 100);
    }
    assert.equal(sim.eventsOf('preempt').length, 0);
    sim.runFor(2 * DELAY);
    assert.equal(sim.agreedMaster(), 'alpha');
    assert.equal(sim.eventsOf('preempt').length, 1);
  });
});
