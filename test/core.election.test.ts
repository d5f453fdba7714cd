/**
 * The election core against every numbered bound of SPEC section 4, on the
 * deterministic simulator: simulated clock, exact times, no sleeping.
 * Defaults: tick 1000 ms, check_beats 3 (tock 3000 ms), 1 ms one-way latency.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster, type SimClusterOptions } from '../sim/cluster';
import { Random } from '../sim/random';
import { GRACE_FLOOR_MS } from '../src/core/timing';
import { ElectionCore } from '../src/core/election';

const TICK = 1000;
const TOCK = 3000;
const LATENCY = 1;
/** A peer silent this long is dead: a tock plus the grace, on a quiet machine its floor (the simulator's timers are never late). */
const DEAD_AFTER = TOCK + GRACE_FLOOR_MS;

function cluster(hosts: string[], options: SimClusterOptions = {}): SimCluster {
  const sim = new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: LATENCY, ...options });
  for (const host of hosts) sim.add(host);
  return sim;
}

/** Run until agreed, then return [sim, master]; fails the test if it never agrees. */
function settled(hosts: string[], options: SimClusterOptions = {}): SimCluster {
  const sim = cluster(hosts, options);
  const at = sim.runUntilTrue(() => sim.agreedMaster() !== null, 10 * TOCK);
  assert.notEqual(at, null, 'cluster never agreed on a master');
  return sim;
}

describe('SPEC 4.1 alone', () => {
  test('a server alone becomes master within 1 tock (+1 tick), not before it listened a tock', () => {
    const sim = cluster(['solo']);
    const at = sim.runUntilTrue(() => sim.node('solo').core.master, 5 * TOCK);
    assert.notEqual(at, null);
    assert.ok((at as number) <= TOCK + TICK, `master at ${at} ms`);
    assert.ok((at as number) >= TOCK, `claimed after only ${at} ms of listening`);
    assert.equal(sim.node('solo').core.masterHostname, 'solo');
    assert.deepEqual(
      sim.eventsOf('master').map((e) => e.host),
      ['solo'],
    );
  });
});

describe('SPEC 4.2 cold start', () => {
  test('staggered starts in any order: the first-sorting eligible server wins, agreed within tock + tick of the last start', () => {
    for (let seed = 1; seed <= 25; seed++) {
      const random = new Random(seed);
      const hosts = ['alpha', 'bravo', 'charlie', 'delta', 'echo'].sort(() => random.next() - 0.5);
      const sim = new SimCluster({ seed, tickMs: TICK, checkBeats: 3, latencyMs: LATENCY, jitterMs: 5 });
      let lastStart = 0;
      for (const host of hosts) {
        const at = random.int(0, 2 * TICK);
        lastStart = Math.max(lastStart, at);
        sim.add(host, { at });
      }
      sim.runUntil(lastStart);
      const agreedAt = sim.runUntilTrue(() => sim.agreedMaster() !== null, 5 * TOCK);
      assert.notEqual(agreedAt, null, `seed ${seed}: never agreed`);
      assert.equal(sim.agreedMaster(), 'alpha', `seed ${seed}`);
      assert.ok((agreedAt as number) <= lastStart + TOCK + TICK, `seed ${seed}: agreed at ${agreedAt}, last start ${lastStart}`);
      sim.runFor(5 * TOCK);
      assert.equal(sim.eventsOf('master').length, 1, `seed ${seed}: exactly one master event`);
      assert.equal(sim.eventsOf('conflict').length, 0);
    }
  });

  test('an ineligible first-sorting server is passed over', () => {
    const sim = new SimCluster({ tickMs: TICK, checkBeats: 3 });
    sim.add('a', { eligible: false });
    sim.add('b');
    sim.add('c');
    sim.runUntilTrue(() => sim.agreedMaster() !== null, 3 * TOCK);
    assert.equal(sim.agreedMaster(), 'b');
  });

  test('every server lists every other, each record in the original shape', () => {
    const sim = settled(['a', 'b', 'c']);
    for (const node of sim.live()) {
      const table = node.core.table;
      assert.equal(Object.getPrototypeOf(table), null);
      assert.deepEqual(Object.keys(table).sort(), ['a', 'b', 'c']);
      for (const host of ['a', 'b', 'c']) {
        const record = table[host];
        assert.ok(record);
        assert.equal(record.hostname, host);
        assert.equal(record.self, host === node.hostname);
        assert.equal(record.master, host === 'a');
        assert.equal(record.eligible, true);
        assert.equal(record.locked, false);
        assert.equal(typeof record.ip, 'string');
        assert.equal(typeof record.now, 'number');
        assert.equal(typeof record.uptime, 'number');
        assert.equal(typeof record.data, 'object');
      }
    }
  });
});

