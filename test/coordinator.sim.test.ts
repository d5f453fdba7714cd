/**
 * The coordinator (etcd) mode's election, as a pure machine against the simulated
 * linearizable lease store: fixed seeds under every invariant of sim/lease-scenario.ts,
 * proof that the checker catches an overlap, and the failure semantics one by one with
 * exact simulated times. Replay a seed: npm run sim -- --coordinator --seed S --trace
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { LeaseSimCluster, type LeaseNode } from '../sim/lease-cluster';
import { LEASE_KINDS, LEASE_SIZES, leaseScenarioFromSeed, leaseSeedShape, runLeaseScenario } from '../sim/lease-scenario';
import * as records from '../src/coordinator/records';
import { safetyMarginMs } from '../src/coordinator/lease-election';

describe('fixed seeds', () => {
  test("seeds 1..600 (every fault kind, etcd's own included, at 2, 3, 5 and 7 servers, ten times over) hold every invariant", () => {
    const kinds = new Set<string>();
    const probes = new Set<string>();
    for (let seed = 1; seed <= LEASE_KINDS.length * LEASE_SIZES.length * 10; seed++) {
      const scenario = leaseScenarioFromSeed(seed);
      const result = runLeaseScenario(scenario);
      if (result.violation)
        assert.fail(
          `seed ${seed} (${scenario.kind}, ${scenario.hosts.length} servers): ${result.violation.message}\n  replay: npm run sim -- --coordinator --seed ${seed} --trace`,
        );
      kinds.add(scenario.kind);
      probes.add(scenario.probe);
    }
    assert.equal(kinds.size, LEASE_KINDS.length);
    assert.ok(probes.size >= 6, [...probes].join());
    assert.deepEqual(
      [...new Set(Array.from({ length: LEASE_KINDS.length * LEASE_SIZES.length }, (_, i) => leaseSeedShape(i).n))].sort(),
      [...LEASE_SIZES].sort(),
    );
  });

  test('the checker catches an overlap: a store whose leases end before the TTL it granted (past our margin) breaks single-master', () => {
    let caught = 0;
    for (let seed = 1; seed <= 200 && caught === 0; seed++) {
      const scenario = leaseScenarioFromSeed(seed);
      const ttlMs = scenario.ttlSeconds * 1000;
      const result = runLeaseScenario(scenario, { earlyExpiryMs: safetyMarginMs(ttlMs) * 3 });
      if (result.violation?.invariant === 'single-master-in-store-truth') caught++;
    }
    assert.ok(caught > 0, 'no seed of 200 showed the overlap');
  });
});

/** Three servers on a store 1-5 ms away, tick 200 ms × 3, TTL 1 s. */
function cluster(options: { sweep?: number; seed?: number } = {}): LeaseSimCluster {
  return new LeaseSimCluster({
    seed: options.seed ?? 7,
    tickMs: 200,
    checkBeats: 3,
    ttlSeconds: 1,
    minDelayMs: 1,
    maxDelayMs: 5,
    expirySweepMs: options.sweep ?? 0,
  });
}

/** Run until every live server agrees on one master (`want`, if given); returns it. */
function agreed(sim: LeaseSimCluster, limitMs: number, want?: string): string {
  const at = sim.runUntilTrue(() => sim.agreedMaster() !== null && (want === undefined || sim.agreedMaster() === want), limitMs);
  assert.notEqual(
    at,
    null,
    `no agreed master within ${limitMs} ms: ${sim
      .live()
      .map((n) => `${n.id}→${n.machine.masterHostname}`)
      .join(' ')}`,
  );
  return sim.agreedMaster() as string;
}

