/**
 * The UDP core's modules one at a time (src/core/: timing.ts, slots.ts, announce.ts,
 * quorum.ts, instances.ts, freshness.ts, handoff.ts, relays.ts and words.ts), each built with its options and driven
 * by explicit instants, as raft's tests drive one node: feed it heartbeats and times, read
 * what it sends, logs and wakes for. The rules are those of SPEC 4.6 (dead after a tock and a
 * grace), 4.11 (stalls), 4.12 (the heartbeat grid and pacing), 7.4 (term slots), 8.1–8.3
 * (quorum and the silent master's lease), 4.13 (partial connectivity), 9.1–9.4 (handoffs), 12 (duplicate hostnames) and
 * 13.2–13.5 (authentication, stale packets, bounded memory); the whole core under the same
 * rules is core.election.test.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Announcer } from '../src/core/announce';
import { FreshnessGuard } from '../src/core/freshness';
import { Handoffs } from '../src/core/handoff';
import { Instances, outranks } from '../src/core/instances';
import { MAX_PACE_UP, MemberTable } from '../src/core/members';
import { Quorum } from '../src/core/quorum';
import { MAX_HOPS, Relays } from '../src/core/relays';
import { Words } from '../src/core/words';
import { TermSlots } from '../src/core/slots';
import { Step } from '../src/core/step';
import { DEADLINE_GRACE_TICKS, GRACE_FLOOR_MS, GRACE_PER_LATE_MS, Timing } from '../src/core/timing';
import type { Instant, Output } from '../src/elector/types';
import type { Address, HeartbeatMessage } from '../src/protocol/messages';
import { MAX_ECHOES } from '../src/protocol/limits';
import { SLOT_CANDIDATES, termSlot } from '../src/protocol/terms';

const TICK = 1000;
const at = (mono: number): Instant => ({ mono, wall: 1_700_000_000_000 + mono });
const FROM: Address = { address: '127.0.0.2', port: 3012 };

function heartbeat(hostname: string, fields: Partial<HeartbeatMessage> = {}): HeartbeatMessage {
  return { action: 'heartbeat', hostname, ip: '127.0.0.2', master: false, eligible: true, uptime: 0, data: {}, ...fields };
}

describe('timing (SPEC 4.6, 4.11): the spans every rule is measured in', () => {
  test('a peer is dead a tock and a grace after it was heard; the grace is the floor on a quiet machine', () => {
    const timing = new Timing({ tickMs: TICK, checkBeats: 3 });
    assert.equal(timing.tockMs, 3000);
    assert.equal(timing.deadAfterMs, 3000 + GRACE_FLOOR_MS);
  });

  test('the grace grows with our own lateness, up to a quarter tick, and decays by half every max(10 s, tock)', () => {
    const timing = new Timing({ tickMs: TICK, checkBeats: 3 });
    timing.noteLateness(40, 0);
    assert.equal(timing.deadAfterMs, 3000 + GRACE_FLOOR_MS + GRACE_PER_LATE_MS * 40);
    timing.noteLateness(10_000, 1);
    assert.equal(timing.deadAfterMs, 3000 + TICK * DEADLINE_GRACE_TICKS, 'at most a quarter tick');
    const lower = timing.noteLateness(0, 10_001);
    assert.equal(lower, true, 'a lower grace is reported: deadlines moved earlier');
    assert.equal(timing.latePeakMs, 5000);
  });

  test("a peer's late heartbeat raises the grace too, never lowers it", () => {
    const timing = new Timing({ tickMs: TICK, checkBeats: 3 });
    timing.notePeerLateness(30);
    timing.notePeerLateness(5);
    assert.equal(timing.latePeakMs, 30);
  });

  test('check_beats 1: every heartbeat falls on the deadline, so the grace stays a quarter tick', () => {
    const timing = new Timing({ tickMs: TICK, checkBeats: 1 });
    assert.equal(timing.deadAfterMs, TICK * (1 + DEADLINE_GRACE_TICKS));
    assert.equal(timing.stallAfterMs, TICK * DEADLINE_GRACE_TICKS, 'a stall is a quarter tick late');
    assert.equal(timing.quorumWindowMs, TICK * (1 + DEADLINE_GRACE_TICKS));
  });

  test('a stall is a timer more than a tick late; answers are a quarter tick apart, at most 250 ms', () => {
    const timing = new Timing({ tickMs: TICK, checkBeats: 3 });
    assert.equal(timing.stallAfterMs, TICK);
    assert.equal(timing.holdoffMs, 250);
    assert.equal(new Timing({ tickMs: 100, checkBeats: 3 }).holdoffMs, 25);
    assert.equal(new Timing({ tickMs: 5000, checkBeats: 3 }).holdoffMs, 250, 'a slow tick still answers a joiner within 250 ms');
    assert.equal(timing.quorumWindowMs, 3000);
  });

  test('the least any peer waits for a silent master: a tock and the floor, whatever our own lateness', () => {
    const timing = new Timing({ tickMs: TICK, checkBeats: 3 });
    timing.noteLateness(300, 0);
    assert.equal(timing.leastPeerWaitMs, 3000 + GRACE_FLOOR_MS);
  });
});

describe('term slots (SPEC 7.4): a server claims terms only in its own slot, moved off any server it heard of', () => {
  /** A hostname whose first slot is `slot` (a search over made-up names). */
  function namedInto(slot: number): string {
    for (let i = 0; i < 10_000_000; i++) if (termSlot(`h${i}`) === slot) return `h${i}`;
    throw new Error(`no name hashes to ${slot}`);
  }

  test("the hostname's first candidate while nobody heard of shares it", () => {
    const slots = new TermSlots('alpha');
    assert.equal(slots.slot, termSlot('alpha', 0));
    slots.note('alpha');
    assert.equal(slots.slot, termSlot('alpha', 0), 'our own name does not move us');
  });

  test('a server heard of in our slot moves us to the next candidate, for good', () => {
    const slots = new TermSlots('alpha');
    const rival = namedInto(termSlot('alpha', 0));
    slots.note('bravo');
    assert.equal(slots.slot, termSlot('alpha', 0));
    slots.note(rival);
    assert.equal(slots.slot, termSlot('alpha', 1));
    slots.note('charlie');
    assert.equal(slots.slot, termSlot('alpha', 1), 'remembered: a partition that drops the rival does not bring the slot back');
  });

  test('every candidate taken: the last one is used', () => {
    const slots = new TermSlots('alpha');
    for (let k = 0; k < SLOT_CANDIDATES; k++) slots.note(namedInto(termSlot('alpha', k)));
    assert.equal(slots.slot, termSlot('alpha', SLOT_CANDIDATES - 1));
  });
});

