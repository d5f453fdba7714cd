/**
 * A promote request held while the master's app drains its work (SPEC 9.6, elector/hold.ts), on
 * the deterministic simulator: the master stays master and says whom it drains for; the
 * promoter keeps waiting past a tock for as long as it does; `drained()` hands over in one
 * round trip; the backstop, a held request whose sender died, a master that loses the role
 * meanwhile, a second asker, and stepDown() taking the held request over.
 * Tick 1000 ms, check_beats 3 (tock 3000 ms), 1 ms one-way latency.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster } from '../sim/cluster';
import type { CoreEvent } from '../src/elector/types';
import { decode, encode } from '../src/wire/codec';

const TICK = 1000;
const TOCK = 3000;
const DRAIN_MS = 10_000;

function cluster(hosts: string[], drainMs: number | null = DRAIN_MS): SimCluster {
  const sim = new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: 1 });
  for (const host of hosts) sim.add(host, drainMs === null ? {} : { drainMs });
  const at = sim.runUntilTrue(() => sim.agreedMaster() === hosts[0], 5 * TOCK);
  assert.notEqual(at, null, 'never agreed');
  sim.runFor(300);
  return sim;
}

const events = (sim: SimCluster, host: string, type: CoreEvent['type']): CoreEvent[] =>
  sim.eventsOf(type, host).map((record) => record.event);

describe('a promote request held while the master drains', () => {
  test('the master stays master and asks its app to drain; the promoter waits past a tock; drained() hands over in a round trip', () => {
    const sim = cluster(['a', 'b', 'c']);
    sim.promote('c');
    sim.runFor(5);
    assert.deepEqual(events(sim, 'a', 'drain'), [{ type: 'drain', target: 'c' }]);
    assert.equal(sim.agreedMaster(), 'a', 'a keeps the role while it drains');
    // Two tocks of draining: far past the promote's own tock, and it has not failed.
    const twoMasters = sim.runUntilTrue(() => sim.masters().length > 1, 2 * TOCK);
    assert.equal(twoMasters, null);
    assert.equal(sim.agreedMaster(), 'a');
    assert.deepEqual(events(sim, 'c', 'promote'), [], 'the promote neither failed nor succeeded yet');
    // Its heartbeats named c all along (a field the wire carries).
    const heartbeat = decode(
      encode({ action: 'heartbeat', hostname: 'a', ip: '127.0.0.1', master: true, eligible: true, uptime: 1, data: {}, drain: 'c' }),
    );
    assert.ok(heartbeat.ok && 'message' in heartbeat && heartbeat.message.action === 'heartbeat' && heartbeat.message.drain === 'c');
    const at = sim.now;
    sim.drained('a');
    const done = sim.runUntilTrue(() => sim.node('c').core.master, 10);
    assert.ok(done !== null && done - at <= 2, `c master ${done === null ? 'never' : `${done - at} ms after drained()`}`);
    sim.runFor(2 * TICK);
    assert.equal(sim.agreedMaster(), 'c');
    assert.deepEqual(
      events(sim, 'c', 'promote').map((e) => (e as { ok: boolean }).ok),
      [true],
    );
    assert.deepEqual(
      events(sim, 'a', 'stepdown').map((e) => (e as { ok: boolean }).ok),
      [true],
    );
  });

  test('without the option (the simulator, an app that does not drain) a promote hands over at once, as before', () => {
    const sim = cluster(['a', 'b', 'c'], null);
    sim.promote('c');
    sim.runFor(5);
    assert.equal(sim.node('c').core.master, true);
    assert.deepEqual(events(sim, 'a', 'drain'), []);
  });

  test('an app that never answers: the backstop hands over drain time and a tock after the request', () => {
    const sim = cluster(['a', 'b', 'c'], 2000);
    const at = sim.now;
    sim.promote('b');
    const done = sim.runUntilTrue(() => sim.node('b').core.master, 4 * TOCK);
    assert.ok(done !== null, 'never handed over');
    assert.ok(done - at >= 2000 + TOCK && done - at <= 2000 + TOCK + 5, `${done - at} ms`);
    assert.equal(sim.masters().length, 1);
  });

  test('the promoter gives up a tock after the master stops saying it drains (a master that died)', () => {
    const sim = cluster(['a', 'b', 'c']);
    sim.promote('c');
    sim.runFor(2 * TOCK);
    const crashed = sim.now;
    sim.crash('a');
    sim.runFor(3 * TOCK);
    const promote = sim.eventsOf('promote', 'c');
    // The election replaced a (b ranks first); c's request failed within a tock of a's last heartbeat.
    assert.equal(sim.agreedMaster(), 'b');
    assert.equal(promote.length, 1);
    assert.equal((promote[0]?.event as { ok: boolean }).ok, false);
    assert.ok((promote[0]?.time ?? Infinity) <= crashed + TOCK + 5, `failed at ${promote[0]?.time}`);
  });

  test('drained() after the requester died, or after the master lost its role, hands nothing over', () => {
    const sim = cluster(['a', 'b', 'c']);
    sim.promote('c');
    sim.runFor(10);
    sim.crash('c');
    sim.runFor(TOCK + TICK);
    sim.drained('a');
    sim.runFor(10);
    assert.equal(sim.agreedMaster(), 'a');
    assert.deepEqual(
      events(sim, 'a', 'stepdown').map((e) => (e as { ok: boolean; reason: string }).reason),
      ['c is no longer a live eligible server'],
    );

    const lost = cluster(['a', 'b', 'c']);
    lost.promote('c');
    lost.runFor(10);
    lost.setEligible('a', false);
    lost.runFor(TICK);
    const master = lost.agreedMaster();
    lost.drained('a');
    lost.runFor(TICK);
    assert.equal(lost.agreedMaster(), master, 'a late drained() changes nothing');
  });

  test("a second asker during the drain does not take the first one's place; stepDown() hands to the one held", () => {
    const sim = cluster(['a', 'b', 'c', 'd']);
    sim.promote('d');
    sim.runFor(10);
    sim.promote('b');
    sim.runFor(10);
    assert.deepEqual(events(sim, 'a', 'drain'), [{ type: 'drain', target: 'd' }]);
    sim.stepDown('a');
    sim.runFor(10);
    assert.equal(sim.node('d').core.master, true, 'stepDown() took over the held request: d asked first');
    sim.runFor(2 * TOCK);
    assert.equal(sim.agreedMaster(), 'd');
    // b's promote() still waits: it asks each new master once (SPEC 9.5), and d holds it in turn.
    assert.deepEqual(events(sim, 'b', 'promote'), []);
    assert.deepEqual(events(sim, 'd', 'drain'), [{ type: 'drain', target: 'b' }]);
  });
});