describe('the contract in store terms', () => {
  test('cold start: the eligible server that ranks first (priority, then hostname) is master; its term is in the store, as the fence and as the last term granted', () => {
    const sim = cluster();
    sim.add('charlie');
    sim.add('bravo', { priority: 1 });
    sim.add('alpha');
    assert.equal(agreed(sim, 1000), 'bravo');
    const keys = sim.node('bravo').machine.keys;
    const master = sim.store.kv.get(keys.master);
    const fence = sim.store.kv.get(keys.term);
    assert.ok(master && fence);
    assert.equal(fence.lease, master.lease, "the fence lives under the master's lease");
    assert.equal(sim.store.kv.get(keys.lastTerm)?.lease, '0', 'the last term outlives masters');
    for (const node of sim.live()) assert.equal(String(node.machine.term), fence.value);
    assert.equal(sim.store.kv.get(keys.lastTerm)?.value, fence.value);
    assert.deepEqual(
      sim.eventsOf('master').map((r) => r.host),
      ['bravo'],
    );
  });

  test('a joiner that ranks first never takes over, and learns the master within a few round trips; ineligible never campaigns', () => {
    const sim = cluster();
    sim.add('bravo');
    sim.add('charlie', { eligible: false });
    agreed(sim, 1000);
    const joinedAt = sim.now;
    const joiner = sim.add('alpha', { priority: 5 });
    const learned = sim.runUntilTrue(() => joiner.machine.masterHostname === 'bravo', 100);
    assert.ok(learned !== null && learned - joinedAt <= 20, `learned after ${learned === null ? '-' : learned - joinedAt} ms`);
    sim.runFor(5000);
    assert.equal(sim.agreedMaster(), 'bravo');
    assert.equal(sim.eventsOf('master', 'alpha').length, 0);
    // Only charlie is left eligible-less: bravo gone, alpha takes over, charlie never does.
    sim.crash('bravo');
    assert.equal(agreed(sim, 1500), 'alpha');
    assert.equal(sim.eventsOf('master', 'charlie').length, 0);
  });

  test("master killed: a new master within TTL + a round trip (+ the store's expiry sweep), with a higher term", () => {
    for (const sweep of [0, 500]) {
      const sim = cluster({ sweep });
      for (const name of ['alpha', 'bravo', 'charlie']) sim.add(name);
      assert.equal(agreed(sim, 1000), 'alpha');
      const term = sim.node('alpha').machine.term;
      sim.runFor(333); // anywhere in the keep-alive cycle
      const crashedAt = sim.now;
      sim.crash('alpha');
      assert.equal(agreed(sim, 1000 + sweep + 30), 'bravo');
      assert.ok(sim.now - crashedAt <= 1000 + sweep + 30, `${sim.now - crashedAt} ms`);
      assert.ok(sim.node('bravo').machine.term > term);
    }
  });

  test('graceful shutdown, stepDown() and promote() hand over within milliseconds, term raised, outcome reported', () => {
    const sim = cluster();
    for (const name of ['alpha', 'bravo', 'charlie', 'delta']) sim.add(name);
    assert.equal(agreed(sim, 1000), 'alpha');
    let t = sim.now;
    sim.shutdown('alpha');
    assert.equal(agreed(sim, 50, 'bravo'), 'bravo');
    assert.ok(sim.now - t < 30, `shutdown handoff ${sim.now - t} ms`);
    t = sim.now;
    const term = sim.node('bravo').machine.term;
    sim.stepDown('bravo');
    assert.equal(agreed(sim, 50, 'charlie'), 'charlie');
    assert.ok(sim.now - t < 30, `stepDown ${sim.now - t} ms`);
    assert.ok(sim.node('charlie').machine.term > term);
    sim.runFor(20);
    assert.deepEqual(
      sim.eventsOf('stepdown', 'bravo').map((r) => 'ok' in r.event && r.event.ok),
      [true],
    );
    t = sim.now;
    sim.promote('delta');
    assert.equal(agreed(sim, 50, 'delta'), 'delta');
    assert.ok(sim.now - t < 40, `promote ${sim.now - t} ms`);
    sim.runFor(20);
    assert.deepEqual(
      sim.eventsOf('promote', 'delta').map((r) => 'ok' in r.event && r.event.ok),
      [true],
    );
  });
});

