/**
 * The fencing token under attack and under stalls, in the simulator (exact times):
 *  - one forged heartbeat with a huge term cannot push any server past what every server
 *    accepts: every later master change is heard, and terms go on growing;
 *  - one forged checkpoint from a stranger is never taken, and a real one is;
 *  - a master stopped for any length and woken with its socket backlog read 32 datagrams a
 *    turn never holds the same term as its successor: it reads the backlog, then follows.
 * Each case failed before the rules it tests (a permanent split brain, a planted
 * checkpoint, two masters with one term).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster, type SimClusterOptions } from '../sim/cluster';
import { encode } from '../src/wire/codec';
import { createKeyring } from '../src/wire/auth';
import { MAX_TERM, MAX_TERM_CATCHUP_PER_S, MAX_TERM_STEP, TERM_CEILING } from '../src/protocol/limits';
import { TERM_SLOTS } from '../src/protocol/terms';
import type { HeartbeatMessage } from '../src/protocol/messages';

const TICK = 1000;
const TOCK = 3000;
const HOSTS = ['a', 'b', 'c', 'd'];
const SECRET = 'fencing suite secret, long enough';

function settled(options: SimClusterOptions = {}): SimCluster {
  const sim = new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: 1, ...options });
  for (const host of HOSTS) sim.add(host);
  assert.notEqual(
    sim.runUntilTrue(() => sim.agreedMaster() === 'a', 3 * TOCK),
    null,
  );
  sim.runFor(TICK / 2);
  return sim;
}

function forged(fields: Partial<HeartbeatMessage>): Buffer {
  const message: HeartbeatMessage = {
    action: 'heartbeat',
    hostname: 'zz-forger',
    ip: '10.6.6.6',
    master: false,
    eligible: true,
    uptime: 1,
    data: {},
    iid: 'f0f0f0f0f0f0f0f0',
    seq: 1,
    ...fields,
  };
  return encode(message);
}

/** Crash the master and wait for the survivors to agree on the next; returns it. */
function failOver(sim: SimCluster): string {
  const master = sim.agreedMaster();
  assert.ok(master, 'an agreed master before the crash');
  sim.crash(master);
  const agreed = sim.runUntilTrue(() => {
    const next = sim.agreedMaster();
    return next !== null && next !== master;
  }, 3 * TOCK);
  assert.notEqual(
    agreed,
    null,
    `no agreed master after ${master} crashed: ${sim
      .live()
      .map((n) => `${n.id}→${n.core.masterHostname || '?'}${n.core.master ? '*' : ''}`)
      .join(' ')}`,
  );
  return sim.agreedMaster() as string;
}

