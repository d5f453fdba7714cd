/**
 * Election beyond the original, on the deterministic simulator: terms (fencing tokens),
 * priority, quorum, manual handoff, namespaces and stall awareness.
 * Defaults: tick 1000 ms, check_beats 3 (tock 3000 ms), 1 ms one-way latency.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster, type SimClusterOptions, type SimNodeOptions } from '../sim/cluster';
import { Random } from '../sim/random';
import { decode, encode } from '../src/wire/codec';
import type { CoreEvent, Instant, Output } from '../src/elector/types';
import { ElectionCore } from '../src/core/election';
import type { Message } from '../src/protocol/messages';
import { nextTerm, slotOf, termSlot } from '../src/protocol/terms';

const TICK = 1000;
const TOCK = 3000;
const LATENCY = 1;

function cluster(nodes: Record<string, SimNodeOptions>, options: SimClusterOptions = {}): SimCluster {
  const sim = new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: LATENCY, ...options });
  for (const [host, nodeOptions] of Object.entries(nodes)) sim.add(host, nodeOptions);
  return sim;
}

function agree(sim: SimCluster, limit = 5 * TOCK): string {
  const at = sim.runUntilTrue(() => sim.agreedMaster() !== null, limit);
  assert.notEqual(at, null, 'never agreed');
  return sim.agreedMaster() as string;
}

/** Runs the simulation and fails at the first instant two servers both believe they are master. */
function runWatchingForTwoMasters(sim: SimCluster, ms: number): void {
  const twoMasters = sim.runUntilTrue(() => sim.masters().length > 1, ms);
  assert.equal(twoMasters, null, `two masters at ${twoMasters} ms: ${sim.masters().join(', ')}`);
}

const masterTerms = (sim: SimCluster): number[] =>
  sim.eventsOf('master').map((e) => (e.event as Extract<CoreEvent, { type: 'master' }>).term);

/** Each master's term is above the one before, and in its claimant's own slot. */
function assertTermsClaimed(sim: SimCluster, hosts: string[]): void {
  const events = sim.eventsOf('master');
  assert.deepEqual(
    events.map((e) => e.host),
    hosts,
  );
  const terms = masterTerms(sim);
  terms.forEach((term, i) => {
    assert.equal(slotOf(term), termSlot(events[i]?.host as string), `term ${term} of ${events[i]?.host} is not in its slot`);
    if (i > 0) assert.ok(term > (terms[i - 1] as number), `terms ${terms.join(', ')}`);
  });
}