describe('announce (SPEC 4.11, 4.12): heartbeats on a grid, pacing, hellos, coalesced answers, stalls', () => {
  function announcer(fastestPeerTick: () => number = () => Infinity, timing = new Timing({ tickMs: TICK, checkBeats: 3 })) {
    const step = new Step();
    const beats: number[] = [];
    const a = new Announcer(
      { hostname: 'alpha', instanceId: 'a1', clusterId: '' },
      timing,
      step,
      null,
      // As the facade does: the heartbeat it sends answers every pending hello.
      (now) => {
        beats.push(now.mono);
        a.heartbeatSent(now);
      },
      fastestPeerTick,
    );
    const take = (): Output => step.take(a.nextDeadline(at(0)));
    return { a, beats, step, take, timing };
  }

  test('heartbeats stay on a fixed grid when the timer fires a little late: no heartbeat is lost to lateness', () => {
    const { a, beats } = announcer();
    a.nextHeartbeatAt = 1000;
    for (const now of [1040, 2030, 3090, 4000]) a.tick(at(now));
    assert.deepEqual(beats, [1040, 2030, 3090, 4000]);
    assert.equal(a.nextHeartbeatAt, 5000);
    a.tick(at(4500));
    assert.equal(beats.length, 4, 'nothing due between two points of the grid');
  });

  test('after a stall, a new grid from now: one heartbeat, not a burst of those missed', () => {
    const { a, beats } = announcer();
    a.nextHeartbeatAt = 1000;
    a.tick(at(7300));
    assert.deepEqual(beats, [7300]);
    assert.equal(a.nextHeartbeatAt, 8300);
  });

  test(`a faster peer sets our pace, at most ${MAX_PACE_UP} times our rate and never below 10 ms`, () => {
    let fastest = Infinity;
    const { a } = announcer(() => fastest);
    assert.equal(a.intervalMs(at(0)), TICK);
    fastest = 250;
    assert.equal(a.intervalMs(at(0)), 250);
    fastest = 1;
    assert.equal(a.intervalMs(at(0)), TICK / MAX_PACE_UP);
    fastest = 5000;
    assert.equal(a.intervalMs(at(0)), TICK, 'a slower peer changes nothing');
    const small = announcer(() => 1, new Timing({ tickMs: 100, checkBeats: 3 }));
    assert.equal(small.a.intervalMs(at(0)), 10);
  });

  test('repace brings the next heartbeat in to a faster pace, never pushes it out', () => {
    let fastest = Infinity;
    const { a } = announcer(() => fastest);
    a.nextHeartbeatAt = 900;
    fastest = 200;
    a.repace(at(100));
    assert.equal(a.nextHeartbeatAt, 300);
    fastest = Infinity;
    a.repace(at(200));
    assert.equal(a.nextHeartbeatAt, 300);
  });

  test('a flood of hellos is answered at once, then once at the end of each holdoff (a trickle, not a flood)', () => {
    const { a, beats, timing } = announcer();
    for (let t = 0; t < 100; t++) a.answerSoon(at(t));
    assert.deepEqual(beats, [0], 'the first at once');
    assert.equal(a.nextDeadline(at(100)), timing.holdoffMs, 'the rest coalesced at the end of the holdoff');
    a.tick(at(timing.holdoffMs));
    assert.deepEqual(beats, [0, timing.holdoffMs]);
    a.tick(at(timing.holdoffMs + 1));
    assert.equal(beats.length, 2);
  });

  test('a heartbeat of the grid answers every pending hello', () => {
    const { a, beats } = announcer();
    a.answerSoon(at(0));
    a.answerSoon(at(10));
    a.heartbeatSent(at(20));
    assert.equal(a.nextDeadline(at(20)), Infinity);
    a.tick(at(1000));
    assert.deepEqual(beats, [0]);
  });

  test('a hello asks who is there, with a sequence number of its own; our cluster id travels on what we send', () => {
    const step = new Step();
    const a = new Announcer(
      { hostname: 'alpha', instanceId: 'a1', clusterId: 'blue' },
      new Timing({ tickMs: TICK, checkBeats: 3 }),
      step,
      null,
      () => {},
    );
    const first = a.askWhoIsThere(at(0));
    const second = a.askWhoIsThere(at(1));
    assert.equal(second, first + 1);
    const out = step.take(Infinity);
    assert.deepEqual(out.send[0], { message: { action: 'hello', hostname: 'alpha', iid: 'a1', seq: first, cid: 'blue' } });
  });

  test('a timer more than a tick late is a stall: logged once per kind, a marker to ourselves, no decision until it is back', () => {
    const { a, take } = announcer();
    a.requested(1000, at(0));
    assert.equal(a.checkStall(at(2000)), 0, 'exactly a tick late is not a stall');
    a.requested(1000, at(0));
    const late = a.checkStall(at(2500));
    assert.equal(late, 1500);
    assert.equal(a.draining(at(2500)), true);
    const out = take();
    assert.equal(out.logs.length, 1);
    assert.equal(out.logs[0]?.kind, 'stall', 'rate-limited by the driver: a flood of stalls is one line a minute');
    const marker = out.send[0];
    assert.equal(marker?.loopback, true, 'the marker must come back to our own socket');
    assert.equal(marker?.message.action, 'hello');
    assert.equal(a.ownEcho((marker?.message as { seq: number }).seq - 1), false, 'another of our datagrams does not end the drain');
    assert.equal(a.ownEcho((marker?.message as { seq: number }).seq), true);
    assert.equal(a.draining(at(2501)), false, 'everything queued before the marker has been read');
  });

  test('a marker lost on the way: the drain ends by itself a tick after the stall', () => {
    const { a } = announcer();
    a.requested(1000, at(0));
    a.checkStall(at(5000));
    assert.equal(a.draining(at(5999)), true);
    assert.equal(a.nextDeadline(at(5999)), 6000);
    assert.equal(a.draining(at(6000)), false);
  });

  test('a wake-up time already past counts lateness from now: datagrams read before the timer fires are no new stall', () => {
    const { a } = announcer();
    a.requested(500, at(3000));
    assert.equal(a.checkStall(at(3900)), 0);
  });

  test('before removing a peer on a late timer: a quiet drain, a holdoff long, one marker at a time', () => {
    const { a, take, timing } = announcer();
    a.quietDrain(at(100));
    a.quietDrain(at(110));
    const out = take();
    assert.equal(out.send.length, 1);
    assert.equal((out.send[0]?.message as { for?: string }).for, 'a1', 'a hello for our own instance: nobody answers it');
    assert.equal(a.draining(at(100 + timing.holdoffMs - 1)), true);
    assert.equal(a.draining(at(100 + timing.holdoffMs)), false);
  });
});

