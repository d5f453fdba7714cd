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
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'a', 4000),
      null,
    );
    sim.runFor(500);
    const joinedAt = sim.now;
    sim.add('z', { tickMs: 20_000 });
    sim.runFor(120_000);
    const late = changes(sim, joinedAt).filter((line) => !line.includes(' z ') && !line.endsWith('addserver'));
    assert.deepEqual(late, [], 'the others flapped');
    assert.deepEqual(
      changes(sim, joinedAt + 1000).filter((line) => line.includes(' z ')),
      [],
      'z flapped',
    );
    assert.equal(sim.agreedMaster(), 'a');
    for (const node of sim.live()) assert.ok(node.core.table.z && node.core.table.a, `${node.id} lost a server`);
    const mismatches = sim.timeline.filter((line) => line.includes('TIMING MISMATCH'));
    // z notes each of the four once; each of the four notes z once.
    assert.equal(mismatches.length, 8, mismatches.join('\n'));
    assert.ok(
      mismatches.some((line) => /\bz\b.*sends its heartbeats every 1000 ms/.test(line)),
      mismatches.join('\n'),
    );
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
        assert.notEqual(
          sim.runUntilTrue(() => sim.agreedMaster() === 'a', 4 * from),
          null,
        );
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

describe('reloads of heartbeat_freq and check_beats in any order remove nobody (SPEC 4.12)', () => {
  // The rolling reload that removed live servers: alpha and bravo at 0.1 s, charlie at 2 s
  // (paced to 0.1 s); alpha and bravo go to 2 s, then alpha back to 0.1 s. A heartbeat of
  // bravo's sent before it heard alpha's new tick reached alpha just after the reload, and
  // alpha judged bravo by its new 125 ms deadline from it; bravo's next, at the new pace,
  // came later. The phase decides: every seed is another phase and jitter.
  test('0.1 s → 2 s → 0.1 s, check_beats 1 and 3, 200 phases: no deleteserver, no change of master', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const beats = seed % 2 ? 1 : 3;
      const sim = new SimCluster({ seed, tickMs: 100, checkBeats: beats, latencyMs: 0.2, jitterMs: 2 });
      sim.add('alpha');
      sim.add('bravo');
      sim.add('charlie', { tickMs: 2000, checkBeats: beats });
      assert.notEqual(
        sim.runUntilTrue(() => sim.agreedMaster() === 'alpha', 10_000),
        null,
      );
      sim.runFor(1000 + sim.random.next() * 100);
      const settled = sim.now;
      sim.setNodeTiming('alpha', 2000, beats);
      sim.runFor(sim.random.next() * 3000);
      sim.setNodeTiming('bravo', 2000, beats);
      sim.runFor(sim.random.next() * 5000);
      sim.setNodeTiming('alpha', 100, beats);
      sim.runFor(5000);
      assert.deepEqual(changes(sim, settled), [], `seed ${seed}, check_beats ${beats}`);
    }
  });

  test('random reloads of every server (tick 50 ms to 800 ms, check_beats 1 to 5), several at one instant: nobody removed, the master kept', () => {
    const ticks = [50, 100, 200, 400, 800];
    for (let seed = 1; seed <= 60; seed++) {
      const sim = new SimCluster({ seed, tickMs: 200, checkBeats: 1 + (seed % 5), latencyMs: 0.5, jitterMs: 3 });
      for (const host of HOSTS) sim.add(host);
      assert.notEqual(
        sim.runUntilTrue(() => sim.agreedMaster() === 'a', 10_000),
        null,
      );
      sim.runFor(2000);
      const settled = sim.now;
      for (let i = 0; i < 12; i++) {
        const burst = sim.random.int(1, 3);
        for (let j = 0; j < burst; j++) sim.setNodeTiming(sim.random.pick(HOSTS), sim.random.pick(ticks), sim.random.int(1, 5));
        sim.runFor(sim.random.next() * 2000);
      }
      sim.runFor(5000);
      assert.deepEqual(changes(sim, settled), [], `seed ${seed}`);
      assert.equal(sim.agreedMaster(), 'a', `seed ${seed}`);
    }
  });
});

describe("a peer's word for its timing is not believed for its deadline", () => {
  test('a forged heartbeat promising a day (and claiming master) is forgotten a tock and a quarter after it', () => {
    const sim = new SimCluster({ tickMs: 1000, checkBeats: 3, latencyMs: 1 });
    for (const host of HOSTS) sim.add(host);
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'a', 4000),
      null,
    );
    const forgedAt = sim.now;
    sim.inject(
      encode({
        action: 'heartbeat',
        hostname: 'zz',
        ip: '10.6.6.6',
        master: true,
        eligible: true,
        uptime: 1,
        data: {},
        iid: 'f0f0f0f0f0f0f0f0',
        seq: 1,
        term: 99,
        tick: 86_400_000,
        beats: 1000,
      }),
    );
    assert.notEqual(
      sim.runUntilTrue(() => sim.live().every((node) => !node.core.table.zz), 10_000),
      null,
    );
    assert.ok(sim.now <= forgedAt + 3250 + 1, `zz lived until ${sim.now - forgedAt} ms after its packet`);
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() !== null, 2000),
      null,
    );
  });

  test('a forged heartbeat saying 10 ms speeds nobody up past 20 times their own rate, and only while it is live', () => {
    const sim = new SimCluster({ tickMs: 1000, checkBeats: 3, latencyMs: 1 });
    for (const host of HOSTS) sim.add(host);
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'a', 4000),
      null,
    );
    const before = sim.datagrams;
    sim.inject(
      encode({
        action: 'heartbeat',
        hostname: 'zz',
        ip: '10.6.6.6',
        master: false,
        eligible: false,
        uptime: 1,
        data: {},
        iid: 'f0f0f0f0f0f0f0f0',
        seq: 1,
        tick: 10,
        beats: 1,
      }),
    );
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