describe('SPEC 4.3 join', () => {
  test('a joiner that sorts first never takes over, and learns the master in one round trip', () => {
    const sim = settled(['b', 'c', 'd']);
    sim.runFor(5 * TICK + 321);
    const joinedAt = sim.now;
    sim.add('a');
    const learnedAt = sim.runUntilTrue(() => sim.node('a').core.masterHostname === 'b', TICK);
    assert.notEqual(learnedAt, null, 'joiner did not learn the master within a tick');
    assert.ok((learnedAt as number) - joinedAt <= 2 * LATENCY, `learned after ${(learnedAt as number) - joinedAt} ms`);
    assert.equal(sim.node('a').core.slave, true);
    assert.deepEqual(sim.eventsOf('slave', 'a').length, 1);
    sim.runFor(100 * TICK);
    assert.equal(sim.agreedMaster(), 'b');
    assert.deepEqual(
      sim.eventsOf('master').map((e) => e.host),
      ['b'],
    );
  });

  test('a joiner learns every server in one round trip', () => {
    const sim = settled(['b', 'c', 'd', 'e']);
    sim.runFor(TICK / 2);
    const joinedAt = sim.now;
    sim.add('a');
    sim.runFor(2 * LATENCY);
    assert.deepEqual(Object.keys(sim.node('a').core.table).sort(), ['a', 'b', 'c', 'd', 'e']);
    assert.ok(sim.now - joinedAt <= 2 * LATENCY);
  });

  test('a flood of hellos is answered with a bounded number of heartbeats', () => {
    const sim = settled(['a', 'b']);
    const node = sim.node('a');
    let heartbeats = 0;
    const start = sim.now;
    for (let i = 0; i < 1000; i++) {
      const out = node.core.receive(
        { action: 'hello', hostname: `x${i}` },
        { address: '10.9.9.9', port: 1 },
        { mono: start + i / 10, wall: 0 },
      );
      heartbeats += out.send.filter((s) => s.message.action === 'heartbeat').length;
    }
    // 100 ms of hellos, answers coalesced per tick/4 = 250 ms: one at once, one deferred at most.
    assert.ok(heartbeats <= 1, `${heartbeats} heartbeats for 1000 hellos`);
  });
});

describe('SPEC 4.4 crash', () => {
  test('the first-sorting survivor is master within tock + tick of the last heartbeat heard, all agree one tick later', () => {
    for (let seed = 1; seed <= 10; seed++) {
      const sim = settled(['a', 'b', 'c', 'd'], { seed, jitterMs: 3 });
      sim.runFor(new Random(seed).int(0, 10 * TICK));
      sim.crash('a');
      sim.runFor(10); // let the datagrams a sent before dying land
      const lastHeard = sim.node('b').core.lastHeard('a') as number;
      const masterAt = sim.runUntilTrue(() => sim.node('b').core.master, 2 * TOCK);
      assert.notEqual(masterAt, null, `seed ${seed}: b never became master`);
      assert.ok((masterAt as number) <= lastHeard + TOCK + TICK, `seed ${seed}: b master at ${masterAt}, last heard a at ${lastHeard}`);
      const agreedAt = sim.runUntilTrue(() => sim.agreedMaster() === 'b', TICK);
      assert.notEqual(agreedAt, null, `seed ${seed}: survivors did not agree within a tick`);
      assert.equal(sim.eventsOf('conflict').length, 0);
    }
  });

  test('a crashed slave changes no master and is removed a tock (+ the grace) after its last heartbeat', () => {
    const sim = settled(['a', 'b', 'c']);
    sim.runFor(1234);
    sim.crash('c');
    sim.runFor(5);
    const lastHeard = sim.node('a').core.lastHeard('c') as number;
    sim.runFor(2 * TOCK);
    const removal = sim.eventsOf('deleteserver', 'a');
    assert.equal(removal.length, 1);
    assert.equal(removal[0]?.time, lastHeard + DEAD_AFTER);
    assert.equal(sim.agreedMaster(), 'a');
    assert.equal(sim.eventsOf('master').length, 1);
  });
});