describe('quorum (SPEC 8.1–8.3)', () => {
  function table(size: number) {
    const timing = new Timing({ tickMs: TICK, checkBeats: 3 });
    const members = new MemberTable(timing, new Step(), 64, new Relays());
    const quorum = new Quorum(size, members);
    const hear = (hostname: string, mono: number, fields: Partial<HeartbeatMessage> = {}): void => {
      const peer = members.get(hostname);
      const message = heartbeat(hostname, { iid: hostname, ...fields });
      if (peer) members.follow(peer, message, FROM.address, mono, at(mono));
      else members.add(message, FROM.address, at(mono));
    };
    return { timing, members, quorum, hear };
  }

  test('off (0): always held, never a lease, nothing to wake for', () => {
    const { quorum } = table(0);
    assert.equal(quorum.has(at(0), false), true);
    assert.equal(quorum.leaseHeld(at(0)), false);
    assert.equal(quorum.nextDeadline(at(0)), Infinity);
  });

  test('counts eligible servers heard within the last tock, self included when eligible', () => {
    const { quorum, hear } = table(3);
    hear('bravo', 0);
    hear('charlie', 0, { eligible: false });
    assert.equal(quorum.has(at(100), true), false, 'an ineligible server does not count');
    hear('delta', 0);
    assert.equal(quorum.has(at(100), true), true);
    assert.equal(quorum.has(at(100), false), false, 'we do not count ourselves when ineligible');
    assert.equal(quorum.has(at(2999), true), true);
    assert.equal(quorum.has(at(3000), true), false, 'a tock after they were heard they no longer count');
    assert.equal(quorum.nextDeadline(at(100)), 3000);
  });

  test('a claim needs the quorum heard within the last tick and a half: servers cut off with the master do not count', () => {
    const { quorum, hear } = table(2);
    hear('bravo', 0);
    assert.equal(quorum.has(at(1499), true, true), true);
    assert.equal(quorum.has(at(1500), true, true), false);
    assert.equal(quorum.has(at(1500), true), true, 'enough to stay master, not to claim');
  });

  test('regaining the quorum is reported once (the minority side asks who is there before claiming)', () => {
    const { quorum, hear } = table(2);
    assert.equal(quorum.track(at(0), true), false, 'below');
    hear('bravo', 10);
    assert.equal(quorum.track(at(10), true), true, 'regained');
    assert.equal(quorum.track(at(20), true), false, 'held: nothing new');
  });

  test('a master that fell silent holds a lease of a tock and a tick after it was last heard: nobody claims before', () => {
    const { quorum, hear, members } = table(2);
    hear('bravo', 500, { master: true });
    const bravo = members.get('bravo');
    assert.ok(bravo);
    quorum.masterFellSilent(bravo);
    assert.equal(quorum.leaseHeld(at(4499)), true);
    assert.equal(quorum.leaseHeld(at(4500)), false);
    assert.equal(quorum.nextDeadline(at(4000)), 4500);
  });
});