describe('failure semantics', () => {
  test('a master frozen past its TTL emits slave before anything else when it resumes, and its term no longer fences', () => {
    const sim = cluster();
    for (const name of ['alpha', 'bravo', 'charlie']) sim.add(name);
    assert.equal(agreed(sim, 1000), 'alpha');
    const alpha = sim.node('alpha');
    const term = alpha.machine.term;
    const before = alpha.events.length;
    sim.freeze('alpha', 2500);
    sim.runFor(1200);
    assert.equal(sim.node('bravo').machine.master, true, 'bravo took over while alpha was frozen');
    sim.runFor(1301); // alpha resumes
    const after = alpha.events
      .slice(before)
      .map((r) => r.event.type)
      .filter((type) => type !== 'members');
    assert.deepEqual(after.slice(0, 2), ['masterchange', 'slave']);
    assert.equal(alpha.machine.master, false);
    // A write fenced with the old term: the store's fence holds another term now.
    assert.notEqual(sim.store.kv.get(alpha.machine.keys.term)?.value, String(term));
  });

  test('a master that loses the store steps down before its lease can expire there; the others elect once it has', () => {
    const sim = cluster();
    for (const name of ['alpha', 'bravo', 'charlie']) sim.add(name);
    assert.equal(agreed(sim, 1000), 'alpha');
    const alpha = sim.node('alpha');
    sim.cutLink('alpha');
    const cutAt = sim.now;
    const steppedDown = sim.runUntilTrue(() => !alpha.machine.master, 1000);
    assert.ok(steppedDown !== null);
    const lease = sim.store.leases.get(alpha.machine.keys && (sim.store.kv.get(alpha.machine.keys.master)?.lease ?? ''));
    assert.ok(lease, 'its lease is still alive at the store when it steps down');
    assert.ok(steppedDown < lease.expiresAt - 50, `stepped down at ${steppedDown}, lease ends at ${lease.expiresAt}`);
    const others = sim.runUntilTrue(() => sim.node('bravo').machine.master && sim.node('charlie').machine.masterHostname === 'bravo', 1100);
    assert.ok(others !== null && others - cutAt <= 1100, 'bravo (next in rank) is master within TTL + a round trip of the cut');
    sim.healLink('alpha');
    sim.runFor(500);
    assert.ok(sim.agreedMaster() !== 'alpha' && sim.agreedMaster() !== null);
  });

  test('a slave cut off from the store steps out; the master and the others are unaffected', () => {
    const sim = cluster();
    for (const name of ['alpha', 'bravo', 'charlie']) sim.add(name);
    assert.equal(agreed(sim, 1000), 'alpha');
    const changesBefore = sim.eventsOf('masterchange').filter((r) => r.host !== 'charlie').length;
    sim.cutLink('charlie');
    sim.runFor(3000);
    assert.equal(sim.node('charlie').machine.masterHostname, '', 'charlie no longer claims to know the master');
    assert.equal(sim.node('alpha').machine.master, true);
    assert.equal(sim.eventsOf('masterchange').filter((r) => r.host !== 'charlie').length, changesBefore);
    sim.healLink('charlie');
    assert.equal(agreed(sim, 1000), 'alpha');
  });

  test('the whole store down: every server is slave within a TTL; one master within a tock of its return', () => {
    const sim = cluster();
    for (const name of ['alpha', 'bravo', 'charlie']) sim.add(name);
    assert.equal(agreed(sim, 1000), 'alpha');
    sim.storeDown();
    const downAt = sim.now;
    const allSlaves = sim.runUntilTrue(() => sim.live().every((n) => !n.machine.master), 2000);
    assert.ok(allSlaves !== null && allSlaves - downAt < 1000, `${allSlaves === null ? '-' : allSlaves - downAt} ms`);
    sim.runFor(3000);
    assert.ok(sim.live().every((n) => !n.machine.master && n.machine.masterHostname === ''));
    sim.storeUp();
    const upAt = sim.now;
    agreed(sim, 600);
    assert.ok(sim.now - upAt <= 600, `master again ${sim.now - upAt} ms after the store's return (tock 600 ms)`);
  });
});

