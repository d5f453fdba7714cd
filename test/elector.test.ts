/**
 * The contract both election machines share (src/elector/), one module at a time, driven by
 * explicit instants: the rank rule (SPEC 6.1), datagram freshness and late commands (SPEC
 * 13.3–13.6), the members report (SPEC 10.5), what a handoff tells (SPEC 9.1–9.5), the promote
 * request held for a drain (SPEC 9.6) and preemption (SPEC 4.14). The machines' own tests
 * (core.*, coordinator.*) show the rules in an election; these pin each rule where it is written.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { compareRank } from '../src/elector/rank';
import { isStaleSeq, MAX_SKIPPED, OPEN_STALE_WINDOW, SkippedSeqs } from '../src/elector/seq';
import { MembersReport } from '../src/elector/members-report';
import { HandoffOutcomes } from '../src/elector/handoffs';
import { PromoteHold } from '../src/elector/hold';
import { Preemption } from '../src/elector/preempt';
import { OutputStep } from '../src/elector/step';
import type { CoreEvent, LogLine } from '../src/elector/types';

/** The events and log lines a step collected so far (and a fresh step after). */
function taken(step: OutputStep): { events: CoreEvent[]; logs: LogLine[] } {
  const out = step.take(Infinity);
  return { events: [...out.events], logs: [...out.logs] };
}

describe('rank (SPEC 6.1): higher priority first, then the hostname that sorts first in plain string order', () => {
  test('priority decides before the name', () => {
    assert.ok(compareRank('zulu', 5, 'alpha', 1) < 0);
    assert.ok(compareRank('alpha', 1, 'zulu', 5) > 0);
    assert.ok(compareRank('alpha', -1, 'zulu', 0) > 0, 'a negative priority ranks below the default 0');
  });

  test('equal priorities: plain string order (the original rule), not locale order', () => {
    assert.ok(compareRank('alpha', 0, 'bravo', 0) < 0);
    assert.ok(compareRank('Zulu', 0, 'alpha', 0) < 0, 'upper case sorts before lower case, as the original compared');
    assert.ok(compareRank('host10', 0, 'host9', 0) < 0, 'no numeric collation');
    assert.equal(compareRank('alpha', 3, 'alpha', 3), 0);
  });

  test('a total order: every server that sorts the same hostnames agrees on who is first', () => {
    const servers: Array<[string, number]> = [
      ['delta', 0],
      ['alpha', 0],
      ['Echo', 0],
      ['charlie', 2],
      ['bravo', 2],
      ['foxtrot', -1],
    ];
    const sorted = (list: Array<[string, number]>): string[] =>
      [...list].sort((a, b) => compareRank(a[0], a[1], b[0], b[1])).map(([name]) => name);
    const expected = ['bravo', 'charlie', 'Echo', 'alpha', 'delta', 'foxtrot'];
    assert.deepEqual(sorted(servers), expected);
    assert.deepEqual(sorted([...servers].reverse()), expected, 'the order does not depend on the order heard');
  });
});

describe('freshness (SPEC 13.3, 13.6): is a sequence number a reorder or a replay', () => {
  const LIVE = 3000;

  test('a number above the last heard is fresh, with or without a secret', () => {
    assert.equal(isStaleSeq(11, 10, 0, 0, LIVE, true), false);
    assert.equal(isStaleSeq(11, 10, 0, 0, LIVE, false), false);
  });

  test('authenticated: any number at or below the last is old, however long ago it was heard', () => {
    assert.equal(isStaleSeq(10, 10, 0, 0, LIVE, true), true, 'a replay of the last');
    assert.equal(isStaleSeq(0, 10, 0, 0, LIVE, true), true);
    assert.equal(isStaleSeq(9, 10, 0, 1e9, LIVE, true), true, 'long after it went silent');
    assert.equal(isStaleSeq(10 - OPEN_STALE_WINDOW * 10, 10, 0, 0, LIVE, true), true, 'far below');
  });

  test('open cluster: old only close below the last, so a forged huge number cannot silence the real sender', () => {
    const last = 1e12; // what a forger sent with a copied instance id
    assert.equal(isStaleSeq(last - 1, last, 0, 0, LIVE, false), true, 'a reorder');
    assert.equal(isStaleSeq(last - OPEN_STALE_WINDOW + 1, last, 0, 0, LIVE, false), true, 'the edge of the window');
    assert.equal(isStaleSeq(last - OPEN_STALE_WINDOW, last, 0, 0, LIVE, false), false, 'just outside: a new count');
    assert.equal(isStaleSeq(5, last, 0, 0, LIVE, false), false, "the real sender's small number");
  });

  test('open cluster: once the instance has been silent for the live span, nothing it sent makes a packet old (the forger lapse)', () => {
    assert.equal(isStaleSeq(99, 100, 1000, 1000 + LIVE - 1, LIVE, false), true);
    assert.equal(isStaleSeq(99, 100, 1000, 1000 + LIVE, LIVE, false), false);
  });
});