describe('a forged huge term', () => {
  for (const master of [false, true]) {
    test(`one heartbeat with term 2^53 − 2 (master: ${master}) leaves every later master change heard by all, terms growing`, () => {
      const sim = settled();
      sim.inject(forged({ term: MAX_TERM - 1, master }));
      // The forger says nothing more: it is gone within a tock.
      sim.runFor(2 * TOCK);
      assert.equal(sim.agreedMaster(), 'a', 'one forged packet changed the master for good');
      let previous = sim.node('a').core.term;
      // Adopted by one step past the ceiling; the master then claims again above it, in its slot.
      assert.ok(previous <= TERM_CEILING + MAX_TERM_STEP + TERM_SLOTS, `term ${previous} was adopted beyond one step past the ceiling`);
      for (let round = 0; round < 3; round++) {
        const next = failOver(sim);
        const term = sim.node(next).core.term;
        assert.ok(term > previous, `term went from ${previous} to ${term}`);
        assert.ok(term <= MAX_TERM);
        previous = term;
        sim.runFor(TOCK);
        assert.equal(sim.drops['bad-field'] ?? 0, 0, 'a server sent a term its peers refuse');
      }
    });
  }

  test('forged terms past the ceiling move ours by bounded steps only', () => {
    const sim = settled();
    for (let i = 0; i < 50; i++) sim.inject(forged({ term: MAX_TERM - i, seq: i + 1 }));
    const term = sim.node('b').core.term;
    assert.ok(term <= TERM_CEILING + 50 * MAX_TERM_STEP, `term ${term}`);
    assert.ok(MAX_TERM - term > 2 ** 51, 'the space left for real master changes');
  });

  test('a forged master that everyone follows moves terms by time followed only, far from the end of the space', () => {
    const sim = settled();
    // '0forger' ranks before 'a': while it speaks, every server follows it.
    const start = sim.now;
    for (let i = 0; i < 30; i++)
      sim.at(start + i * 100, () => sim.inject(forged({ hostname: '0forger', master: true, term: MAX_TERM - 1, seq: i + 1 })));
    sim.runFor(3000);
    assert.ok(
      sim.live().every((node) => node.core.masterHostname === '0forger'),
      'the forged master is followed',
    );
    const bound = TERM_CEILING + 30 * MAX_TERM_STEP + (MAX_TERM_CATCHUP_PER_S * 3000) / 1000;
    for (const node of sim.live()) {
      assert.ok(node.core.term <= bound, `${node.id} adopted ${node.core.term}, beyond ${bound}`);
      assert.ok(MAX_TERM - node.core.term > 2 ** 51, 'the space left for real master changes');
    }
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'a', 2 * TOCK),
      null,
      'a is master again once the forger is silent',
    );
  });

  test('a server that missed a flood of forged terms catches up with the master it follows, and takes a term above it when it claims next', () => {
    const sim = settled();
    for (let i = 0; i < 200; i++) sim.inject(forged({ term: MAX_TERM - i, seq: i + 1 }));
    sim.runFor(2 * TOCK);
    const flooded = sim.node('a').core.term;
    assert.ok(flooded > TERM_CEILING + 100 * MAX_TERM_STEP, `the flood moved a's term to ${flooded}`);
    // b restarts as a new process (term 0), d and c leave: b is next in rank and knows
    // a's term only from a's heartbeats, a few of them.
    sim.crash('c');
    sim.crash('d');
    sim.restart('b');
    assert.notEqual(
      sim.runUntilTrue(() => sim.node('b').core.masterHostname === 'a', 2 * TOCK),
      null,
      'b follows a again',
    );
    sim.runFor(3 * TICK);
    const last = sim.node('a').core.term;
    const next = failOver(sim);
    assert.equal(next, 'b');
    const term = sim.node('b').core.term;
    assert.ok(term > last, `b claimed with term ${term}, not above a's ${last}`);
    assert.equal(sim.drops['bad-field'] ?? 0, 0, 'a server sent a term its peers refuse');
  });
});

describe('a forged checkpoint', () => {
  test("from a stranger that is not master: never taken; the real master's is, and the next master gets it", () => {
    const sim = settled();
    sim.setCheckpoint('a', { cursor: 'real-1' });
    sim.runFor(TICK);
    sim.inject(forged({ master: false, term: MAX_TERM - 1, ckpt: { t: MAX_TERM, v: MAX_TERM, d: { cursor: 'planted' } } }));
    sim.runFor(TICK);
    for (const node of sim.live()) assert.deepEqual(node.core.checkpoint, { cursor: 'real-1' }, `${node.id} took the planted checkpoint`);
    sim.setCheckpoint('a', { cursor: 'real-2' });
    sim.runFor(TICK);
    const next = failOver(sim);
    const event = sim.eventsOf('master', next).at(-1)?.event;
    assert.ok(event?.type === 'master');
    assert.deepEqual(event.checkpoint, { cursor: 'real-2' });
  });

  test('from a forged master claim with a checkpoint term beyond ours: not taken', () => {
    const sim = settled();
    sim.setCheckpoint('a', { cursor: 'real' });
    sim.runFor(TICK);
    sim.inject(forged({ hostname: 'a', master: true, term: 3, ckpt: { t: MAX_TERM, v: 1, d: { cursor: 'planted' } } }));
    sim.runFor(TICK);
    for (const node of sim.live()) assert.deepEqual(node.core.checkpoint, { cursor: 'real' });
  });
});