describe('SPEC 4.5 graceful shutdown', () => {
  test('the survivors elect and agree within 100 ms, without waiting for a tock', () => {
    const sim = settled(['a', 'b', 'c', 'd']);
    sim.runFor(1500);
    const leftAt = sim.now;
    sim.shutdown('a');
    const agreedAt = sim.runUntilTrue(() => sim.agreedMaster() === 'b', TOCK);
    assert.notEqual(agreedAt, null);
    assert.ok((agreedAt as number) - leftAt <= 100, `agreed after ${(agreedAt as number) - leftAt} ms`);
    for (const host of ['b', 'c', 'd']) {
      assert.equal(sim.node(host).core.table.a, undefined, `${host} still lists a`);
    }
  });

  test('a shutdown notice from another instance of that hostname is ignored', () => {
    const sim = settled(['a', 'b']);
    const b = sim.node('b');
    b.core.receive(
      { action: 'shutdown', hostname: 'a', iid: 'deadbeefdeadbeef' },
      { address: '10.6.6.6', port: 1 },
      { mono: sim.now, wall: 0 },
    );
    assert.ok(b.core.table.a);
    assert.equal(b.core.masterHostname, 'a');
  });
});

describe('SPEC 4.6 dead servers', () => {
  test('losing check_beats - 1 heartbeats in a row removes no server; losing check_beats does', () => {
    const sim = settled(['a', 'b', 'c']);
    let lastHeard = sim.node('a').core.lastHeard('c') as number;
    // c's next two heartbeats are lost; the third arrives exactly a tock after the last one heard.
    sim.link = (sender) => !(sender === 'c' && sim.now < lastHeard + 2.5 * TICK);
    sim.runFor(10 * TOCK);
    assert.equal(sim.eventsOf('deleteserver').length, 0);
    assert.equal(sim.agreedMaster(), 'a');

    lastHeard = sim.node('a').core.lastHeard('c') as number;
    sim.link = (sender) => !(sender === 'c' && sim.now < lastHeard + 3.5 * TICK);
    sim.runFor(2 * TOCK);
    const removals = sim.eventsOf('deleteserver', 'a');
    assert.equal(removals.length, 1);
    assert.equal(removals[0]?.time, lastHeard + DEAD_AFTER);
  });

  test("the grace after a tock follows this server's own timer lateness: the floor when timers are on time, twice the recent peak more, at most a quarter tick, decaying by half every max(10 s, tock); with check_beats 1, a quarter tick", () => {
    const core = new ElectionCore({ hostname: 'a', ip: '127.0.0.1', instanceId: 'aaaaaaaaaaaaaaaa', tickMs: TICK, checkBeats: 3 });
    let mono = 0;
    const at = (ms: number) => ({ mono: (mono = ms), wall: ms });
    core.start(at(0));
    core.tick(at(100), 0);
    assert.equal(core.deadAfterMs, TOCK + GRACE_FLOOR_MS);
    core.tick(at(200), 30);
    assert.equal(core.deadAfterMs, TOCK + GRACE_FLOOR_MS + 60, 'the floor and twice the lateness');
    core.tick(at(300), 5);
    assert.ok(core.deadAfterMs > TOCK + GRACE_FLOOR_MS + 59, 'a smaller lateness does not lower it at once');
    core.tick(at(300 + 10_000), 0);
    const halved = TOCK + GRACE_FLOOR_MS + 2 * 30 * 2 ** (-10_100 / 10_000);
    assert.ok(Math.abs(core.deadAfterMs - halved) < 0.01, `${core.deadAfterMs}: halved ten seconds later (${halved})`);
    core.tick(at(mono + 100), 900);
    assert.equal(core.deadAfterMs, TOCK + TICK / 4, 'never past a quarter tick');
    const single = new ElectionCore({ hostname: 'a', ip: '127.0.0.1', instanceId: 'aaaaaaaaaaaaaaab', tickMs: TICK, checkBeats: 1 });
    single.start(at(0));
    single.tick(at(100), 0);
    assert.equal(single.deadAfterMs, TICK + TICK / 4, 'check_beats 1: no heartbeat to spare, a quarter tick');
  });

  for (const [beats, block] of [
    [2, 100],
    [3, 100],
    [1, 20],
  ] as const) {
    test(`on a busy machine (every event loop blocked again and again for up to ${block} ms; tick 200 ms, check_beats ${beats}) no live server is removed`, () => {
      const tick = 200;
      for (let seed = 1; seed <= 5; seed++) {
        const sim = new SimCluster({ seed, tickMs: tick, checkBeats: beats, latencyMs: 0.2, jitterMs: 0.5 });
        for (const host of ['a', 'b', 'c', 'd']) sim.add(host);
        assert.notEqual(
          sim.runUntilTrue(() => sim.agreedMaster() === 'a', 10 * tick),
          null,
        );
        sim.runFor(tick);
        const from = sim.now;
        // The load starts at once, on every server (one machine, or a rack all busy at once).
        for (const host of ['a', 'b', 'c', 'd']) sim.busy(host, block, from + 200 * tick);
        sim.runFor(210 * tick);
        const changes = sim.events.filter(
          (e) => e.time >= from && ['deleteserver', 'master', 'slave', 'masterchange'].includes(e.event.type),
        );
        assert.deepEqual(
          changes.map((e) => `${e.time.toFixed(1)} ${e.host} ${e.event.type}`),
          [],
          `seed ${seed}`,
        );
        if (beats > 1)
          for (const node of sim.live())
            assert.ok(node.core.latePeakMs > GRACE_FLOOR_MS, `${node.id} measured only ${node.core.latePeakMs} ms late`);
      }
    });
  }

  test('a locked server is never removed, and a locked dead master does not block failover', () => {
    const sim = settled(['a', 'b', 'c']);
    for (const host of ['b', 'c']) {
      assert.ok(sim.node(host).core.table.a);
      sim.lock(host, 'a');
      assert.equal(sim.node(host).core.table.a?.locked, true);
    }
    sim.crash('a');
    sim.runFor(5);
    const lastHeard = sim.node('b').core.lastHeard('a') as number;
    sim.runFor(20 * TOCK);
    assert.equal(sim.eventsOf('deleteserver').length, 0);
    assert.ok(sim.node('b').core.table.a, 'locked record was removed');
    assert.equal(sim.agreedMaster(), 'b');
    const becameMaster = sim.eventsOf('master', 'b')[0];
    assert.ok(becameMaster && becameMaster.time <= lastHeard + TOCK + TICK);
  });
});

