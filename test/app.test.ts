/**
 * Application features: work split by key (rendezvous hashing), messages between
 * servers, and the master's checkpoint handed to the next master.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ownerOf, weight } from '../src/app/rendezvous';
import { SimCluster } from '../sim/cluster';
import type { CoreEvent } from '../src/elector/types';
import { nextTerm, termSlot } from '../src/protocol/terms';

const TICK = 1000;
const TOCK = 3000;
const KEYS = Array.from({ length: 1000 }, (_, i) => `job-${i}`);

function owners(servers: string[]): Map<string, string> {
  return new Map(KEYS.map((key) => [key, ownerOf(key, servers) as string]));
}

function settled(hosts: string[]): SimCluster {
  const sim = new SimCluster({ tickMs: TICK, checkBeats: 3, latencyMs: 1 });
  for (const host of hosts) sim.add(host);
  assert.notEqual(
    sim.runUntilTrue(() => sim.agreedMaster() !== null, 5 * TOCK),
    null,
  );
  return sim;
}

describe('work split by key (rendezvous hashing)', () => {
  test('1000 keys spread evenly over 5 servers, whatever order the list is in', () => {
    const servers = ['web1', 'web2', 'web3', 'web4', 'web5'];
    const counts = new Map<string, number>();
    for (const owner of owners(servers).values()) counts.set(owner, (counts.get(owner) ?? 0) + 1);
    assert.deepEqual([...counts.keys()].sort(), servers);
    for (const [server, count] of counts) assert.ok(count >= 150 && count <= 250, `${server} owns ${count} of 1000`);
    const reversed = owners([...servers].reverse());
    for (const key of KEYS) assert.equal(reversed.get(key), ownerOf(key, servers));
  });

  test('a server joining takes only its share: every key that moves, moves to it', () => {
    const before = owners(['a', 'b', 'c', 'd', 'e']);
    const after = owners(['a', 'b', 'c', 'd', 'e', 'f']);
    const moved = KEYS.filter((key) => before.get(key) !== after.get(key));
    for (const key of moved) assert.equal(after.get(key), 'f');
    assert.ok(moved.length >= 1000 / 6 - 50 && moved.length <= 1000 / 6 + 50, `${moved.length} keys moved`);
  });

  test('a server leaving gives up only its own keys', () => {
    const before = owners(['a', 'b', 'c', 'd', 'e']);
    const after = owners(['a', 'b', 'd', 'e']);
    for (const key of KEYS) {
      if (before.get(key) !== 'c') assert.equal(after.get(key), before.get(key), key);
      else assert.notEqual(after.get(key), 'c');
    }
  });

  test('no servers, no owner; weights are stable values, not per-process randomness', () => {
    assert.equal(ownerOf('x', []), null);
    assert.equal(weight('job-1', 'web1'), weight('job-1', 'web1'));
    assert.notEqual(weight('ab', 'c'), weight('a', 'bc'));
    // FNV-1a + murmur3 fmix32 of "web1\0job-1", computed independently (Python). A change
    // here would split keys two ways during a rolling upgrade.
    assert.equal(weight('job-1', 'web1'), 3368887110);
  });

  test('every server of a live cluster computes the same assignment, and it follows a crash', () => {
    const sim = settled(['a', 'b', 'c', 'd']);
    const membersOf = (host: string): string[] => {
      const events = sim.eventsOf('members', host);
      return (events[events.length - 1]?.event as Extract<CoreEvent, { type: 'members' }>).members;
    };
    for (const host of ['a', 'b', 'c', 'd']) assert.deepEqual(membersOf(host), ['a', 'b', 'c', 'd']);
    sim.crash('c');
    sim.runFor(2 * TOCK);
    for (const host of ['a', 'b', 'd']) assert.deepEqual(membersOf(host), ['a', 'b', 'd']);
    sim.setEligible('d', false);
    sim.runFor(10);
    for (const host of ['a', 'b', 'd']) assert.deepEqual(membersOf(host), ['a', 'b']);
  });
});

describe('messages between servers', () => {
  const messagesAt = (sim: SimCluster, host: string): Array<Extract<CoreEvent, { type: 'message' }>> =>
    sim.eventsOf('message', host).map((e) => e.event as Extract<CoreEvent, { type: 'message' }>);

  test('to one server, to everyone else, exactly once each', () => {
    const sim = settled(['a', 'b', 'c']);
    sim.sendMessage('b', 'a', 'job.done', { id: 7 });
    sim.sendMessage('c', '*', 'cache.flush', ['users']);
    sim.runFor(10);
    assert.deepEqual(
      messagesAt(sim, 'a').map((m) => [m.from, m.messageType, m.payload]),
      [
        ['b', 'job.done', { id: 7 }],
        ['c', 'cache.flush', ['users']],
      ],
    );
    assert.deepEqual(
      messagesAt(sim, 'b').map((m) => m.messageType),
      ['cache.flush'],
    );
    assert.deepEqual(
      messagesAt(sim, 'c').map((m) => m.messageType),
      [],
      'the sender got its own broadcast',
    );
  });

  test("a message to one server is one datagram, to that server's address; to everyone, one to each", () => {
    const sim = settled(['a', 'b', 'c']);
    const seen: string[] = [];
    sim.onDatagram = (from, datagram) => {
      if (datagram.toString().includes('"action":"message"')) seen.push(from);
    };
    const before = sim.datagrams;
    sim.sendMessage('b', 'a', 'job.done', { id: 7 });
    assert.equal(sim.datagrams - before, 1, 'a message to one server went to others too');
    const middle = sim.datagrams;
    sim.sendMessage('c', '*', 'cache.flush', ['users']);
    assert.equal(sim.datagrams - middle, 3, 'every server (the sender included, as broadcast loops back)');
    assert.deepEqual(seen, ['b', 'c']);
  });

  test('a replayed copy is dropped, and strangers cannot talk to the app', () => {
    const sim = settled(['a', 'b']);
    const a = sim.node('a');
    const b = sim.node('b');
    const out = b.core.sendMessage('a', 'ping', 1, { mono: sim.now, wall: 0 });
    const message = out.send[0]?.message;
    assert.ok(message);
    const from = { address: '10.0.0.2', port: 3014 };
    const first = a.core.receive(message, from, { mono: sim.now, wall: 0 });
    const replay = a.core.receive(message, from, { mono: sim.now + 1, wall: 0 });
    assert.equal(first.events.filter((e) => e.type === 'message').length, 1);
    assert.equal(replay.events.filter((e) => e.type === 'message').length, 0);
    const stranger = a.core.receive({ action: 'message', hostname: 'mallory', to: 'a', type: 'ping', payload: 1 }, from, {
      mono: sim.now,
      wall: 0,
    });
    assert.equal(stranger.events.filter((e) => e.type === 'message').length, 0);
  });
});

describe('state handoff (checkpoint)', () => {
  const masterEvents = (sim: SimCluster): Array<Extract<CoreEvent, { type: 'master' }> & { host: string }> =>
    sim.eventsOf('master').map((e) => ({ ...(e.event as Extract<CoreEvent, { type: 'master' }>), host: e.host }));

  test('after a crash, the next master receives the last checkpoint with its master event', () => {
    const sim = settled(['a', 'b', 'c']);
    assert.equal(sim.setCheckpoint('b', { next: 1 }), false, 'a slave published a checkpoint');
    for (let n = 1; n <= 5; n++) {
      assert.equal(sim.setCheckpoint('a', { next: n }), true);
      sim.runFor(300);
    }
    assert.deepEqual(sim.node('c').core.checkpoint, { next: 5 });
    sim.crash('a');
    sim.runUntilTrue(() => sim.agreedMaster() === 'b', 2 * TOCK);
    const events = masterEvents(sim);
    assert.deepEqual(
      events.map((e) => [e.host, e.checkpoint]),
      [
        ['a', null],
        ['b', { next: 5 }],
      ],
    );
  });

  test('a graceful handoff carries the checkpoint even if it was set just before', () => {
    const sim = settled(['a', 'b', 'c']);
    sim.setCheckpoint('a', { cursor: 'x' });
    sim.setCheckpoint('a', { cursor: 'y' });
    const term = sim.node('a').core.term;
    sim.stepDown('a');
    sim.runFor(10);
    const events = masterEvents(sim);
    assert.deepEqual(events[events.length - 1], {
      type: 'master',
      term: nextTerm(term, termSlot('b')),
      checkpoint: { cursor: 'y' },
      host: 'b',
    });
    // The new master republishes: its own checkpoints supersede the old master's.
    sim.setCheckpoint('b', { cursor: 'z' });
    sim.runFor(10);
    assert.deepEqual(sim.node('a').core.checkpoint, { cursor: 'z' });
  });
});