describe('instances (SPEC 12, 13.3): restarts, duplicate hostnames, stale and late packets', () => {
  function world(authenticated = false) {
    const timing = new Timing({ tickMs: TICK, checkBeats: 3 });
    const step = new Step();
    const members = new MemberTable(timing, step, 64, new Relays());
    const instances = new Instances({ hostname: 'alpha', instanceId: 'a-self', ip: '127.0.0.1', authenticated }, timing, step, members);
    instances.startedAt = 0;
    return { timing, step, members, instances };
  }

  test('the keeper of a duplicated name: the one claiming master, else the lower instance id; an original server (no id) wins a tie', () => {
    assert.equal(outranks(true, 'zz', false, 'aa'), true);
    assert.equal(outranks(false, 'aa', true, 'zz'), false);
    assert.equal(outranks(false, 'aa', false, 'bb'), true);
    assert.equal(outranks(false, '', false, '0000'), true);
    assert.equal(outranks(false, 'bb', false, 'aa'), false);
  });

  test('a packet of the instance followed, numbered at or below the last heard, is stale; another instance is not', () => {
    const { members, instances } = world();
    const peer = members.add(heartbeat('bravo', { iid: 'b1', seq: 10 }), FROM.address, at(0));
    assert.equal(instances.isStale(peer, heartbeat('bravo', { iid: 'b1', seq: 10 }), at(5)), true);
    assert.equal(instances.isStale(peer, heartbeat('bravo', { iid: 'b1', seq: 9 }), at(5)), true);
    assert.equal(instances.isStale(peer, heartbeat('bravo', { iid: 'b1', seq: 11 }), at(5)), false);
    assert.equal(instances.isStale(peer, heartbeat('bravo', { iid: 'b2', seq: 1 }), at(5)), false, 'a new process counts afresh');
    assert.equal(instances.isStale(peer, heartbeat('bravo', {}), at(5)), false, 'an original server sends no numbers');
  });

  test('a new instance is a restart: followed at once, logged', () => {
    const { members, instances, step } = world();
    const peer = members.add(heartbeat('bravo', { iid: 'b1', seq: 10 }), FROM.address, at(0));
    assert.equal(instances.switchInstance(peer, heartbeat('bravo', { iid: 'b2', seq: 1 }), FROM, at(1000)), true);
    const out = step.take(Infinity);
    assert.ok(out.logs.some((line) => line.message === 'Server bravo restarted (new instance)'));
    assert.equal(out.events.length, 0);
  });

  test("the previous process's last packet, overtaken in flight by the new one's first, is dropped as stale", () => {
    const { members, instances, step, timing } = world();
    const peer = members.add(heartbeat('bravo', { iid: 'b1', seq: 10 }), FROM.address, at(0));
    instances.switchInstance(peer, heartbeat('bravo', { iid: 'b2', seq: 1 }), FROM, at(1000));
    members.follow(peer, heartbeat('bravo', { iid: 'b2', seq: 1 }), FROM.address, 1000, at(1000));
    peer.iid = 'b2';
    step.take(Infinity);
    assert.equal(instances.switchInstance(peer, heartbeat('bravo', { iid: 'b1', seq: 11 }), FROM, at(1000 + timing.holdoffMs - 1)), false);
    assert.equal(step.take(Infinity).dropped, 'stale');
  });

  test('another process with our hostname: without a secret, one packet proves nothing; two do, and we yield to a master', () => {
    const { instances, step, timing } = world();
    const namesake = heartbeat('alpha', { iid: 'a-other', master: true, pid: 42 });
    instances.receiveOwnHostname(namesake, FROM, at(timing.holdoffMs), false);
    assert.equal(instances.yieldsName(at(timing.holdoffMs), false), false, 'a single (maybe forged) packet');
    assert.deepEqual(step.take(Infinity).events, []);
    instances.receiveOwnHostname(namesake, FROM, at(timing.holdoffMs + 100), false);
    assert.equal(instances.yieldsName(at(timing.holdoffMs + 100), false), true);
    const [event] = step.take(Infinity).events;
    assert.equal(event?.type, 'duplicate');
    if (event?.type !== 'duplicate') return;
    assert.equal(event.self, true);
    assert.deepEqual(event.keeper, { iid: 'a-other', address: FROM.address, pid: 42 });
    assert.equal(event.yielder.self, true);
  });

  test('a namesake silent for a tock and a grace is forgotten: we may claim again', () => {
    const { instances, timing } = world(true);
    instances.receiveOwnHostname(heartbeat('alpha', { iid: 'a-other', master: true }), FROM, at(0), false);
    assert.equal(instances.yieldsName(at(0), false), true, 'authenticated: one admitted packet is proof');
    assert.equal(instances.nextDeadline(at(0)), timing.deadAfterMs);
    assert.equal(instances.yieldsName(at(timing.deadAfterMs), false), false);
  });

  test('we keep the name against a namesake we outrank (we are master, it is not)', () => {
    const { instances } = world(true);
    instances.receiveOwnHostname(heartbeat('alpha', { iid: '0000', master: false }), FROM, at(0), true);
    assert.equal(instances.yieldsName(at(0), true), false);
    assert.equal(instances.yieldsName(at(0), false), true, 'not master: the lower instance id keeps it');
  });

  test('just after our start, packets with our name are our previous process, still in flight (open cluster)', () => {
    const { instances, timing } = world();
    const namesake = heartbeat('alpha', { iid: 'a-previous', master: true });
    instances.receiveOwnHostname(namesake, FROM, at(0), false);
    instances.receiveOwnHostname(namesake, FROM, at(timing.holdoffMs - 1), false);
    assert.equal(instances.yieldsName(at(timing.holdoffMs - 1), false), false);
  });

  test('a shutdown notice from the namesake settles the name', () => {
    const { instances } = world(true);
    instances.receiveOwnHostname(heartbeat('alpha', { iid: 'a-other', master: true }), FROM, at(0), false);
    instances.receiveOwnHostname({ action: 'shutdown', hostname: 'alpha', iid: 'a-other' }, FROM, at(10), false);
    assert.equal(instances.yieldsName(at(10), false), false);
  });

  test('a late command: a promote a newer heartbeat overtook is taken once; not a heartbeat, not another instance', () => {
    const { members, instances } = world();
    const peer = members.add(heartbeat('bravo', { iid: 'b1', seq: 10 }), FROM.address, at(0));
    members.noteSkipped(peer, 13, at(10));
    const promote = { action: 'promote' as const, hostname: 'bravo', target: 'alpha', iid: 'b1', seq: 11 };
    assert.equal(instances.lateCommand(peer, { ...promote, iid: 'b2' }, at(20)), false);
    assert.equal(instances.lateCommand(peer, heartbeat('bravo', { iid: 'b1', seq: 11 }), at(20)), false);
    assert.equal(instances.lateCommand(peer, promote, at(20)), true);
    assert.equal(instances.lateCommand(peer, promote, at(21)), false, 'a replay');
  });
});

