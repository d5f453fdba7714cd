/**
 * exclusive(): the rules of the work tracker and of the component's handovers around it
 * (src/app/exclusive.ts, src/app/master-work.ts), driven with a manual clock: admission,
 * the drain (wait, timeout, abort mode), the role lost, throwing and re-entrant work. The
 * real-process test (the next master's first call starts after the old master's last ended)
 * is test/exclusive.process.test.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ExclusiveAbortError, ExclusiveWork } from '../src/app/exclusive';
import { MasterWork, type MasterWorkHost } from '../src/app/master-work';
import { ManualTimers, flush } from './helpers/timers';

/** A promise and its resolvers. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('exclusive(): admission', () => {
  test('runs only on the master with the gate open, synchronously, with the term; refusals say why', async () => {
    const work = new ExclusiveWork(new ManualTimers());
    const order: string[] = [];
    const ran = work.run(true, 7, (signal, term) => {
      order.push(`ran with term ${term}, aborted ${signal.aborted}`);
      return 'value';
    });
    order.push('after the call');
    assert.deepEqual(order, ['ran with term 7, aborted false', 'after the call'], 'fn runs before exclusive() returns');
    assert.deepEqual(await ran, { ran: true, value: 'value', term: 7 });
    let called = false;
    assert.deepEqual(await work.run(false, 7, () => (called = true)), {
      ran: false,
      reason: 'not-master',
      detail: 'this server is not master',
    });
    work.close('stepping down');
    assert.deepEqual(await work.run(true, 7, () => (called = true)), { ran: false, reason: 'handing-over', detail: 'stepping down' });
    work.open();
    assert.equal((await work.run(true, 8, () => 1)).ran, true);
    work.shutDown('the server is shutting down');
    work.open();
    assert.equal((await work.run(true, 8, () => (called = true))).ran, false, 'after shutdown the gate never opens');
    assert.equal(called, false);
    assert.deepEqual({ runs: work.stats.runs, refused: work.stats.refused }, { runs: 2, refused: 3 });
  });

  test('a throwing or rejecting fn rejects the promise and is no longer counted as running', async () => {
    const work = new ExclusiveWork(new ManualTimers());
    await assert.rejects(
      work.run(true, 1, () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    await assert.rejects(
      work.run(true, 1, () => Promise.reject(new Error('later'))),
      /later/,
    );
    // Not an Error at all: the value is what the caller gets.
    await assert.rejects(
      work.run(true, 1, () => {
        throw null;
      }),
      (err) => err === null,
    );
    assert.equal(work.running, 0);
    await assert.rejects(work.run(true, 1, null as never), TypeError);
    await assert.rejects(
      work.run(true, 1, () => 1, { drain: 'later' as never }),
      /drain must be "wait" or "abort"/,
    );
  });

  test('a call made from inside a running call is admitted and counted (nothing deadlocks)', async () => {
    const work = new ExclusiveWork(new ManualTimers());
    const outer = await work.run(true, 3, async () => {
      const inner = await work.run(true, 3, () => work.running);
      return inner;
    });
    assert.deepEqual(outer, { ran: true, value: { ran: true, value: 2, term: 3 }, term: 3 });
    assert.equal(work.running, 0);
  });
});

describe('exclusive(): the drain', () => {
  test('waits for every running call, admits none meanwhile, and resolves the moment the last one ends', async () => {
    const timers = new ManualTimers();
    const work = new ExclusiveWork(timers);
    const a = deferred();
    const b = deferred();
    void work.run(true, 1, () => a.promise);
    const failed = work.run(true, 1, () => b.promise).catch((err: Error) => err.message);
    work.close('stepping down');
    let drained: unknown = null;
    void work.drain(10_000).then((outcome) => (drained = outcome));
    await timers.advance(300);
    a.resolve();
    await timers.advance(200);
    assert.equal(drained, null, 'one call still runs');
    assert.equal((await work.run(true, 1, () => 1)).ran, false, 'no new call while draining');
    b.reject(new Error('the work failed: it has ended all the same'));
    await flush();
    assert.deepEqual(drained, { ms: 500, calls: 2, timedOut: 0 });
    assert.equal(await failed, 'the work failed: it has ended all the same', 'its caller gets its error');
    assert.equal(timers.pending, 0, 'the timeout timer is cleared');
  });

  test('at the timeout the calls left are aborted (drain-timeout) and the drain resolves without them', async () => {
    const timers = new ManualTimers();
    const work = new ExclusiveWork(timers);
    let reason: unknown = null;
    void work.run(true, 4, (signal) => {
      signal.addEventListener('abort', () => (reason = signal.reason));
      return new Promise(() => undefined); // never ends
    });
    work.close('stepping down');
    let drained: unknown = null;
    void work.drain(2000).then((outcome) => (drained = outcome));
    await timers.advance(1999);
    assert.equal(drained, null);
    await timers.advance(1);
    assert.deepEqual(drained, { ms: 2000, calls: 1, timedOut: 1 });
    assert.ok(reason instanceof ExclusiveAbortError && reason.kind === 'drain-timeout', String(reason));
    assert.equal(work.running, 1, 'it still runs (it ignores its signal): still counted');
    assert.equal(work.stats.drainTimeouts, 1);
  });

  test('drain_timeout 0 aborts at once; no call running resolves at once', async () => {
    const timers = new ManualTimers();
    const work = new ExclusiveWork(timers);
    assert.deepEqual(await work.drain(0), { ms: 0, calls: 0, timedOut: 0 });
    const never = new Promise(() => undefined);
    void work.run(true, 1, () => never);
    const outcome = work.drain(0);
    await timers.advance(0);
    assert.deepEqual(await outcome, { ms: 0, calls: 1, timedOut: 1 });
  });

  test("drain: 'abort' calls are told at once that a handover began; 'wait' calls are not", async () => {
    const timers = new ManualTimers();
    const work = new ExclusiveWork(timers);
    const kinds: string[] = [];
    const loop = deferred();
    void work.run(
      true,
      1,
      (signal) => {
        signal.addEventListener('abort', () => {
          kinds.push(`loop: ${(signal.reason as ExclusiveAbortError).kind}`);
          loop.resolve();
        });
        return loop.promise;
      },
      { drain: 'abort' },
    );
    const job = deferred();
    void work.run(true, 1, (signal) => {
      signal.addEventListener('abort', () => kinds.push('job aborted'));
      return job.promise;
    });
    work.close('handing over to bravo');
    let drained = false;
    void work.drain(5000).then(() => (drained = true));
    await flush();
    assert.deepEqual(kinds, ['loop: handover']);
    assert.equal(drained, false, 'the job still runs');
    job.resolve();
    await flush();
    assert.equal(drained, true);
  });

  test('two handovers at once share one drain', async () => {
    const timers = new ManualTimers();
    const work = new ExclusiveWork(timers);
    const a = deferred();
    void work.run(true, 1, () => a.promise);
    const first = work.drain(1000);
    await timers.advance(100);
    const second = work.drain(5000);
    assert.equal(first, second);
    a.resolve();
    assert.deepEqual(await second, { ms: 100, calls: 1, timedOut: 0 });
    assert.equal(work.stats.drains, 1);
  });
});

describe('exclusive(): the role lost against our will', () => {
  test('aborts every running call at once, with kind role-lost; each is aborted once', async () => {
    const work = new ExclusiveWork(new ManualTimers());
    const signals: AbortSignal[] = [];
    for (let i = 0; i < 3; i++) void work.run(true, 2, (signal) => (signals.push(signal), new Promise(() => undefined)));
    work.roleLost();
    work.roleLost();
    assert.ok(signals.every((signal) => signal.aborted && (signal.reason as ExclusiveAbortError).kind === 'role-lost'));
    assert.equal(work.stats.aborted['role-lost'], 3);
  });
});

/** A MasterWork over a fake election: a role the test sets, and the eligibility it is told. */
function harness(timers = new ManualTimers()): {
  work: MasterWork;
  timers: ManualTimers;
  state: { master: boolean; appEligible: boolean; applied: boolean[]; logs: string[] };
} {
  const state = { master: true, appEligible: true, applied: [] as boolean[], logs: [] as string[] };
  const host: MasterWorkHost = {
    isMaster: () => state.master,
    term: () => 5,
    drainTimeoutMs: () => 10_000,
    appEligible: () => state.appEligible,
    applyEligible: (eligible) => state.applied.push(eligible),
    log: (level, message) => state.logs.push(`${level} ${message}`),
  };
  return { work: new MasterWork(host, { work: timers, health: timers }), timers, state };
}