describe('late commands (SPEC 13.4): numbers a newer packet skipped over are taken once, late', () => {
  test('a command overtaken by a heartbeat is acted on once; its replay is stale', () => {
    const skipped = new SkippedSeqs();
    skipped.note(10, 13, 0, 1000); // 11 and 12 were skipped
    assert.equal(skipped.take(11, 5), true);
    assert.equal(skipped.take(11, 6), false, 'taken once only');
    assert.equal(skipped.take(12, 7), true);
    assert.equal(skipped.take(13, 8), false, 'the number that arrived was not skipped');
    assert.equal(skipped.take(10, 8), false, 'nor the one before it');
  });

  test('skipped numbers are remembered only until their deadline', () => {
    const skipped = new SkippedSeqs();
    skipped.note(1, 3, 0, 100);
    assert.equal(skipped.take(2, 100), false);
  });

  test('nothing is noted before the first number of an instance, nor for consecutive numbers', () => {
    const skipped = new SkippedSeqs();
    skipped.note(-1, 50, 0, 1000);
    skipped.note(50, 51, 0, 1000);
    for (let seq = 0; seq < 52; seq++) assert.equal(skipped.take(seq, 1), false, `seq ${seq}`);
  });

  test(`memory is bounded (SPEC 13.5): a forged jump of a billion keeps at most ${MAX_SKIPPED} numbers, the newest`, () => {
    const skipped = new SkippedSeqs();
    skipped.note(0, 1e9, 0, 1000);
    assert.equal(skipped.take(1, 1), false, 'the oldest skipped number is not kept');
    assert.equal(skipped.take(1e9 - MAX_SKIPPED - 1, 1), false);
    let kept = 0;
    for (let seq = 1e9 - MAX_SKIPPED; seq < 1e9; seq++) if (skipped.take(seq, 1)) kept++;
    assert.equal(kept, MAX_SKIPPED);
    // Notes on notes: still bounded, newest kept.
    skipped.note(1e9, 1e9 + 10, 2, 1000);
    skipped.note(1e9 + 10, 1e9 + 20, 3, 1000);
    assert.equal(skipped.take(1e9 + 19, 4), true, 'the newest is kept');
    assert.equal(skipped.take(1e9 + 1, 4), false, 'the oldest is dropped');
    let total = 1;
    for (let seq = 1e9 + 2; seq < 1e9 + 19; seq++) if (skipped.take(seq, 4)) total++;
    assert.equal(total, MAX_SKIPPED);
  });

  test('clear() forgets every skipped number (a restart of the instance)', () => {
    const skipped = new SkippedSeqs();
    skipped.note(1, 5, 0, 1000);
    skipped.clear();
    assert.equal(skipped.take(2, 1), false);
  });
});