describe('freshness, authenticated (SPEC 13.2, 13.3, 13.5): which instances may speak', () => {
  const TTL = 1000;
  const hb = (iid: string, seq: number, echo?: string[]): HeartbeatMessage => heartbeat('bravo', { iid, seq, ...(echo ? { echo } : {}) });

  test('an unknown instance is admitted only by a heartbeat echoing a live hello of ours: a replay of a dead one admits nothing', () => {
    const guard = new FreshnessGuard({ selfIid: 'self', capacity: 16 });
    assert.equal(guard.admit(hb('b1', 5), 0, TTL), 'unverified', 'no echo');
    guard.issued(7, undefined, 0, TTL);
    assert.equal(guard.admit(hb('b1', 5, ['other:7']), 10, TTL), 'unverified', "another server's hello");
    assert.equal(guard.admit(hb('b1', 5, ['self:8']), 10, TTL), 'unverified', 'a hello we never sent');
    assert.equal(guard.admit(hb('b1', 5, ['self:7']), 10 + TTL + 1, TTL), 'unverified', 'an echo past its lifetime');
    assert.equal(guard.admit(hb('b1', 5, ['self:7']), 10, TTL), 'ok');
  });

  test('a known instance speaks only with a number above its last: replays and reorders are stale', () => {
    const guard = new FreshnessGuard({ selfIid: 'self', capacity: 16 });
    guard.issued(1, undefined, 0, TTL);
    guard.admit(hb('b1', 5, ['self:1']), 1, TTL);
    assert.equal(guard.admit(hb('b1', 5), 2, TTL), 'stale');
    assert.equal(guard.admit(hb('b1', 4), 2, TTL), 'stale');
    assert.equal(guard.admit(hb('b1', 6), 2, TTL), 'ok');
  });

  test('the start hello admits each instance once; a challenge admits only the instance it asked', () => {
    const guard = new FreshnessGuard({ selfIid: 'self', capacity: 16 });
    guard.issued(1, undefined, 0, TTL);
    assert.equal(guard.admit(hb('b1', 5, ['self:1']), 1, TTL), 'ok');
    guard.issued(2, 'c1', 2, TTL);
    assert.equal(guard.admit(hb('b2', 1, ['self:2']), 3, TTL), 'unverified', 'the challenge was for c1');
    assert.equal(guard.admit(heartbeat('charlie', { iid: 'c1', seq: 1, echo: ['self:2'] }), 3, TTL), 'ok');
  });

  test('a heartbeat that echoed the start hello, replayed after its instance was forgotten, admits nothing', () => {
    const guard = new FreshnessGuard({ selfIid: 'self', capacity: 1 });
    guard.issued(1, undefined, 0, TTL);
    const answer = hb('b1', 5, ['self:1']);
    assert.equal(guard.admit(answer, 1, TTL), 'ok');
    assert.equal(guard.admit(heartbeat('charlie', { iid: 'c1', seq: 1, echo: ['self:1'] }), 2, TTL), 'ok');
    assert.equal(guard.size, 1, 'bravo forgotten');
    assert.equal(guard.admit(answer, 3, TTL), 'unverified');
  });

  test('a promote overtaken by a newer heartbeat of its instance is acted on once', () => {
    const guard = new FreshnessGuard({ selfIid: 'self', capacity: 16 });
    guard.issued(1, undefined, 0, TTL);
    guard.admit(hb('b1', 5, ['self:1']), 1, TTL);
    guard.admit(hb('b1', 8), 2, TTL);
    const promote = { action: 'promote' as const, hostname: 'bravo', target: 'bravo', iid: 'b1', seq: 6 };
    assert.equal(guard.admit(promote, 3, TTL), 'ok');
    assert.equal(guard.admit(promote, 4, TTL), 'stale', 'its replay');
    assert.equal(guard.admit(hb('b1', 7), 4, TTL), 'stale', 'a heartbeat is never late: it is old');
  });

  test('memory is bounded: instances beyond the capacity forget the least recently heard', () => {
    const guard = new FreshnessGuard({ selfIid: 'self', capacity: 4 });
    for (let i = 0; i < 100; i++) {
      guard.issued(i, undefined, i, TTL);
      guard.admit(hb(`x${i}`, 1, [`self:${i}`]), i, TTL);
    }
    assert.equal(guard.size, 4);
  });

  test('challenges are rate-limited: once per retry each, and a bucket for a flood of unknown instances', () => {
    const guard = new FreshnessGuard({ selfIid: 'self', capacity: 16 });
    assert.equal(guard.shouldChallenge('b1', 0, 250), true);
    guard.issued(1, 'b1', 0, TTL);
    assert.equal(guard.shouldChallenge('b1', 100, 250), false);
    assert.equal(guard.shouldChallenge('b1', 250, 250), true);
    let granted = 0;
    for (let i = 0; i < 10_000; i++) if (guard.shouldChallenge(`flood${i}`, 300, 250)) granted++;
    assert.ok(granted <= 128, `${granted} challenges in one instant`);
  });

  test(`echoes of hellos we answer go out once, at most ${MAX_ECHOES}, the newest kept`, () => {
    const guard = new FreshnessGuard({ selfIid: 'self', capacity: 16 });
    for (let i = 0; i < MAX_ECHOES + 3; i++) guard.answer('asker', i);
    guard.answer('asker', MAX_ECHOES + 2);
    const echoes = guard.takeEchoes();
    assert.equal(echoes?.length, MAX_ECHOES);
    assert.equal(echoes?.at(-1), `asker:${MAX_ECHOES + 2}`);
    assert.equal(new Set(echoes).size, MAX_ECHOES, 'a hello answered twice is echoed once');
    assert.equal(guard.takeEchoes(), undefined);
  });
});

