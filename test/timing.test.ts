/**
 * Servers with different heartbeat_freq in one cluster (a config mistake, or a rolling
 * change): nobody is removed between two heartbeats of a slower peer, no master changes,
 * and the mismatch is logged once. A server configured slower than its peers paces its
 * heartbeats to the fastest of them (at most 20 times its own rate); nobody believes a
 * peer's own word for how long to wait, so a forged "tick of a day" is forgotten a tock
 * after the forger stops. In the simulator, with exact times.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster } from '../sim/cluster';
import { encode } from '../src/wire/codec';

const HOSTS = ['a', 'b', 'c', 'd'];

function changes(sim: SimCluster, from: number): string[] {
  return sim.events
    .filter((record) => record.time >= from && ['deleteserver', 'addserver', 'master', 'slave', 'masterchange'].includes(record.event.type))
    .map((record) => `${record.time.toFixed(0)} ${record.host} ${record.event.type}`);
}

describe('mismatched heartbeat_freq', () => {
  test('one server at the default 20 s among 1 s servers: no flap, paced to 1 s, mismatch logged once by each side', () => {
    const sim = new SimCluster({ tickMs: 1000, checkBeats: 3, latencyMs: 1, trace: true, traceLevel: 3 });
    for (const host of HOSTS) sim.add(host);
    assert.notEqual(sim.runUntilTrue(() => sim.agreedMaster() === 'a', 4000), null);
    sim.runFor(500);
    const joinedAt = sim.now;
    sim.add('z', { tickMs: 20_000 });
    sim.runFor(120_000);
    const late = changes(sim, joinedAt).filter((line) => !line.includes(' z ') && !line.endsWith('addserver'));
    assert.deepEqual(late, [], 'the others flapped');
    assert.deepEqual(changes(sim, joinedAt + 1000).filter((line) => line.includes(' z ')), [], 'z flapped');
    assert.equal(sim.agreedMaster(), 'a');
    for (const node of sim.live()) assert.ok(node.core.table.z && node.core.table.a, `${node.id} lost a server`);
    const mismatches = sim.timeline.filter((line) => line.includes('TIMING MISMATCH'));
    // z notes each of the four once; each of the four notes z once.
    assert.equal(mismatches.length, 8, mismatches.join('\n'));
    assert.ok(mismatches.some((line) => /\bz\b.*sends its heartbeats every 1000 ms/.test(line)), mismatches.join('\n'));
  });
});

describe('a rolling change of heartbeat_freq, one server at a time by reload', () => {
  for (const [from, to] of [
    [20_000, 1000],
    [1000, 20_000],
  ] as const) {
    for (const order of ['master first', 'master last'] as const) {
      test(`${from / 1000} s → ${to / 1000} s, ${order}: no deleteserver, no flap, no master change`, () => {
        const sim = new SimCluster({ tickMs: from, checkBeats: 3, latencyMs: 1 });
        for (const host of HOSTS) sim.add(host);
        assert.notEqual(sim.runUntilTrue(() => sim.agreedMaster() === 'a', 4 * from), null);
        sim.runFor(2 * from);
        const settled = sim.now;
        const sequence = order === 'master first' ? HOSTS : [...HOSTS].reverse();
        for (const host of sequence) {
          sim.setNodeTiming(host, to, 3);
          sim.runFor(2.3 * Math.max(from, to));
        }
        sim.runFor(10 * to);
        assert.deepEqual(changes(sim, settled), []);
        assert.equal(sim.agreedMaster(), 'a');
      });
    }
  }
});

describe('a peer\'s word for its timing is not believed for its deadline', () => {
  test('a forged heartbeat promising a day (and claiming master) is forgotten a tock and a quarter after it', () => {
    const sim = new SimCluster({ tickMs: 1000, checkBeats: 3, latencyMs: 1 });
    for (const host of HOSTS) sim.add(host);
    assert.notEqual(sim.runUntilTrue(() => sim.agreedMaster() === 'a', 4000), null);
    const forgedAt = sim.now;
    sim.inject(encode({ action: 'heartbeat', hostname: 'zz', ip: '10.6.6.6', master: true, eligible: true, uptime: 1, data: {}, iid: 'f0f0f0f0f0f0f0f0', seq: 1, term: 99, tick: 86_400_000, beats: 1000 }));
    assert.notEqual(sim.runUntilTrue(() => sim.live().every((node) => !node.core.table.zz), 10_000), null);
    assert.ok(sim.now <= forgedAt + 3250 + 1, `zz lived until ${sim.now - forgedAt} ms after its packet`);
    assert.notEqual(sim.runUntilTrue(() => sim.agreedMaster() !== null, 2000), null);
  });

  test('a forged heartbeat saying 10 ms speeds nobody up past 20 times their own rate, and only while it is live', () => {
    const sim = new SimCluster({ tickMs: 1000, checkBeats: 3, latencyMs: 1 });
    for (const host of HOSTS) sim.add(host);
    assert.notEqual(sim.runUntilTrue(() => sim.agreedMaster() === 'a', 4000), null);
    const before = sim.datagrams;
    sim.inject(encode({ action: 'heartbeat', hostname: 'zz', ip: '10.6.6.6', master: false, eligible: false, uptime: 1, data: {}, iid: 'f0f0f0f0f0f0f0f0', seq: 1, tick: 10, beats: 1 }));
    sim.runFor(3250);
    // Four servers, each at most one heartbeat per 50 ms, each to four receivers (itself included).
    const during = sim.datagrams - before;
    assert.ok(during <= 4 * 4 * (3250 / 50 + 2), `${during} datagrams`);
    assert.ok(during >= 4 * 4 * (3250 / 100), `${during} datagrams: not paced up at all`);
    sim.runFor(1000);
    const after = sim.datagrams;
    sim.runFor(10_000);
    assert.ok(sim.datagrams - after <= 4 * 4 * 11, `${sim.datagrams - after} datagrams in 10 s after zz left: still paced up`);
  });
});