describe('members report (SPEC 10.5): a members event when the set changes, and only then', () => {
  test('the first set is reported, a repeat is not, a change is', () => {
    const report = new MembersReport();
    const events: CoreEvent[] = [];
    let built = 0;
    const list = (members: string[]) => () => {
      built++;
      return members;
    };
    report.report('a,b', list(['a', 'b']), (event) => events.push(event));
    report.report('a,b', list(['a', 'b']), (event) => events.push(event));
    report.report('a,b,c', list(['a', 'b', 'c']), (event) => events.push(event));
    report.report('a,b', list(['a', 'b']), (event) => events.push(event));
    assert.deepEqual(events, [
      { type: 'members', members: ['a', 'b'] },
      { type: 'members', members: ['a', 'b', 'c'] },
      { type: 'members', members: ['a', 'b'] },
    ]);
    assert.equal(built, 3, 'the list is built only when it is reported');
  });

  test('an empty set is reported too (every eligible server gone), once', () => {
    const report = new MembersReport();
    const events: CoreEvent[] = [];
    report.report(
      'a',
      () => ['a'],
      (event) => events.push(event),
    );
    report.report(
      '',
      () => [],
      (event) => events.push(event),
    );
    report.report(
      '',
      () => [],
      (event) => events.push(event),
    );
    assert.deepEqual(events.at(-1), { type: 'members', members: [] });
    assert.equal(events.length, 2);
  });
});

describe('handoff outcomes (SPEC 9.1, 9.2, 9.5): the stepdown and promote events that settle a handoff', () => {
  test('stepDown() succeeds when another server holds the role, whoever it is', () => {
    const step = new OutputStep();
    const handoff = new HandoffOutcomes(step);
    handoff.pending = { target: 'bravo', until: 1000, stepDown: true };
    handoff.done('charlie', 'alpha');
    assert.deepEqual(taken(step).events, [{ type: 'stepdown', ok: true, hostname: 'charlie', reason: 'charlie is master' }]);
    assert.equal(handoff.pending, null);
  });

  test('stepDown() fails when we hold the role again', () => {
    const step = new OutputStep();
    const handoff = new HandoffOutcomes(step);
    handoff.pending = { target: 'bravo', until: 1000, stepDown: true };
    handoff.done('alpha', 'alpha');
    const [event] = taken(step).events;
    assert.equal(event?.type === 'stepdown' && event.ok, false);
  });

  test("a handoff we did not start (another master's) is ended silently", () => {
    const step = new OutputStep();
    const handoff = new HandoffOutcomes(step);
    handoff.pending = { target: 'bravo', until: 1000, stepDown: false };
    handoff.done('bravo', 'alpha');
    assert.deepEqual(taken(step).events, []);
    assert.equal(handoff.pending, null);
    handoff.done('bravo', 'alpha');
    assert.deepEqual(taken(step).events, [], 'nothing pending: nothing told');
  });

  test('a handoff past its window fails, with a log line, and the election goes on; not a moment before', () => {
    const step = new OutputStep();
    const handoff = new HandoffOutcomes(step);
    handoff.pending = { target: 'bravo', until: 1000, stepDown: true };
    handoff.expire(999, true, '3 s');
    assert.deepEqual(taken(step), { events: [], logs: [] });
    assert.ok(handoff.pending);
    handoff.expire(1000, true, '3 s');
    const { events, logs } = taken(step);
    assert.deepEqual(events, [{ type: 'stepdown', ok: false, hostname: 'bravo', reason: 'bravo did not take over within 3 s' }]);
    assert.equal(logs.length, 1);
    assert.equal(handoff.pending, null);
  });

  test('promote() succeeds once we are master, once; past its window it fails, unless we are master', () => {
    const step = new OutputStep();
    const handoff = new HandoffOutcomes(step);
    handoff.promoteUntil = 2000;
    handoff.promoted(7);
    handoff.promoted(7);
    assert.deepEqual(taken(step).events, [{ type: 'promote', ok: true, reason: 'master with term 7' }]);
    assert.equal(handoff.promoteUntil, Infinity);

    handoff.promoteUntil = 2000;
    handoff.expire(1999, false, '3 s');
    assert.deepEqual(taken(step).events, []);
    handoff.expire(2000, false, '3 s');
    assert.deepEqual(taken(step).events, [{ type: 'promote', ok: false, reason: 'the master did not hand over within 3 s' }]);

    handoff.promoteUntil = 2000;
    handoff.expire(2000, true, '3 s');
    assert.deepEqual(taken(step).events, [], 'master by then: no failure told');
    assert.equal(handoff.promoteUntil, Infinity);
  });
});