describe('handovers around the work (MasterWork)', () => {
  test('with no call running a handover goes on at once (no added latency)', () => {
    const { work } = harness();
    let handedOver = false;
    const result = work.handOver('stepping down', () => (handedOver = true));
    assert.equal(handedOver, true);
    assert.equal(result, true);
  });

  test('a handover drains first; a failed one (still master) reopens the gate; a new term reopens it', async () => {
    const { work, timers, state } = harness();
    const job = deferred();
    void work.exclusive(() => job.promise);
    let handedOver = false;
    const done = work.handOver('stepping down', () => (handedOver = true));
    await timers.advance(1000);
    assert.equal(handedOver, false);
    assert.equal(work.state.handingOver, 'stepping down');
    assert.equal(work.state.draining, true);
    job.resolve();
    await done;
    assert.equal(handedOver, true);
    assert.equal((await work.exclusive(() => 1)).ran, false, 'the gate stays closed after the handover');
    work.handoverFailed();
    assert.equal((await work.exclusive(() => 1)).ran, true, 'still master: admitted again');
    work.work.close('x');
    state.master = false;
    work.onSlave();
    state.master = true;
    work.onMaster();
    assert.equal((await work.exclusive(() => 1)).ran, true);
  });

  test('eligible = false on a master drains, then tells the election; on a slave at once', async () => {
    const { work, timers, state } = harness();
    const job = deferred();
    void work.exclusive(() => job.promise);
    state.appEligible = false;
    work.eligibilityChanged('eligible set to false');
    await timers.advance(500);
    assert.deepEqual(state.applied, [], 'not before the drain');
    job.resolve();
    await flush();
    assert.deepEqual(state.applied, [false]);
    state.master = false;
    state.appEligible = true;
    work.eligibilityChanged('eligible set to true');
    assert.deepEqual(state.applied, [false, true]);
  });

  test('leaving drains a master; a slave leaves at once; nothing is admitted afterwards', async () => {
    const { work, timers } = harness();
    const job = deferred();
    void work.exclusive(() => job.promise);
    const leaving = work.leave();
    assert.ok(leaving);
    let left = false;
    void leaving.then(() => (left = true));
    await timers.advance(100);
    assert.equal(left, false);
    job.resolve();
    await flush();
    assert.equal(left, true);
    const refused = await work.exclusive(() => 1);
    assert.equal(!refused.ran && refused.reason, 'shutting-down');
    assert.equal(work.leave(), null, 'a second leave has nothing to wait for');
    const slave = harness();
    slave.state.master = false;
    assert.equal(slave.work.leave(), null);
  });
});
