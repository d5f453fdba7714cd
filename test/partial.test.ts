/**
 * Partial connectivity, in the simulator (exact times): two servers that stop hearing each
 * other while both still hear a third (a non-transitive cut), one-way links, and what a
 * fencing store sees through it all. Watched at every step: no two masters ever hold the
 * same term, and no term is ever held by two servers, even one after the other.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster, type SimClusterOptions } from '../sim/cluster';

const TICK = 1000;
const TOCK = 3000;

/** Cut `a` and `b` off from each other, both ways; everyone else hears everyone. */
function cut(sim: SimCluster, pairs: Array<[string, string]>): void {
  sim.link = (from, to) => !pairs.some(([a, b]) => (from === a && to === b) || (from === b && to === a));
}

/** Fails at the first step where a term is held by two servers (at once, or one after the other). */
function watchTerms(sim: SimCluster): Map<number, string> {
  const holders = new Map<number, string>();
  sim.observer = {
    afterStep() {
      for (const node of sim.live()) {
        if (!node.core.master) continue;
        const holder = holders.get(node.core.term);
        assert.ok(
          holder === undefined || holder === node.hostname,
          `term ${node.core.term} held by ${holder} and by ${node.hostname} (at ${sim.now.toFixed(1)} ms)`,
        );
        holders.set(node.core.term, node.hostname);
      }
    },
  };
  return holders;
}

function views(sim: SimCluster): string {
  return sim
    .live()
    .map((n) => `${n.id}${n.core.master ? '*' : ''}@${n.core.term}→${n.core.masterHostname || '?'}`)
    .join(' ');
}

function settled(hosts: string[], options: SimClusterOptions = {}): SimCluster {
  const sim = new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: 1, ...options });
  for (const host of hosts) sim.add(host);
  assert.notEqual(
    sim.runUntilTrue(() => sim.agreedMaster() === hosts[0], 3 * TOCK),
    null,
  );
  sim.runFor(TICK / 2);
  return sim;
}

describe('a non-transitive cut: alpha and bravo stop hearing each other, both hear charlie', () => {
  for (const pair of [
    ['alpha', 'bravo'],
    ['bravo', 'charlie'],
  ] as Array<[string, string]>) {
    test(`cut ${pair.join('-')}: the master (alpha, ${pair.includes('alpha') ? 'one of the two' : 'hearing both'}) keeps the role through a 20 s cut, every server names it, and the heal changes nothing`, () => {
      const sim = settled(['alpha', 'bravo', 'charlie']);
      const master = 'alpha';
      const term = sim.node(master).core.term;
      watchTerms(sim);
      const from = sim.now;
      cut(sim, [pair]);
      const twoMasters = sim.runUntilTrue(() => sim.masters().length > 1 || sim.agreedMaster() !== master, 20_000);
      assert.equal(twoMasters, null, `at ${twoMasters} ms: ${views(sim)}`);
      sim.heal();
      sim.runFor(3 * TOCK);
      assert.equal(sim.agreedMaster(), master);
      assert.equal(sim.node(master).core.term, term, 'the term changed: someone claimed');
      const changes = sim.events.filter((e) => e.time >= from && ['master', 'slave', 'masterchange'].includes(e.event.type));
      assert.deepEqual(
        changes.map((e) => `${e.host} ${e.event.type}`),
        [],
      );
      // alpha and bravo removed each other (neither heard the other for a tock), and came back.
      for (const node of sim.live()) assert.ok(node.core.table[master], `${node.id} lost the master's record`);
    });
  }

  test('cold start inside the cut: one master within two tocks of the last start, named by all, and it stays', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const sim = new SimCluster({ seed, tickMs: TICK, checkBeats: 3, latencyMs: 1, jitterMs: 3 });
      cut(sim, [['alpha', 'bravo']]);
      watchTerms(sim);
      for (const host of ['alpha', 'bravo', 'charlie']) sim.add(host, { at: sim.random.next() * TICK });
      const agreed = sim.runUntilTrue(() => sim.agreedMaster() !== null, 2 * TOCK + TICK);
      assert.notEqual(agreed, null, `seed ${seed}: ${views(sim)}`);
      const master = sim.agreedMaster();
      const at = sim.now;
      sim.runFor(10 * TOCK);
      assert.equal(sim.agreedMaster(), master, `seed ${seed}: ${views(sim)}`);
      const later = sim.events.filter((e) => e.time > at && ['master', 'slave', 'masterchange'].includes(e.event.type));
      assert.deepEqual(
        later.map((e) => `${e.time} ${e.host} ${e.event.type}`),
        [],
        `seed ${seed}`,
      );
    }
  });

  test('the master crashes during the cut: the server that cannot hear it takes over within tock + tick of its last heartbeat heard by anyone', () => {
    const sim = settled(['alpha', 'bravo', 'charlie']);
    watchTerms(sim);
    cut(sim, [['alpha', 'bravo']]);
    sim.runFor(2 * TOCK);
    assert.equal(sim.agreedMaster(), 'alpha');
    sim.crash('alpha');
    sim.runFor(5);
    const lastHeard = sim.node('charlie').core.lastHeard('alpha') as number;
    const at = sim.runUntilTrue(() => sim.agreedMaster() === 'bravo', 2 * TOCK);
    assert.notEqual(at, null, views(sim));
    assert.ok((at as number) <= lastHeard + TOCK + TICK, `bravo master ${(at as number) - lastHeard} ms after charlie last heard alpha`);
  });

  test('the master shuts down during the cut: the server that cannot hear its notice follows within a tick', () => {
    const sim = settled(['alpha', 'bravo', 'charlie']);
    watchTerms(sim);
    cut(sim, [['alpha', 'bravo']]);
    sim.runFor(2 * TOCK);
    sim.shutdown('alpha');
    const at = sim.now;
    const agreed = sim.runUntilTrue(() => sim.agreedMaster() === 'bravo', 2 * TOCK);
    assert.notEqual(agreed, null, views(sim));
    assert.ok((agreed as number) - at <= TICK + 5, `agreed ${(agreed as number) - at} ms after the notice`);
  });
});

describe('one-way links', () => {
  test('the master cannot hear one slave (but is heard by it): nothing changes', () => {
    const sim = settled(['alpha', 'bravo', 'charlie']);
    watchTerms(sim);
    sim.link = (from, to) => !(from === 'bravo' && to === 'alpha');
    sim.runFor(10 * TOCK);
    assert.equal(sim.agreedMaster(), 'alpha');
  });

  test('a slave cannot hear the master (but is heard by it): it keeps the master on the word of the others', () => {
    const sim = settled(['alpha', 'bravo', 'charlie']);
    watchTerms(sim);
    const from = sim.now;
    sim.link = (f, to) => !(f === 'alpha' && to === 'bravo');
    sim.runFor(10 * TOCK);
    assert.equal(sim.agreedMaster(), 'alpha');
    const changes = sim.events.filter((e) => e.time >= from && ['master', 'slave', 'masterchange'].includes(e.event.type));
    assert.deepEqual(
      changes.map((e) => `${e.host} ${e.event.type}`),
      [],
    );
  });
});