describe('a stalled master (SIGSTOP, VM pause, long GC)', () => {
  // Stop lengths from under the others' failover time to several tocks; open and authenticated
  // clusters. Past the failover time (a tock and a quarter tick of silence, then a tick at most
  // for the claim) the successor keeps the role; before it, the woken master does.
  const cases: Array<[number, 'a' | 'b']> = [
    [2, 'a'],
    [1.5, 'a'],
    [4.5, 'b'],
    [6, 'b'],
    [9.7, 'b'],
    [15, 'b'],
  ];
  for (const secret of [undefined, SECRET]) {
    for (const [stallTicks, expected] of cases) {
      test(`stopped ${stallTicks} ticks${secret ? ', authenticated' : ''}: never the same term as its successor; ${expected === 'a' ? 'it stays master' : 'it follows its successor'} on waking`, () => {
        const sim = settled(secret ? { secret, latencyMs: 1 } : {});
        const masters = new Map<number, Set<string>>();
        sim.observer = {
          afterStep() {
            for (const node of sim.live()) {
              if (!node.core.master) continue;
              const holders = masters.get(node.core.term) ?? new Set<string>();
              holders.add(node.id);
              masters.set(node.core.term, holders);
              const live = sim.live().filter((other) => other.core.master && other.core.term === node.core.term);
              assert.equal(live.length, 1, `two masters with term ${node.core.term} at ${sim.now} ms: ${live.map((n) => n.id).join(', ')}`);
            }
          },
        };
        sim.stall('a', stallTicks * TICK);
        sim.runFor(stallTicks * TICK + 3 * TOCK);
        assert.equal(sim.agreedMaster(), expected);
        assert.ok(masters.size >= 1, 'no master was ever seen');
        for (const [term, holders] of masters) assert.equal(holders.size, 1, `term ${term} held by ${[...holders].join(' and ')}`);
      });
    }
  }

  test('every stop length around the failover time: once awake, it is never master beside a successor', () => {
    // The stall is lateness, and the grace grows with lateness: the woken master must judge its
    // silence by what its peers waited, not by the grace the stall itself gave it (a run
    // wrapper's command restarted beside the successor's when it did).
    const overlaps: string[] = [];
    let replaced = 0;
    for (let stallMs = TOCK - TICK; stallMs <= TOCK + TICK; stallMs += 20) {
      const sim = settled();
      const a = sim.node('a');
      sim.observer = {
        afterStep() {
          if (a.stalledUntil > sim.now) return;
          const masters = sim.masters();
          if (masters.length > 1 && overlaps.length < 5) overlaps.push(`stop ${stallMs} ms: ${masters.join(' and ')} at ${sim.now} ms`);
        },
      };
      sim.stall('a', stallMs);
      sim.runFor(stallMs + 3 * TOCK);
      if (sim.eventsOf('master', 'b').length > 0) replaced++;
    }
    assert.deepEqual(overlaps, []);
    assert.ok(replaced > 0, 'no stop length was long enough for a successor: the sweep tests nothing');
  });

  test('the woken master decides nothing until its own marker comes back behind the backlog', () => {
    const sim = new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: 1, trace: true, traceLevel: 9 });
    for (const host of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) sim.add(host);
    assert.notEqual(
      sim.runUntilTrue(() => sim.agreedMaster() === 'a', 3 * TOCK),
      null,
    );
    sim.stall('a', 10 * TICK);
    sim.runFor(10 * TICK + TOCK);
    // Before the marker: no removal, no claim on a; the backlog (7 servers × 10 ticks) takes three read turns.
    const woke = sim.timeline.findIndex((line) => /\ba\b.*Event loop stalled/.test(line));
    assert.ok(woke >= 0);
    const after = sim.timeline.slice(woke);
    const claimed = after.findIndex((line) => /\ba\b.*We are now the master/.test(line));
    assert.equal(claimed, -1, 'the woken master claimed again');
    assert.equal(sim.agreedMaster(), 'b');
    assert.equal(sim.eventsOf('deleteserver', 'a').length, 0, 'the woken master removed servers whose heartbeats were queued');
  });
});

describe('a replayed authenticated heartbeat with a huge term', () => {
  test('is refused as stale or unverified; terms stay where they were', () => {
    const sim = settled({ secret: SECRET });
    const keyring = createKeyring(SECRET);
    const before = sim.node('b').core.term;
    sim.inject(
      encode(
        {
          action: 'heartbeat',
          hostname: 'zz',
          ip: '10.6.6.6',
          master: true,
          eligible: true,
          uptime: 1,
          data: {},
          iid: 'abababababababab',
          seq: 1,
          term: MAX_TERM,
        },
        keyring,
      ),
    );
    assert.equal(sim.node('b').core.term, before);
  });
});