describe('the promote request held for a drain (SPEC 9.6)', () => {
  const sink = (): { events: CoreEvent[]; logs: string[]; sink: ConstructorParameters<typeof PromoteHold>[0] } => {
    const events: CoreEvent[] = [];
    const logs: string[] = [];
    return { events, logs, sink: { event: (event) => events.push(event), log: (_level, message) => logs.push(message) } };
  };

  test('without drains asked for, nothing is held: the master hands over at once', () => {
    const { events, sink: s } = sink();
    const hold = new PromoteHold(s, null);
    assert.equal(hold.hold('bravo', 0), false);
    assert.equal(hold.target, null);
    assert.deepEqual(events, []);
    assert.equal(hold.nextDeadline(3000), Infinity);
  });

  test('the first asker is held and told to the app (a drain event); a second asker waits behind it', () => {
    const { events, logs, sink: s } = sink();
    const hold = new PromoteHold(s, 10_000);
    assert.equal(hold.hold('bravo', 100), true);
    assert.equal(hold.hold('bravo', 200), true, 'a repeat');
    assert.equal(hold.hold('charlie', 300), true);
    assert.equal(hold.target, 'bravo');
    assert.deepEqual(events, [{ type: 'drain', target: 'bravo' }]);
    assert.ok(logs.some((line) => line.includes('charlie') && line.includes('bravo goes first')));
  });

  test('the app never answers: the backstop is due a tock after its own timeout, counted from the first request', () => {
    const { sink: s } = sink();
    const hold = new PromoteHold(s, 10_000);
    hold.hold('bravo', 100);
    hold.hold('bravo', 5000); // a repeat does not restart the clock
    assert.equal(hold.nextDeadline(3000), 13_100);
    assert.equal(hold.overdue(13_099, 3000), false);
    assert.equal(hold.overdue(13_100, 3000), true);
  });

  test('take() hands the held request over once; clear() drops it', () => {
    const { sink: s } = sink();
    const hold = new PromoteHold(s, 10_000);
    hold.hold('bravo', 0);
    assert.equal(hold.take(), 'bravo');
    assert.equal(hold.take(), null);
    assert.equal(hold.overdue(1e9, 3000), false);
    hold.hold('charlie', 0);
    hold.clear();
    assert.equal(hold.target, null);
    assert.equal(hold.nextDeadline(3000), Infinity);
  });
});

describe('preemption (SPEC 4.14): ask the master followed for a whole delay, at most once per delay', () => {
  test('off (the default): never due', () => {
    const preempt = new Preemption({ delayMs: null });
    assert.equal(preempt.enabled, false);
    for (const now of [0, 1e6, 1e9]) assert.equal(preempt.due(now, 'alpha'), false);
    assert.equal(preempt.nextDeadline(), Infinity);
  });

  test('due once the same master has been followed for the delay, not a moment before', () => {
    const preempt = new Preemption({ delayMs: 5000 });
    assert.equal(preempt.due(1000, 'alpha'), false);
    assert.equal(preempt.nextDeadline(), 6000);
    assert.equal(preempt.due(5999, 'alpha'), false);
    assert.equal(preempt.due(6000, 'alpha'), true);
  });

  test('at most once per delay while the same master stays', () => {
    const preempt = new Preemption({ delayMs: 5000 });
    preempt.due(0, 'alpha');
    assert.equal(preempt.due(5000, 'alpha'), true);
    assert.equal(preempt.due(5001, 'alpha'), false);
    assert.equal(preempt.nextDeadline(), 10_000);
    assert.equal(preempt.due(9999, 'alpha'), false);
    assert.equal(preempt.due(10_000, 'alpha'), true);
  });

  test('a change of master, or a break in the conditions, starts the delay again', () => {
    const preempt = new Preemption({ delayMs: 5000 });
    preempt.due(0, 'alpha');
    preempt.due(4000, 'bravo'); // a failover
    assert.equal(preempt.due(5000, 'bravo'), false);
    assert.equal(preempt.due(9000, 'bravo'), true);
    preempt.due(20_000, 'bravo');
    preempt.due(20_001, null); // a condition failed (a handoff under way, out of contact)
    assert.equal(preempt.nextDeadline(), Infinity);
    assert.equal(preempt.due(20_002, 'bravo'), false);
    assert.equal(preempt.due(25_001, 'bravo'), false);
    assert.equal(preempt.due(25_002, 'bravo'), true);
  });
});