describe('term (fencing token)', () => {
  test("every change of master raises the term, each master claiming in its own slot; slaves carry the master's term", () => {
    const sim = cluster({ a: {}, b: {}, c: {}, d: {} });
    agree(sim);
    const first = sim.node('a').core.term;
    assert.equal(first, nextTerm(0, termSlot('a')), "the first term is the first in a's slot");
    sim.runFor(2 * TICK);
    for (const host of ['b', 'c', 'd']) assert.equal(sim.node(host).core.term, first, host);
    sim.crash('a');
    sim.runUntilTrue(() => sim.agreedMaster() === 'b', 2 * TOCK);
    sim.runFor(TICK);
    assert.equal(sim.node('b').core.term, nextTerm(first, termSlot('b')));
    sim.shutdown('b');
    sim.runUntilTrue(() => sim.agreedMaster() === 'c', TOCK);
    sim.runFor(TICK);
    assertTermsClaimed(sim, ['a', 'b', 'c']);
    assert.equal(sim.node('d').core.term, sim.node('c').core.term);
  });

  test('a restarted server that becomes master takes a term above everything the cluster has seen', () => {
    const sim = cluster({ a: {}, b: {} });
    agree(sim);
    sim.crash('a');
    sim.runUntilTrue(() => sim.agreedMaster() === 'b', 2 * TOCK);
    sim.restart('a'); // a joins as slave of b, learning b's term
    sim.runFor(TICK);
    sim.shutdown('b');
    sim.runUntilTrue(() => sim.agreedMaster() === 'a', TOCK);
    assertTermsClaimed(sim, ['a', 'b', 'a']);
  });

  test('both sides of a partition claim, never the same term; after the heal the master that keeps the role claims above both', () => {
    const sim = cluster({ a: {}, b: {}, c: {}, d: {} });
    agree(sim);
    const before = sim.node('a').core.term;
    sim.partition([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    sim.runFor(3 * TOCK);
    const claimed = sim.node('c').core.term;
    assert.equal(claimed, nextTerm(before, termSlot('c')));
    assert.notEqual(claimed, sim.node('a').core.term);
    sim.heal();
    sim.runUntilTrue(() => sim.agreedMaster() === 'a', TOCK);
    sim.runFor(TICK);
    assert.ok(sim.node('a').core.term > claimed, `winner's term ${sim.node('a').core.term}, c's was ${claimed}`);
    assert.equal(slotOf(sim.node('a').core.term), termSlot('a'));
    for (const host of ['b', 'c', 'd']) assert.equal(sim.node(host).core.term, sim.node('a').core.term, host);
  });

  /**
   * a, cut off alone, still claims master with its old term; b is elected above it. Then only
   * a's side is heard: a reaches b and c, nothing reaches a.
   */
  function aBelowB(): { sim: SimCluster; higher: number } {
    const sim = cluster({ a: {}, b: {}, c: {} });
    agree(sim);
    sim.partition([['a'], ['b', 'c']]);
    assert.notEqual(
      sim.runUntilTrue(() => sim.node('b').core.master && sim.node('c').core.masterHostname === 'b', 3 * TOCK),
      null,
    );
    sim.runFor(TOCK);
    const higher = sim.node('b').core.term;
    assert.ok(sim.node('a').core.term < higher && sim.node('a').core.master);
    sim.link = (from, to) => from === to || from === 'a' || (from !== 'a' && to !== 'a');
    return { sim, higher };
  }

  test('a claim below the term of the master before it is not agreed to until it is above: the cluster never agrees on the lower term', () => {
    // a, cut off alone, keeps its old term; b is elected above it. When a's heartbeat reaches
    // b and c before theirs reach a (here: a's side of the heal comes first), a never heard b
    // as master and had nothing to claim above; b, outranked, yields to it. Following a at
    // once left the cluster agreed on a term below b's, which a fencing store had seen.
    const { sim, higher } = aBelowB();
    assert.notEqual(
      sim.runUntilTrue(() => !sim.node('b').core.master && sim.node('c').core.table.a !== undefined, 2 * TICK),
      null,
    );
    sim.heal();
    const healedAt = sim.now;
    let agreedLow: string | null = null;
    const agreed = sim.runUntilTrue(() => {
      if (sim.agreedMaster() === 'a' && sim.node('a').core.term <= higher)
        agreedLow ??= `at ${sim.now} ms with term ${sim.node('a').core.term}`;
      return sim.agreedMaster() === 'a' && sim.node('a').core.term > higher;
    }, TOCK);
    assert.equal(agreedLow, null, `agreed on a below b's term ${higher}`);
    assert.notEqual(agreed, null, "never agreed on a above b's term");
    // a claims above on the first heartbeat it hears from a server that names no master: a
    // round trip, not the tick it gives a higher term a rival's word may explain.
    assert.ok((agreed as number) - healedAt < TICK / 4, `agreed ${(agreed as number) - healedAt} ms after the heal`);
    assert.equal(slotOf(sim.node('a').core.term), termSlot('a'));
  });

  test('a claimant below the term of the master before it that never hears that term is followed after a tock and a tick: no livelock', () => {
    // The one-way cut stays: a hears nobody and never learns b's term. b and c wait for it to
    // claim above, then follow it as before rather than name no master for ever.
    const { sim } = aBelowB();
    const heard = sim.runUntilTrue(() => !sim.node('b').core.master, 2 * TICK);
    assert.notEqual(heard, null, 'b never yielded to a');
    assert.equal(sim.agreedMaster(), null, 'agreed at once on the lower term');
    const agreed = sim.runUntilTrue(() => sim.agreedMaster() === 'a', TOCK + TICK + 100);
    assert.notEqual(agreed, null, 'b and c never followed a claimant that cannot hear them');
    runWatchingForTwoMasters(sim, 2 * TOCK);
    assert.equal(sim.agreedMaster(), 'a');
  });

  test('a claim with no term (the original package) is followed at once, whatever term the master before it held', () => {
    const core = new ElectionCore({ hostname: 'b', ip: '127.0.0.2', instanceId: 'bbbbbbbbbbbbbbbb', tickMs: TICK, checkBeats: 3 });
    const at = (ms: number): Instant => ({ mono: ms, wall: ms });
    const from = (n: number) => ({ address: `127.0.0.${n}`, port: 3014 });
    const heartbeat = (hostname: string, master: boolean, extra: Partial<Message> = {}): Message =>
      ({ action: 'heartbeat', hostname, ip: '', master, eligible: true, uptime: 1, data: {}, ...extra }) as Message;
    core.start(at(0));
    core.receive(heartbeat('c', true, { term: 5 * 65536 + 7, iid: 'cccccccccccccccc', seq: 1 }), from(3), at(10));
    assert.equal(core.masterHostname, 'c');
    core.receive(heartbeat('c', false, { term: 5 * 65536 + 7, iid: 'cccccccccccccccc', seq: 2 }), from(3), at(20));
    core.receive(heartbeat('a', true), from(1), at(30));
    assert.equal(core.masterHostname, 'a', 'an original server that claims master is followed at once');
  });

  test('a flood of higher terms from servers that follow no master makes a master claim above at once, but once a tick at most', () => {
    // The claim at once is for a claimant whose followers wait for it; hostile senders raising
    // the term packet by packet must not make it claim (and log, and send) per packet.
    const core = new ElectionCore({ hostname: 'a', ip: '127.0.0.1', instanceId: 'aaaaaaaaaaaaaaaa', tickMs: TICK, checkBeats: 3 });
    const at = (ms: number): Instant => ({ mono: ms, wall: ms });
    let out = core.start(at(0));
    for (let i = 0; i < 20 && !core.master; i++) out = core.tick(at(out.wakeAt), 0);
    assert.equal(core.master, true);
    const start = out.wakeAt;
    const claims: number[] = [];
    let term = core.term;
    for (let i = 0; i < 400; i++) {
      const now = start + i * 10;
      term += 65536;
      const heartbeat: Message = {
        action: 'heartbeat',
        hostname: `z${i % 7}`,
        ip: '',
        master: false,
        eligible: false,
        uptime: 1,
        data: {},
        term,
        iid: `${'z'.repeat(15)}${i % 7}`,
        seq: i + 1,
      };
      const claimed = (output: Output, when: number): void => {
        if (output.logs.some((line) => line.message.startsWith('Claiming term'))) claims.push(when);
      };
      while (out.wakeAt <= now) {
        const when = out.wakeAt;
        out = core.tick(at(when), 0);
        claimed(out, when);
      }
      out = core.receive(heartbeat, { address: `127.0.0.${2 + (i % 7)}`, port: 3014 }, at(now));
      claimed(out, now);
    }
    assert.equal(core.master, true);
    assert.ok(claims.length >= 2, `claimed ${claims.length} times in 4 ticks of higher terms`);
    assert.equal(claims[0], start, 'the first higher term is claimed above at once');
    for (let i = 1; i < claims.length; i++)
      assert.ok((claims[i] as number) - (claims[i - 1] as number) >= TICK, `claims at ${claims.join(', ')}`);
  });

  test('the default cluster still sends the original packet (term only appears once there is one)', () => {
    const text = encode({ action: 'heartbeat', hostname: 'h', ip: '', master: false, eligible: true, uptime: 0, data: {} }).toString();
    assert.ok(!text.includes('term') && !text.includes('prio') && !text.includes('cid'));
    const back = decode(
      encode({
        action: 'heartbeat',
        hostname: 'h',
        ip: '',
        master: true,
        eligible: true,
        uptime: 0,
        data: {},
        term: 9,
        prio: 2,
        handoff: 'x',
        cid: 'blue',
      }),
    );
    assert.ok(back.ok);
    assert.deepEqual(back.message, {
      action: 'heartbeat',
      hostname: 'h',
      ip: '',
      master: true,
      eligible: true,
      uptime: 0,
      data: {},
      term: 9,
      prio: 2,
      handoff: 'x',
      cid: 'blue',
    });
  });
});

describe('priority', () => {
  test('the highest priority wins a cold start regardless of hostname; ties fall back to hostname order', () => {
    assert.equal(agree(cluster({ a: {}, b: { priority: 10 }, c: { priority: 10 }, d: {} })), 'b');
    assert.equal(agree(cluster({ a: { priority: -1 }, b: {}, c: {} })), 'b');
    assert.equal(agree(cluster({ a: {}, b: {}, c: {} })), 'a');
  });

  test('a crashed master is replaced by the highest-priority survivor', () => {
    const sim = cluster({ a: { priority: 5 }, b: {}, c: {}, d: { priority: 3 } });
    assert.equal(agree(sim), 'a');
    sim.crash('a');
    sim.runUntilTrue(() => sim.agreedMaster() === 'd', 2 * TOCK);
    assert.equal(sim.agreedMaster(), 'd');
  });

  test('a higher-priority joiner never takes over a running master', () => {
    const sim = cluster({ b: {}, c: {} });
    agree(sim);
    sim.add('z', { priority: 100 });
    sim.runFor(30 * TICK);
    assert.equal(sim.agreedMaster(), 'b');
    assert.equal(sim.eventsOf('master', 'z').length, 0);
  });

  test('a conflict is won by the higher priority', () => {
    const sim = cluster({ a: {}, b: {}, c: { priority: 1 }, d: {} });
    assert.equal(agree(sim), 'c');
    sim.partition([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    sim.runFor(3 * TOCK);
    assert.deepEqual(sim.masters().sort(), ['a', 'c']);
    sim.heal();
    sim.runUntilTrue(() => sim.agreedMaster() !== null, TOCK);
    assert.equal(sim.agreedMaster(), 'c');
  });
});

describe('quorum', () => {
  test('below quorum nobody is master; a lone server with quorum 2 never claims', () => {
    const sim = cluster({ a: { quorum: 2 } });
    sim.runFor(10 * TOCK);
    assert.equal(sim.masters().length, 0);
    sim.add('b', { quorum: 2 });
    assert.equal(agree(sim), 'a');
  });

  test('partitions of five with quorum 3: the minority side never has a master after one tock; after the heal one master within a tock', () => {
    const hosts = ['a', 'b', 'c', 'd', 'e'];
    for (let seed = 1; seed <= 30; seed++) {
      const random = new Random(seed);
      const sim = new SimCluster({ seed, tickMs: TICK, checkBeats: 3, latencyMs: LATENCY, jitterMs: 10 });
      for (const host of hosts) sim.add(host, { quorum: 3 });
      agree(sim);
      sim.runFor(random.int(0, 2 * TICK));
      const shuffled = [...hosts].sort(() => random.next() - 0.5);
      const minority = shuffled.slice(0, random.int(1, 2));
      const majority = shuffled.filter((h) => !minority.includes(h));
      sim.partition([minority, majority]);
      const partitionedAt = sim.now;
      sim.runFor(TOCK);
      const minorityMasters = (): string[] => minority.filter((h) => sim.node(h).core.master);
      assert.deepEqual(minorityMasters(), [], `seed ${seed}: minority ${minority} has a master one tock after the split`);
      // From here until the heal, the minority never regains a master.
      const regained = sim.runUntilTrue(() => minorityMasters().length > 0, 5 * TOCK);
      assert.equal(regained, null, `seed ${seed}: minority master at ${regained}`);
      const majorityMaster = majority.find((h) => sim.node(h).core.master);
      assert.ok(majorityMaster, `seed ${seed}: the majority ${majority} has no master ${sim.now - partitionedAt} ms after the split`);
      const healedAt = sim.now;
      sim.heal();
      const agreedAt = sim.runUntilTrue(() => sim.agreedMaster() !== null, 3 * TOCK);
      assert.notEqual(agreedAt, null, `seed ${seed}: no agreement after the heal`);
      assert.ok((agreedAt as number) - healedAt <= TOCK, `seed ${seed}: agreed ${(agreedAt as number) - healedAt} ms after the heal`);
      // The minority rejoins like joiners: the majority's master keeps the role, nobody else claims.
      assert.equal(sim.agreedMaster(), majorityMaster, `seed ${seed}: the heal moved the master`);
      assert.deepEqual(
        sim
          .eventsOf('master')
          .filter((e) => e.time >= healedAt)
          .map((e) => e.host),
        [],
        `seed ${seed}: claims after the heal`,
      );
    }
  });

  test('a majority quorum never lets the two sides of a partition have a master at the same instant, and failover stays within tock + tick', () => {
    const hosts = ['a', 'b', 'c', 'd', 'e'];
    for (let seed = 1; seed <= 40; seed++) {
      const random = new Random(seed);
      const sim = new SimCluster({ seed, tickMs: TICK, checkBeats: 3, latencyMs: LATENCY, jitterMs: 10 });
      // Starts spread over a tick, so heartbeat phases differ from server to server.
      for (const host of hosts) sim.add(host, { quorum: 3, at: random.int(0, TICK) });
      const master = agree(sim);
      sim.runFor(random.int(0, 2 * TICK));
      const others = hosts.filter((h) => h !== master).sort(() => random.next() - 0.5);
      const minority = [master, ...others.slice(0, random.int(0, 1))];
      const majority = hosts.filter((h) => !minority.includes(h));
      sim.partition([minority, majority]);
      const heardByMajority = Math.max(...majority.map((h) => sim.node(h).core.lastHeard(master) as number));
      runWatchingForTwoMasters(sim, 3 * TOCK);
      const elected = sim.eventsOf('master').find((e) => majority.includes(e.host) && e.time > heardByMajority);
      assert.ok(elected, `seed ${seed}: the majority elected nobody`);
      assert.ok(
        elected.time <= heardByMajority + TOCK + TICK + LATENCY + 10,
        `seed ${seed}: elected ${elected.time - heardByMajority} ms after the old master was last heard`,
      );
      sim.heal();
      runWatchingForTwoMasters(sim, 2 * TOCK);
      assert.equal(sim.agreedMaster(), elected.host, `seed ${seed}`);
    }
  });

  test('a server cut off from the others before its first tock ends does not claim on what it heard before the cut', () => {
    // a sorts first and would claim at the end of its listening tock; 1.5 ticks before
    // that, a partition leaves it alone. Its quorum of 2 was heard, but not recently.
    const sim = cluster({ a: { quorum: 2 }, b: { quorum: 2 }, c: { quorum: 2 } });
    sim.runFor(TICK + 5);
    sim.partition([['a'], ['b', 'c']]);
    runWatchingForTwoMasters(sim, 3 * TOCK);
    assert.deepEqual(
      sim.eventsOf('master').map((e) => e.host),
      ['b'],
    );
    assert.equal(sim.node('a').core.masterHostname, '');
  });

  test('after a partition that left no side a quorum, the healed cluster has a master within a tock', () => {
    const sim = cluster({ a: { quorum: 3 }, b: { quorum: 3 }, c: { quorum: 3 }, d: { quorum: 3 } });
    agree(sim);
    sim.partition([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    sim.runFor(2 * TOCK);
    assert.deepEqual(sim.masters(), []);
    const healedAt = sim.now;
    sim.heal();
    const agreedAt = sim.runUntilTrue(() => sim.agreedMaster() !== null, 3 * TOCK);
    assert.notEqual(agreedAt, null);
    // The first heartbeats after the heal (within a tick) restore the quorum; half a tick of
    // listening for a master follows, then a claims.
    assert.ok((agreedAt as number) - healedAt <= TOCK, `agreed ${(agreedAt as number) - healedAt} ms after the heal`);
    assert.equal(sim.agreedMaster(), 'a');
  });

  test('a master whose peers all die steps down within one tock of the last heartbeat it heard', () => {
    const sim = cluster({ a: { quorum: 2 }, b: { quorum: 2 }, c: { quorum: 2 } });
    agree(sim);
    sim.crash('b');
    sim.crash('c');
    sim.runFor(5);
    const lastHeard = Math.max(sim.node('a').core.lastHeard('b') as number, sim.node('a').core.lastHeard('c') as number);
    const downAt = sim.runUntilTrue(() => !sim.node('a').core.master, 2 * TOCK);
    assert.notEqual(downAt, null);
    assert.ok((downAt as number) <= lastHeard + TOCK, `stepped down ${(downAt as number) - lastHeard} ms after the last heartbeat`);
  });
});

describe('manual handoff', () => {
  test('stepDown hands the role to the next server in one round trip, term raised, never two masters', () => {
    const sim = cluster({ a: {}, b: {}, c: {}, d: {} });
    agree(sim);
    sim.runFor(500);
    const at = sim.now;
    sim.stepDown('a');
    runWatchingForTwoMasters(sim, 2 * LATENCY);
    assert.equal(sim.node('b').core.master, true);
    assert.ok(sim.now - at <= 2 * LATENCY);
    runWatchingForTwoMasters(sim, 10 * TICK);
    assert.equal(sim.agreedMaster(), 'b');
    assertTermsClaimed(sim, ['a', 'b']);
    const result = sim.eventsOf('stepdown', 'a').map((e) => e.event);
    assert.deepEqual(result, [{ type: 'stepdown', ok: true, hostname: 'b', reason: 'b is master' }]);
    assert.equal(sim.eventsOf('master', 'a').length, 1, 'a took the role back');
  });

  test('promote moves the role to any eligible server in one round trip, never two masters', () => {
    const sim = cluster({ a: {}, b: {}, c: {}, d: {} });
    agree(sim);
    sim.runFor(700);
    const at = sim.now;
    sim.promote('d');
    runWatchingForTwoMasters(sim, 3 * LATENCY);
    assert.equal(sim.node('d').core.master, true, 'd is not master after one round trip');
    assert.ok(sim.now - at <= 3 * LATENCY);
    runWatchingForTwoMasters(sim, 20 * TICK);
    assert.equal(sim.agreedMaster(), 'd');
    assertTermsClaimed(sim, ['a', 'd']);
    assert.deepEqual(
      sim.eventsOf('promote', 'd').map((e) => e.event),
      [{ type: 'promote', ok: true, reason: `master with term ${sim.node('d').core.term}` }],
    );
  });

  test("no server ever sees two masters during a handoff, even when the new master's claim overtakes the old one's notice", () => {
    for (let seed = 1; seed <= 40; seed++) {
      // Jitter far above the latency: a claim relayed through the new master often arrives first.
      const sim = new SimCluster({ seed, tickMs: TICK, checkBeats: 3, latencyMs: 0.1, jitterMs: 10 });
      for (const host of ['a', 'b', 'c', 'd', 'e']) sim.add(host);
      agree(sim);
      sim.runFor(500);
      if (seed % 2 === 0) sim.stepDown('a');
      else sim.promote('e');
      const seenTwo = (): boolean => sim.live().some((node) => Object.values(node.core.table).filter((record) => record.master).length > 1);
      const at = sim.runUntilTrue(seenTwo, 2 * TICK);
      assert.equal(at, null, `seed ${seed}: a server's table shows two masters at ${at} ms`);
      assert.equal(sim.agreedMaster(), seed % 2 === 0 ? 'b' : 'e', `seed ${seed}`);
    }
  });

  test('a slave follows the claim with the newest term; equal terms (old servers) still mean no master until they settle', () => {
    const sim = cluster({ a: {}, b: {} });
    agree(sim);
    const claim = (hostname: string, term?: number): void =>
      sim.injectMessage('b', {
        action: 'heartbeat',
        hostname,
        ip: '10.1.1.1',
        master: true,
        eligible: true,
        uptime: 1,
        data: {},
        ...(term === undefined ? {} : { term }),
      });
    const newer = sim.node('a').core.term + 1;
    claim('z', newer);
    sim.runFor(1);
    const b = sim.node('b').core;
    assert.equal(b.masterHostname, 'z');
    assert.equal(b.table.a?.master, false, 'the superseded claim still shows as master');
    assert.equal(b.table.z?.master, true);
    claim('y', newer);
    sim.runFor(1);
    assert.equal(b.masterHostname, '', 'two claims with one term: no master');
  });

  test('promote with no master claims at once; promote when ineligible or without quorum fails', () => {
    const sim = cluster({ a: { eligible: false }, b: { eligible: false } });
    sim.runFor(2 * TOCK);
    sim.promote('a');
    assert.deepEqual(
      sim.eventsOf('promote', 'a').map((e) => (e.event as { ok: boolean }).ok),
      [false],
    );
    sim.setEligible('b', true);
    assert.equal(agree(sim, TOCK), 'b');
    const q = cluster({ x: { quorum: 2 } });
    q.runFor(2 * TOCK);
    q.promote('x');
    assert.deepEqual(
      q.eventsOf('promote', 'x').map((e) => e.event),
      [{ type: 'promote', ok: false, reason: 'no quorum: fewer than 2 eligible servers visible' }],
    );
  });

  test('stepDown fails when nobody can take over, or when the target dies first; the election resumes', () => {
    const alone = cluster({ a: {} });
    agree(alone);
    alone.stepDown('a');
    assert.equal((alone.eventsOf('stepdown', 'a')[0]?.event as { ok: boolean }).ok, false);
    assert.equal(alone.node('a').core.master, true);

    const sim = cluster({ a: {}, b: {}, c: {} });
    agree(sim);
    sim.link = (from, to) => !(to === 'b' && from === 'a'); // b never hears the handoff
    sim.stepDown('a');
    sim.crash('b');
    sim.runFor(2 * TOCK);
    sim.link = () => true;
    const failed = sim.eventsOf('stepdown', 'a').map((e) => e.event as { ok: boolean; reason: string });
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.ok, false);
    assert.notEqual(agree(sim), null);
  });
});

describe('cluster_id namespaces', () => {
  test('two clusters on one port ignore each other and each elects its own master', () => {
    const sim = cluster({
      a: { clusterId: 'blue' },
      b: { clusterId: 'blue' },
      c: { clusterId: 'green' },
      d: { clusterId: 'green' },
      e: {},
    });
    sim.runFor(3 * TOCK);
    assert.deepEqual(sim.masters().sort(), ['a', 'c', 'e']);
    assert.deepEqual(Object.keys(sim.node('a').core.table).sort(), ['a', 'b']);
    assert.deepEqual(Object.keys(sim.node('d').core.table).sort(), ['c', 'd']);
    assert.deepEqual(Object.keys(sim.node('e').core.table), ['e']);
  });
});

describe('stall awareness', () => {
  test('a slave whose event loop stalled for two tocks reads the queued packets before judging anyone', () => {
    const sim = cluster({ a: {}, b: {}, c: {} });
    agree(sim);
    sim.runFor(300);
    const stalledAt = sim.now;
    sim.stall('c', 2 * TOCK);
    sim.runFor(2 * TOCK + TICK);
    const churn = sim.events.filter(
      (e) => e.host === 'c' && e.time > stalledAt && (e.event.type === 'deleteserver' || e.event.type === 'addserver'),
    );
    assert.deepEqual(
      churn.map((e) => `${e.event.type}`),
      [],
      'c removed live peers on waking',
    );
    assert.equal(sim.node('c').core.masterHostname, 'a');
    assert.equal(agree(sim, TOCK), 'a');
  });

  test('a master stalled past the dead-server timeout is replaced and, on waking, yields instead of fighting', () => {
    const sim = cluster({ a: {}, b: {}, c: {} });
    agree(sim);
    const stalledAt = sim.now;
    sim.stall('a', 2 * TOCK);
    sim.runFor(2 * TOCK - 1);
    assert.equal(sim.node('b').core.master, true, 'b did not take over from the stalled master');
    // While paused, a's memory still says master (nothing can run to change it); from the
    // instant it wakes there must never be two.
    sim.runUntil(stalledAt + 2 * TOCK);
    runWatchingForTwoMasters(sim, 3 * TOCK);
    assert.equal(sim.agreedMaster(), 'b');
    assert.deepEqual(
      sim
        .eventsOf('master')
        .filter((e) => e.time > stalledAt)
        .map((e) => e.host),
      ['b'],
    );
    assert.equal(sim.eventsOf('conflict').length, 0);
  });

  test('a server woken late reads its own marker as the end of the drain, not as a new stall, however long its overdue timer waits (no hello storm)', () => {
    // The overdue timer of a woken process may fire after datagrams already read (a busy loop,
    // a lost timer): every one of them, our marker's echo above all, must not start a new drain.
    const core = new ElectionCore({ hostname: 'a', ip: '127.0.0.1', instanceId: 'aaaaaaaaaaaaaaaa', tickMs: TICK, checkBeats: 3 });
    const at = (ms: number): Instant => ({ mono: ms, wall: ms });
    const hellosOf = (out: Output): Message[] =>
      out.send.map((o) => o.message).filter((m) => m.action === 'hello' && m.iid === 'aaaaaaaaaaaaaaaa');
    let out = core.start(at(0));
    for (let i = 0; i < 20 && !core.master; i++) out = core.tick(at(out.wakeAt), 0);
    assert.equal(core.master, true);
    const woke = out.wakeAt + 5 * TOCK;
    const peer = { address: '127.0.0.2', port: 3014 };
    out = core.receive({ action: 'hello', hostname: 'b', iid: 'bbbbbbbbbbbbbbbb', seq: 1 }, peer, at(woke));
    const markers = hellosOf(out);
    assert.equal(markers.length, 1, 'the stall is noticed once, with one marker');
    assert.ok(out.wakeAt <= woke, 'the held-back heartbeat is due at once');
    for (let i = 0; i < 3; i++) {
      out = core.receive(markers[0] as Message, { address: '127.0.0.1', port: 3014 }, at(woke + i * 0.1));
      assert.deepEqual(hellosOf(out), [], `echo ${i + 1} read before the overdue timer sent another marker`);
    }
    out = core.receive({ action: 'hello', hostname: 'b', iid: 'bbbbbbbbbbbbbbbb', seq: 2 }, peer, at(woke + 1));
    assert.deepEqual(hellosOf(out), [], 'a peer read before the overdue timer started another drain');
    out = core.tick(at(woke + 1), 1);
    assert.ok(
      out.send.some((o) => o.message.action === 'heartbeat'),
      'the overdue timer sends the held-back heartbeat',
    );
    assert.deepEqual(hellosOf(out), []);
  });

  test('a lone master that stalled takes its role back on waking, once the answers to its hello had time to come', () => {
    const sim = cluster({ a: {} });
    agree(sim);
    const term = sim.node('a').core.term;
    sim.stall('a', 3 * TOCK);
    sim.runFor(3 * TOCK + 10);
    assert.equal(sim.node('a').core.master, false, 'claimed before anyone could answer');
    sim.runFor(TICK / 2);
    assert.equal(sim.node('a').core.master, true);
    assert.equal(sim.node('a').core.term, nextTerm(term, termSlot('a')), 'a new term: it stepped down on waking');
  });
});