describe('hostile store data', () => {
  test('forged and malformed records are ignored; the election and the table stay sound', () => {
    const sim = cluster();
    sim.add('alpha');
    sim.add('bravo');
    assert.equal(agreed(sim, 1000), 'alpha');
    const keys = sim.node('alpha').machine.keys;
    const member = (hostname: string, extra = ''): string =>
      records
        .encodeMember({ hostname, ip: '10.0.0.9', eligible: true, uptime: 1, data: {}, iid: 'abcdef0123456789', priority: 0, port: 3014 })
        .replace('"data":{}', `"data":{${extra}}`);
    sim.store.write(`${keys.members}__proto__`, member('__proto__'));
    sim.store.write(`${keys.members}constructor`, member('constructor'));
    sim.store.write(`${keys.members}mallory`, member('eve')); // hostname does not match the key
    sim.store.write(`${keys.members}deep`, member('deep', `"a":${'['.repeat(40)}${']'.repeat(40)}`));
    sim.store.write(`${keys.members}proto`, member('proto', '"x":{"__proto__":{"polluted":1}}'));
    sim.store.write(`${keys.members}junk`, 'not json at all');
    sim.store.write(`${keys.members}bigport`, member('bigport').replace('"port":3014', '"port":99999'));
    sim.store.write(keys.checkpoint, '{"hostname":"x","action":"heartbeat"}');
    sim.store.write(keys.handoff, '[]');
    sim.store.write(keys.promote, '{"__proto__":1}');
    sim.store.write(`${keys.members}zulu`, member('zulu')); // a valid stranger: a member like any
    sim.runFor(50);
    for (const node of sim.live()) {
      const table = node.machine.table;
      assert.deepEqual(Object.keys(table).sort(), ['alpha', 'bravo', 'zulu']);
      assert.equal(Object.getPrototypeOf(table), null);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(sim.agreedMaster(), 'alpha');
    // An unreadable election key still occupies the election: no master, and nobody crashes.
    sim.crash('alpha');
    sim.store.write(keys.master, '{"garbage":true}');
    sim.runFor(2000);
    assert.equal(sim.node('bravo').machine.master, false);
    assert.equal(sim.node('bravo').machine.masterHostname, '');
  });
});

describe('checkpoints', () => {
  test("written fenced by the term: the next master resumes from it; a deposed master's write fails", () => {
    const sim = cluster();
    for (const name of ['alpha', 'bravo']) sim.add(name);
    assert.equal(agreed(sim, 1000), 'alpha');
    assert.ok(sim.setCheckpoint('alpha', { next: 6 }));
    sim.runFor(20);
    assert.deepEqual(sim.node('bravo').machine.checkpoint, { next: 6 });
    sim.crash('alpha');
    agreed(sim, 1100);
    const master = sim.eventsOf('master', 'bravo')[0]?.event;
    assert.ok(master && master.type === 'master');
    assert.deepEqual(master.checkpoint, { next: 6 });
  });
});

describe('data and messages', () => {
  test("data reaches the others' records at most once a tick, however often it changes", () => {
    const sim = cluster();
    sim.add('alpha');
    sim.add('bravo');
    agreed(sim, 1000);
    sim.runFor(500);
    const puts = sim.store.opsByType.put ?? 0;
    for (let i = 1; i <= 20; i++) {
      sim.at(sim.now + i * 10, () => sim.setData('alpha', { step: i }));
    }
    sim.runFor(200 + 200 + 20); // 20 changes over 200 ms; a tick is 200 ms
    assert.deepEqual(sim.node('bravo').machine.record('alpha')?.data, { step: 20 });
    const added = (sim.store.opsByType.put ?? 0) - puts;
    assert.ok(added >= 1 && added <= 3, `${added} record writes for 20 changes`);
  });

  test('messages go by UDP to the address a member registered; strangers and replays are refused', () => {
    const sim = cluster();
    sim.add('alpha');
    sim.add('bravo');
    agreed(sim, 1000);
    const alpha = sim.node('alpha').machine;
    const bravo = sim.node('bravo').machine;
    const at = { mono: sim.now, wall: Date.now() };
    const out = alpha.sendMessage('bravo', 'job.done', { id: 42 }, at);
    assert.equal(out.send.length, 1);
    assert.deepEqual(out.send[0]?.to, { address: '127.0.0.1', port: sim.node('bravo').port });
    const message = out.send[0]?.message;
    assert.ok(message && message.action === 'message');
    const from = { address: '127.0.0.1', port: 3014 };
    const delivered = bravo.receive(message, from, at);
    assert.deepEqual(
      delivered.events.map((e) => e.type === 'message' && [e.from, e.messageType, e.payload]),
      [['alpha', 'job.done', { id: 42 }]],
    );
    assert.equal(bravo.receive(message, from, at).dropped, 'stale', 'a replay is stale');
    assert.equal(bravo.receive({ ...message, hostname: 'mallory' }, from, at).events.length, 0, 'not a member');
    assert.equal(bravo.receive({ ...message, iid: 'ffffffffffffffff', seq: 99 }, from, at).events.length, 0, 'not the registered process');
    assert.equal(alpha.sendMessage('*', 'hello', null, at).send.length, 1, "'*' goes to every other member");
  });
});

/** Three servers on a store 1-5 ms away whose elections take up to 2 × 100 ms + a vote: TTL 1 s outlasts them (SPEC 15.2). */
function etcdLike(seed = 11): LeaseSimCluster {
  return new LeaseSimCluster({
    seed,
    tickMs: 200,
    checkBeats: 3,
    ttlSeconds: 1,
    minDelayMs: 1,
    maxDelayMs: 5,
    expirySweepMs: 500,
    traceLevel: 10,
  });
}

const ROLE_EVENTS = new Set(['master', 'slave', 'masterchange']);

describe("etcd's own faults (SPEC 15)", () => {
  test('leader elections as long as the timing rule allows change no master and no term, many times over', () => {
    const sim = etcdLike();
    for (const name of ['alpha', 'bravo', 'charlie']) sim.add(name);
    assert.equal(agreed(sim, 1000), 'alpha');
    const term = sim.node('alpha').machine.term;
    const before = sim.events.filter((r) => ROLE_EVENTS.has(r.event.type)).length;
    // 2 × election timeout + a vote, at every phase of the keep-alive cycle.
    for (let round = 0; round < 20; round++) {
      sim.runFor(137 * (round % 7) + 50);
      sim.store.leaderless(2 * 100 + 200);
      sim.runFor(1000);
    }
    assert.equal(sim.events.filter((r) => ROLE_EVENTS.has(r.event.type)).length, before, 'no master, slave or masterchange event');
    for (const node of sim.live()) assert.equal(node.machine.term, term);
    assert.equal(sim.agreedMaster(), 'alpha');
  });

  test('a leader election longer than the renew deadline: the master stops at its deadline, keeps its lease, and takes the role back with the same term once etcd confirms both', () => {
    const sim = etcdLike();
    for (const name of ['alpha', 'bravo', 'charlie']) sim.add(name);
    assert.equal(agreed(sim, 1000), 'alpha');
    const alpha = sim.node('alpha');
    const term = alpha.machine.term;
    const lease = alpha.machine.lease;
    const from = alpha.events.length;
    sim.store.leaderless(1500);
    const stopped = sim.runUntilTrue(() => !alpha.machine.isMasterAt({ mono: sim.now, wall: 0 }), 1500);
    assert.ok(stopped !== null, 'alpha stops acting at its deadline');
    sim.runFor(1);
    assert.equal(alpha.machine.lapsed, true, 'its lease kept, not given up');
    assert.equal(alpha.machine.lease, lease);
    assert.equal(agreed(sim, 1500), 'alpha');
    assert.equal(alpha.machine.term, term);
    assert.equal(alpha.machine.lease, lease, 'the same lease: etcd extended it');
    const after = alpha.events
      .slice(from)
      .map((r) => r.event)
      .filter((e) => e.type === 'master' || e.type === 'slave');
    assert.deepEqual(
      after.map((e) => e.type),
      ['slave', 'master'],
    );
    assert.equal(after[1]?.type === 'master' && after[1].term, term, 'the same term');
    assert.deepEqual(
      sim.eventsOf('master').filter((r) => r.host !== 'alpha'),
      [],
      'nobody else was master',
    );
  });

  test('restore from an older snapshot and wipe: terms keep increasing on every server; checkpoint, stepDown and promote work after', () => {
    for (const fault of ['restore', 'wipe'] as const) {
      const sim = etcdLike(23);
      for (const name of ['alpha', 'bravo', 'charlie']) sim.add(name);
      assert.equal(agreed(sim, 1000), 'alpha');
      const snapshot = sim.store.snapshot();
      // Terms move on past the snapshot: two handoffs (bravo, then alpha again, first in rank).
      sim.stepDown('alpha');
      assert.equal(agreed(sim, 500, 'bravo'), 'bravo');
      sim.stepDown('bravo');
      assert.equal(agreed(sim, 500, 'alpha'), 'alpha');
      assert.ok(sim.setCheckpoint('alpha', { job: 42 }, 1));
      sim.runFor(100);
      assert.deepEqual(
        sim.eventsOf('checkpoint', 'alpha').map((r) => r.event.type === 'checkpoint' && r.event.ok),
        [true],
      );
      const highest = Math.max(...sim.live().map((node) => node.machine.term));
      assert.equal(highest, 3);
      if (fault === 'restore') sim.store.restore(snapshot);
      else sim.store.wipe();
      // Everyone hears of it, raises the last term back, listens a TTL and a tick, elects.
      sim.runFor(3000);
      agreed(sim, 1000);
      const terms = sim.eventsOf('master').map((r) => (r.event.type === 'master' ? r.event.term : 0));
      for (let i = 1; i < terms.length; i++)
        assert.ok((terms[i] as number) > (terms[i - 1] as number), `${fault}: terms ${terms.join(', ')}`);
      const master = sim.node(sim.agreedMaster() as string);
      assert.ok(master.machine.term > highest, `${fault}: term ${master.machine.term} above ${highest}`);
      for (const node of sim.live()) assert.equal(node.machine.term, master.machine.term);
      // The checkpoint acknowledged before is the one the next master resumed from, and is back in the store.
      const last = sim.eventsOf('master').at(-1)?.event;
      assert.ok(last?.type === 'master');
      assert.deepEqual(last.checkpoint, { job: 42 });
      sim.runFor(100);
      assert.match(sim.store.kv.get(master.machine.keys.checkpoint)?.value ?? '', /"job":42/);
      // Fenced writes, stepDown and promote use the term held: they work.
      assert.ok(sim.setCheckpoint(master.id, { job: 43 }, 2));
      sim.runFor(100);
      assert.deepEqual(
        sim.eventsOf('checkpoint', master.id).flatMap((r) => (r.event.type === 'checkpoint' && r.event.ticket === 2 ? [r.event.ok] : [])),
        [true],
      );
      sim.stepDown(master.id);
      const next = agreed(sim, 500);
      assert.notEqual(next, master.id);
      const other = sim.live().find((node) => node.id !== next) as LeaseNode;
      sim.promote(other.id);
      assert.equal(agreed(sim, 500, other.id), other.id);
    }
  });
});

describe('checkpoints: stored once etcd answers, or reported (SPEC 15.5)', () => {
  test('retried through a stall until etcd stores it; the outcome settles every call up to its ticket', () => {
    const sim = etcdLike();
    for (const name of ['alpha', 'bravo']) sim.add(name);
    assert.equal(agreed(sim, 1000), 'alpha');
    sim.store.stall(600); // answers nothing, for longer than an op's timeout
    assert.ok(sim.setCheckpoint('alpha', { n: 1 }, 1));
    assert.ok(sim.setCheckpoint('alpha', { n: 2 }, 2));
    sim.runFor(400);
    assert.deepEqual(sim.eventsOf('checkpoint', 'alpha'), [], 'no outcome while etcd does not answer');
    sim.runFor(1000);
    const outcomes = sim.eventsOf('checkpoint', 'alpha').map((r) => r.event);
    assert.ok(outcomes.length >= 1 && outcomes.every((e) => e.type === 'checkpoint' && e.ok));
    const last = outcomes.at(-1);
    assert.equal(last?.type === 'checkpoint' && last.ticket, 2);
    assert.deepEqual(sim.node('bravo').machine.checkpoint, { n: 2 });
    sim.crash('alpha');
    agreed(sim, 2000);
    const master = sim.eventsOf('master', 'bravo')[0]?.event;
    assert.ok(master?.type === 'master');
    assert.deepEqual(master.checkpoint, { n: 2 });
  });

  test('one that cannot be stored (the role is lost first) is reported: a failed outcome and a level-1 line', () => {
    const sim = etcdLike();
    for (const name of ['alpha', 'bravo']) sim.add(name);
    assert.equal(agreed(sim, 1000), 'alpha');
    sim.cutLink('alpha');
    assert.ok(sim.setCheckpoint('alpha', { n: 1 }, 7));
    sim.runFor(2000);
    const outcome = sim.eventsOf('checkpoint', 'alpha').map((r) => r.event);
    assert.equal(outcome.length, 1);
    assert.ok(outcome[0]?.type === 'checkpoint' && !outcome[0].ok && outcome[0].ticket === 7, JSON.stringify(outcome));
    assert.ok(
      sim.logs.some(
        (l) => l.host === 'alpha' && l.level === 1 && /Checkpoint of term \d+, version 1 was (perhaps )?not stored/.test(l.message),
      ),
      'logged at level 1',
    );
  });

  test('a checkpoint set right before stepDown() goes with the handoff', () => {
    const sim = etcdLike();
    for (const name of ['alpha', 'bravo']) sim.add(name);
    assert.equal(agreed(sim, 1000), 'alpha');
    assert.ok(sim.setCheckpoint('alpha', { n: 9 }, 3));
    sim.stepDown('alpha');
    assert.equal(agreed(sim, 500, 'bravo'), 'bravo');
    const master = sim.eventsOf('master', 'bravo')[0]?.event;
    assert.ok(master?.type === 'master');
    assert.deepEqual(master.checkpoint, { n: 9 });
    assert.deepEqual(
      sim.eventsOf('checkpoint', 'alpha').map((r) => r.event.type === 'checkpoint' && [r.event.ok, r.event.ticket]),
      [[true, 3]],
    );
  });
});

describe('lifecycle (SPEC 15.7)', () => {
  test("graceful shutdown: the master's slave event is delivered before its lease is revoked", () => {
    const sim = etcdLike();
    for (const name of ['alpha', 'bravo']) sim.add(name);
    assert.equal(agreed(sim, 1000), 'alpha');
    const order: string[] = [];
    const send = sim.store.send.bind(sim.store);
    sim.store.send = (client, op) => {
      if (client.startsWith('alpha#') && op.type === 'revoke') order.push('revoke');
      send(client, op);
    };
    sim.observer = { onEvent: (record) => record.host === 'alpha' && record.event.type === 'slave' && order.push('slave') };
    sim.shutdown('alpha');
    assert.deepEqual(order, ['slave', 'revoke']);
    assert.equal(agreed(sim, 100, 'bravo'), 'bravo');
  });

  test('servers started while etcd is down elect by rank once it is back (patience counts from the first read)', () => {
    const sim = etcdLike();
    sim.storeDown();
    sim.add('charlie');
    sim.add('bravo', { priority: 1 });
    sim.add('alpha');
    sim.runFor(10_000);
    sim.storeUp();
    assert.equal(agreed(sim, 3000), 'bravo');
    assert.deepEqual(
      sim.eventsOf('master').map((r) => r.host),
      ['bravo'],
    );
  });

  test('a failure longer than a TTL is logged at level 1 with its reason, then at most once a minute with a count, and its end once', () => {
    const sim = etcdLike();
    for (const name of ['alpha', 'bravo']) sim.add(name);
    assert.equal(agreed(sim, 1000), 'alpha');
    const from = sim.logs.length;
    sim.storeDown();
    sim.runFor(150_000);
    sim.storeUp();
    agreed(sim, 3000);
    const lines = sim.logs
      .slice(from)
      .filter((l) => l.host === 'alpha' && l.level <= 1)
      .map((l) => l.message);
    assert.match(lines[0] ?? '', /no working contact with etcd for 1\.\d s \(TTL 1\.0 s\): .*(no answer in time|no connection)/);
    const repeats = lines.filter((l) => /still no working contact/.test(l));
    assert.ok(repeats.length >= 2 && repeats.length <= 3, `${repeats.length} repeats in 150 s`);
    assert.match(repeats[0] ?? '', /\d+ failed requests in the last minute/);
    assert.match(lines.at(-1) ?? '', /in contact with etcd again after 15\d\.\d s/);
    assert.equal(lines.length, 2 + repeats.length);
  });
});

describe("datagrams: the UDP mode's freshness rule (SPEC 13.6)", () => {
  test("a forged datagram with a member's instance id and sequence 2^53 - 1 silences it for a tock at most, whatever the forger sends within the window", () => {
    const sim = cluster();
    for (const name of ['alpha', 'bravo']) sim.add(name);
    agreed(sim, 1000);
    const alpha = sim.node('alpha');
    const from = { address: '127.0.0.1', port: alpha.port };
    const delivered = (): number[] =>
      sim.eventsOf('message', 'bravo').map((r) => (r.event.type === 'message' ? (r.event.payload as number) : -1));
    sim.sendMessage('alpha', 'bravo', 'job', 1);
    sim.runFor(20);
    assert.deepEqual(delivered(), [1]);
    const forge = (seq: number): void => {
      sim.receiveDatagram(
        'bravo',
        { action: 'message', hostname: 'alpha', to: 'bravo', type: 'job', payload: -1, iid: alpha.machine.instanceId, seq },
        from,
      );
    };
    for (const seq of [2 ** 53 - 1, 2 ** 53 - 2]) {
      forge(seq); // the forged one itself is delivered (an open cluster cannot tell), and counts
      const forgedAt = sim.now;
      sim.runFor(5);
      // The real member's next messages: a new count far below the forged number, accepted at once.
      sim.sendMessage('alpha', 'bravo', 'job', 2);
      sim.runFor(20);
      assert.equal(delivered().at(-1), 2, `after a forged ${seq}`);
      assert.ok(sim.now - forgedAt < 50);
    }
    // A forger within the window (a little above the real count) holds it off for a tock at most.
    const base = sim.eventsOf('message', 'bravo').length;
    forge(500); // alpha has sent 3: within 1024 above
    const forgedAt = sim.now;
    sim.runFor(5);
    sim.sendMessage('alpha', 'bravo', 'job', 3);
    sim.runFor(20);
    assert.equal(sim.eventsOf('message', 'bravo').length, base + 1, 'within the window and a tock: the real one is stale');
    sim.runUntil(forgedAt + sim.tockMs + 1);
    sim.sendMessage('alpha', 'bravo', 'job', 4);
    sim.runFor(20);
    assert.equal(delivered().at(-1), 4, "a tock after the forger's last datagram, the member is heard again");
    assert.ok(sim.now - forgedAt <= sim.tockMs + 50);
  });
});