describe('SPEC 4.7 conflict', () => {
  test('after a partition heals, two masters resolve to the first-sorting one within a tock; only the other relinquishes', () => {
    const sim = settled(['a', 'b', 'c', 'd']);
    sim.partition([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    sim.runFor(3 * TOCK);
    assert.deepEqual(sim.masters().sort(), ['a', 'c']);
    const healedAt = sim.now;
    sim.heal();
    const agreedAt = sim.runUntilTrue(() => sim.agreedMaster() !== null, 3 * TOCK);
    assert.notEqual(agreedAt, null);
    assert.ok((agreedAt as number) - healedAt <= TOCK, `agreed ${(agreedAt as number) - healedAt} ms after the heal`);
    assert.equal(sim.agreedMaster(), 'a');
    assert.ok(sim.eventsOf('conflict').length >= 1);
    assert.ok(
      sim.eventsOf('slave', 'c').some((e) => e.time >= healedAt),
      'c did not relinquish',
    );
    assert.equal(sim.eventsOf('slave', 'a').length, 0, 'the winner flapped');
    sim.runFor(100 * TICK);
    assert.equal(sim.agreedMaster(), 'a', 'not stable after the conflict');
  });

  test('with exit_on_conflict the master that would relinquish shuts down instead, and the rest agree', () => {
    const sim = new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: LATENCY });
    for (const host of ['a', 'b', 'c', 'd']) sim.add(host, { exitOnConflict: true });
    sim.runUntilTrue(() => sim.agreedMaster() !== null, 3 * TOCK);
    sim.partition([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    sim.runFor(3 * TOCK);
    const healedAt = sim.now;
    sim.heal();
    sim.runFor(3 * TOCK);
    assert.deepEqual(
      sim.eventsOf('exit').map((e) => e.host),
      ['c'],
    );
    assert.equal(sim.node('c').alive, false, 'c did not shut down');
    assert.equal(sim.agreedMaster(), 'a', 'survivors did not agree');
    assert.equal(sim.eventsOf('slave', 'c').filter((e) => e.time >= healedAt).length, 0, 'c relinquished instead of exiting');
  });
});

describe('SPEC 4.8 ineligible', () => {
  test('an ineligible server never becomes master, even when it is the last one left', () => {
    const sim = new SimCluster({ tickMs: TICK, checkBeats: 3 });
    sim.add('a', { eligible: false });
    sim.add('b');
    sim.runUntilTrue(() => sim.agreedMaster() === 'b', 3 * TOCK);
    sim.crash('b');
    sim.runFor(10 * TOCK);
    assert.equal(sim.eventsOf('master', 'a').length, 0);
    assert.equal(sim.node('a').core.masterHostname, '');
  });

  test('eligibility toggled at run time: a master made ineligible hands off at once, and gets nothing back when eligible again', () => {
    const sim = settled(['a', 'b', 'c']);
    sim.runFor(1000);
    const toggledAt = sim.now;
    sim.setEligible('a', false);
    assert.equal(sim.node('a').core.master, false);
    const agreedAt = sim.runUntilTrue(() => sim.agreedMaster() === 'b', TOCK);
    assert.notEqual(agreedAt, null);
    assert.ok((agreedAt as number) - toggledAt <= 2 * LATENCY);
    sim.setEligible('a', true);
    sim.runFor(50 * TICK);
    assert.equal(sim.agreedMaster(), 'b');
    assert.equal(sim.eventsOf('master', 'a').length, 1);
  });

  test('when no server is eligible there is no master, and the first to become eligible claims at once', () => {
    const sim = new SimCluster({ tickMs: TICK, checkBeats: 3 });
    for (const host of ['a', 'b', 'c']) sim.add(host, { eligible: false });
    sim.runFor(5 * TOCK);
    assert.equal(sim.masters().length, 0);
    const at = sim.now;
    sim.setEligible('c', true);
    const agreedAt = sim.runUntilTrue(() => sim.agreedMaster() === 'c', TOCK);
    assert.notEqual(agreedAt, null);
    assert.ok((agreedAt as number) - at <= 2 * LATENCY);
  });
});

describe('SPEC 4.9 monotonic clock', () => {
  test('stepping wall clocks by an hour either way changes no master and removes no server', () => {
    const sim = settled(['a', 'b', 'c', 'd']);
    const masterEvents = sim.eventsOf('master').length;
    sim.stepWallClock('a', 3_600_000);
    sim.stepWallClock('b', -3_600_000);
    sim.runFor(5 * TICK);
    sim.stepWallClock('c', -3_600_000);
    sim.stepWallClock('a', -7_200_000);
    sim.runFor(50 * TICK);
    assert.equal(sim.agreedMaster(), 'a');
    assert.equal(sim.eventsOf('master').length, masterEvents);
    assert.equal(sim.eventsOf('deleteserver').length, 0);
    assert.equal(sim.eventsOf('slave').filter((e) => e.time > TOCK * 2).length, 0);
    // The display field follows the receiver's wall clock; nothing else reads it.
    const seenByA = sim.node('a').core.table.b?.now as number;
    const seenByD = sim.node('d').core.table.b?.now as number;
    assert.ok(Math.abs(seenByD - seenByA - 3600) < 2, `now fields ${seenByA} vs ${seenByD}`);
  });
});

describe('SPEC 4.10 no flap', () => {
  test('a stable cluster keeps its master and every server for 1000 ticks', () => {
    const sim = settled(['a', 'b', 'c', 'd', 'e'], { jitterMs: 20, seed: 7 });
    const before = sim.events.length;
    sim.runFor(1000 * TICK);
    const after = sim.events.slice(before);
    assert.deepEqual(
      after.map((e) => `${e.host}:${e.event.type}`),
      [],
    );
    assert.equal(sim.agreedMaster(), 'a');
  });
});

describe('restart and reload', () => {
  test('a master restarted under the same hostname (new process) is succeeded without a conflict', () => {
    const sim = settled(['a', 'b', 'c']);
    sim.runFor(700);
    sim.restart('a');
    const agreedAt = sim.runUntilTrue(() => sim.agreedMaster() !== null, 3 * TOCK);
    assert.notEqual(agreedAt, null);
    assert.equal(sim.eventsOf('conflict').length, 0);
    assert.equal(sim.eventsOf('deleteserver').length, 0, 'the restarted server was never gone');
  });

  test('new timings apply without a restart: a faster tock detects a crash sooner', () => {
    const sim = settled(['a', 'b']);
    sim.setTiming(100, 2);
    sim.runFor(1000);
    sim.crash('a');
    sim.runFor(5);
    const lastHeard = sim.node('b').core.lastHeard('a') as number;
    const at = sim.runUntilTrue(() => sim.node('b').core.master, TOCK);
    assert.notEqual(at, null);
    assert.ok(
      (at as number) <= lastHeard + 200 + 100 && (at as number) >= lastHeard + 200,
      `failover at ${(at as number) - lastHeard} ms after the last heartbeat`,
    );
  });
});