describe('handoffs in the core (SPEC 9.1–9.4)', () => {
  test('during a handoff only its target claims, until the window passes', () => {
    const handoffs = new Handoffs(new Step(), () => 3000);
    handoffs.begin('bravo', 3000, true, 10);
    // What a slave may follow meanwhile (the target, or a claim above the handing-off master's
    // term) is following.ts's rule (test/core.following.test.ts); the handoff says it is on.
    assert.deepEqual(handoffs.filtering(at(100)), { target: 'bravo', until: 3000, stepDown: true, term: 10 });
    assert.equal(
      handoffs.blocksClaimBy('bravo', at(100), () => true),
      'target',
    );
    assert.equal(
      handoffs.blocksClaimBy('charlie', at(100), () => true),
      true,
    );
    assert.equal(
      handoffs.blocksClaimBy('charlie', at(100), () => false),
      false,
      'a dead target blocks nobody',
    );
    assert.equal(
      handoffs.blocksClaimBy('charlie', at(3000), () => true),
      false,
      'the window passed',
    );
    assert.equal(handoffs.filtering(at(3000)), null, 'the window passed: no claim is filtered');
  });

  test("the departing master names the target in every heartbeat once it is no longer master; another master's handoff names nobody", () => {
    const handoffs = new Handoffs(new Step(), () => 3000);
    handoffs.begin('bravo', 3000, true, 10);
    assert.equal(handoffs.announced(true), undefined);
    assert.equal(handoffs.announced(false), 'bravo');
    handoffs.begin('bravo', 3000, false, 10);
    assert.equal(handoffs.announced(false), undefined);
  });

  test('a waiting promote() asks each master once, giving each a tock; a drain keeps it waiting', () => {
    const handoffs = new Handoffs(new Step(), () => 3000);
    handoffs.waitForPromotion(3000);
    assert.equal(handoffs.promoting, true);
    assert.equal(handoffs.shouldAsk('alpha', at(100)), true);
    assert.equal(handoffs.shouldAsk('alpha', at(200)), false);
    assert.equal(handoffs.shouldAsk('charlie', at(2500)), true, 'a new master');
    assert.equal(handoffs.promoteUntil, 5500);
    handoffs.keepWaiting(9000);
    assert.equal(handoffs.nextDeadline(), 9000);
  });

  test('promote() with no master claims at its instant, once, unless a master shows up first', () => {
    const handoffs = new Handoffs(new Step(), () => 3000);
    handoffs.waitForPromotion(3000);
    handoffs.claimAt(400);
    assert.equal(handoffs.promoteClaimDue(at(399)), false);
    assert.equal(handoffs.promoteClaimDue(at(400)), true);
    assert.equal(handoffs.promoteClaimDue(at(401)), false);
    handoffs.claimAt(600);
    handoffs.cancelClaim();
    assert.equal(handoffs.promoteClaimDue(at(700)), false);
  });

  test('a handoff to another server in flight: no asking, no claiming (it would make two masters)', () => {
    const handoffs = new Handoffs(new Step(), () => 3000);
    handoffs.begin('bravo', 3000, false, 10);
    assert.ok(handoffs.inFlight(at(100), 'alpha'));
    assert.equal(handoffs.inFlight(at(100), 'bravo'), null, 'to us: not in our way');
    assert.equal(handoffs.inFlight(at(3000), 'alpha'), null);
  });
});

describe('relays and words (SPEC 4.13): a master heard of through a slave that hears it (partial connectivity)', () => {
  function world() {
    const timing = new Timing({ tickMs: TICK, checkBeats: 3 });
    const relays = new Relays();
    const members = new MemberTable(timing, new Step(), 64, relays);
    const words = new Words('alpha', relays, members, timing);
    return { timing, relays, members, words };
  }

  test('a word keeps a master we cannot hear live for a tock, the grace and a tick per pass from its evidence', () => {
    const { relays, words, timing } = world();
    assert.equal(relays.note('charlie', { h: 'bravo', age: 100, t: 7 }, 1000), true, 'a master nobody named before');
    const until = 900 + timing.deadAfterMs + TICK;
    assert.equal(words.says('bravo', at(until - 1)), true);
    assert.equal(words.says('bravo', at(until)), false);
    assert.equal(words.termOf('bravo', at(1000)), 7);
    assert.deepEqual(words.claimants([], at(1000)), ['bravo'], 'a claimant on the word');
  });

  test('a word that passed through one more server counts a tick longer (each repeats it once a tick)', () => {
    const { relays, words, timing } = world();
    relays.note('delta', { h: 'bravo', age: 100, t: 7, n: 1 }, 1000);
    const until = 900 + timing.deadAfterMs + 2 * TICK;
    assert.equal(words.says('bravo', at(until - 1)), true);
    assert.equal(words.says('bravo', at(until)), false);
  });

  test('a word no fresher than our own last hearing of that master (by a holdoff) does not keep it alive', () => {
    const { relays, members, words, timing } = world();
    members.add(heartbeat('bravo', { iid: 'b1', master: true }), FROM.address, at(1000));
    relays.note('charlie', { h: 'bravo', age: 0, t: 7 }, 1000 + timing.holdoffMs);
    assert.equal(
      words.says('bravo', at(1000 + timing.holdoffMs)),
      false,
      'as stale as ours: a dead master kept alive by its followers for each other',
    );
    relays.note('charlie', { h: 'bravo', age: 0, t: 7 }, 1000 + timing.holdoffMs + 1);
    assert.equal(words.says('bravo', at(1000 + timing.holdoffMs + 1)), true);
  });

  test(`a word is passed on at most ${MAX_HOPS - 1} more time: no word goes round in circles`, () => {
    const { relays, words } = world();
    relays.note('charlie', { h: 'bravo', age: 10, t: 7 }, 1000);
    const lead = words.lead('bravo', at(1000));
    assert.deepEqual(lead, { h: 'bravo', age: 10, t: 7, n: 1 }, 'passed on, one pass more');
    const far = world();
    assert.equal(far.relays.note('delta', { h: 'bravo', age: 10, t: 7, n: MAX_HOPS }, 1000), false);
    assert.equal(far.words.says('bravo', at(1000)), false, 'a word past its passes counts for nothing');
    far.relays.note('delta', { h: 'bravo', age: 10, t: 7, n: MAX_HOPS - 1 }, 1000);
    assert.equal(far.words.lead('bravo', at(1000)), undefined, 'followed on it, but not passed on');
  });

  test('a word counts only while its relayer says it: forgotten with the relayer, or when it names another master', () => {
    const { relays } = world();
    relays.note('charlie', { h: 'bravo', age: 0, t: 7 }, 1000);
    relays.note('echo', { h: 'bravo', age: 200, t: 7 }, 1000);
    relays.note('delta', { h: 'bravo', age: 500, t: 7 }, 1000);
    relays.forget('charlie');
    assert.equal(relays.word('bravo')?.at, 800, 'the freshest of those still naming it');
    relays.forget('echo');
    relays.note('delta', { h: 'echo', age: 0, t: 9 }, 1100);
    assert.equal(relays.word('bravo'), undefined);
    relays.note('delta', undefined, 1200);
    assert.equal(relays.size, 0);
  });

  test('a master that left by notice: words from before the notice (and its transit) are old news', () => {
    const { relays } = world();
    relays.note('charlie', { h: 'bravo', age: 0, t: 7 }, 1000);
    relays.departed('bravo', 1000, 50);
    assert.equal(relays.word('bravo'), undefined);
    assert.equal(relays.note('charlie', { h: 'bravo', age: 20, t: 7 }, 1060), false, 'evidence from 1040: before the notice and its slack');
    assert.equal(relays.note('charlie', { h: 'bravo', age: 0, t: 9 }, 1100), true, 'heard as master again after');
  });

  test('a relayer naming itself says nothing', () => {
    const { relays } = world();
    assert.equal(relays.note('bravo', { h: 'bravo', age: 0, t: 7 }, 1000), false);
    assert.equal(relays.size, 0);
  });
});
