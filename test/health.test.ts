/**
 * The health check's rules (src/app/health.ts, and the eligibility it gives through
 * src/app/master-work.ts), with a manual clock: the first result counts at once, then
 * `fall` failures and `rise` passes in a row; timeouts, throws, `false`, a check that never
 * answers, one check at a time, options refused by name. The real components: the health
 * tests in test/exclusive.process.test.ts and the wrapper's --health-cmd in test/run.test.ts.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { HealthCheck, healthSettings, type HealthStatus } from '../src/app/health';
import { MasterWork } from '../src/app/master-work';
import { ManualTimers, flush } from './helpers/timers';
import { statusBody } from '../src/shell/status';
import { createMetricsRegistry } from '../src/shell/metrics';

/** A check whose outcomes the test scripts: true passes, false returns false, an Error throws, 'hang' never answers. */
function scripted(outcomes: Array<boolean | Error | 'hang' | 'reject'>): {
  fn: (signal: AbortSignal) => unknown;
  calls: number;
  aborted: number;
} {
  const state = { calls: 0, aborted: 0, fn: (_signal: AbortSignal): unknown => undefined };
  state.fn = (signal: AbortSignal) => {
    const outcome = outcomes[Math.min(state.calls, outcomes.length - 1)];
    state.calls++;
    signal.addEventListener('abort', () => state.aborted++);
    if (outcome instanceof Error) throw outcome;
    if (outcome === 'hang') return new Promise(() => undefined);
    if (outcome === 'reject') return Promise.reject(new Error('rejected\nwith a second line'));
    return Promise.resolve(outcome);
  };
  return state;
}

describe('health check: rise and fall', () => {
  test('the first result decides at once; then fall failures in a row, rise passes in a row', async () => {
    const timers = new ManualTimers();
    const changes: string[] = [];
    const script = scripted([true, false, false, true, false, false, false, true, true]);
    const check = new HealthCheck(
      script.fn,
      { interval: 1, rise: 2, fall: 3 },
      (status) => changes.push(`${status.state} after ${status.checks}`),
      timers,
    );
    check.start();
    await flush();
    assert.deepEqual(changes, ['passing after 1']);
    await timers.advance(2000); // checks 2, 3: two failures
    assert.equal(check.healthy, true, 'two failures are fewer than fall');
    await timers.advance(1000); // check 4 passes: the count starts over
    await timers.advance(2000); // checks 5, 6 fail
    assert.equal(check.healthy, true);
    await timers.advance(1000); // check 7: the third failure in a row
    assert.deepEqual(changes, ['passing after 1', 'failing after 7']);
    await timers.advance(1000); // check 8 passes
    assert.equal(check.healthy, false, 'one pass is fewer than rise');
    await timers.advance(1000); // check 9
    assert.deepEqual(changes, ['passing after 1', 'failing after 7', 'passing after 9']);
    assert.equal(script.calls, 9);
    check.stop();
    await timers.advance(10_000);
    assert.equal(script.calls, 9, 'no check after stop');
  });

  test('a server that starts sick is failing after its first check', async () => {
    const timers = new ManualTimers();
    let status: HealthStatus | null = null;
    const check = new HealthCheck(scripted([new Error('disk full')]).fn, { fall: 5 }, (s) => (status = s), timers);
    check.start();
    await flush();
    assert.equal(check.healthy, false);
    assert.equal(status!.last?.error, 'disk full');
  });

  test('a throw, a rejection, false and a timeout each count as a failure; the timed-out check is aborted', async () => {
    const timers = new ManualTimers();
    const script = scripted([true, new Error('thrown'), 'reject', false, 'hang']);
    const errors: string[] = [];
    const check = new HealthCheck(script.fn, { interval: 1, timeout: 0.5, rise: 1, fall: 4 }, () => undefined, timers);
    check.start();
    await timers.advance(600); // each sample 600 ms after its check began (a timeout ends at 500)
    for (let i = 0; i < 5; i++) {
      await timers.advance(1000);
      errors.push(check.status.last?.error ?? '?');
    }
    assert.deepEqual(errors, [
      'thrown',
      'rejected with a second line',
      'the check returned false',
      'no answer within 0.5 s',
      'no answer within 0.5 s',
    ]);
    assert.equal(check.healthy, false);
    assert.ok(script.aborted >= 1);
  });

  test('one check at a time: a slow check delays the next instead of overlapping it', async () => {
    const timers = new ManualTimers();
    let running = 0;
    let most = 0;
    let calls = 0;
    const check = new HealthCheck(
      () => {
        calls++;
        running++;
        most = Math.max(most, running);
        return new Promise<void>((resolve) => timers.setTimeout(() => (running--, resolve()), 2500));
      },
      { interval: 1, timeout: 10 },
      () => undefined,
      timers,
    );
    check.start();
    await timers.advance(9_999);
    assert.equal(most, 1);
    assert.equal(calls, 4, 'a check every 2.5 s, the time each takes');
  });

  test("the status document (page, JSON) and the metrics show the check's state as it changes", async () => {
    const timers = new ManualTimers();
    const check = new HealthCheck(
      scripted([true, new Error('disk full'), new Error('disk full'), true, true]).fn,
      { interval: 1, rise: 2, fall: 2 },
      () => undefined,
      timers,
    );
    const source = {
      hostname: 'a',
      master: true,
      masterHostname: 'a',
      term: 7,
      eligible: true,
      members: ['a'],
      servers: {},
      settings: null,
      lastFailover: null,
      stats: {
        packetsIn: 0,
        packetsOut: 0,
        bytesIn: 0,
        bytesOut: 0,
        dropped: {},
        oldKeyPackets: 0,
        elections: 1,
        sendErrors: 0,
        failovers: 0,
        lastFailoverMs: 0,
      },
      health: null as HealthStatus | null,
    };
    const metrics = createMetricsRegistry(source);
    const metric = async (name: string): Promise<number> => {
      const line = (await metrics.metrics()).split('\n').find((l) => l.startsWith(`pixl_multi_${name} `));
      assert.ok(line, `no ${name} in the metrics`);
      return Number(line.split(' ')[1]);
    };
    const doc = () => statusBody(source, { departures: null, failovers: null }, 0);
    assert.equal(doc().health, null, 'no check: null');
    assert.equal(await metric('health_check_passing'), -1);
    check.start();
    await flush();
    source.health = check.status;
    assert.equal(doc().health?.state, 'passing');
    assert.equal(await metric('health_check_passing'), 1);
    await timers.advance(2000);
    source.health = check.status;
    assert.deepEqual(
      [doc().health?.state, doc().health?.healthy, doc().health?.failures, doc().health?.last?.error],
      ['failing', false, 2, 'disk full'],
    );
    assert.deepEqual(
      [await metric('health_check_passing'), await metric('health_check_failures'), await metric('health_checks_total')],
      [0, 2, 3],
    );
    await timers.advance(2000);
    source.health = check.status;
    assert.equal(doc().health?.state, 'passing');
    assert.equal(await metric('health_check_passing'), 1);
    check.stop();
  });

  test('options are checked, and the error names the option and its value', () => {
    assert.deepEqual(healthSettings({}), { interval: 2, rise: 2, fall: 3, timeout: 2 });
    assert.deepEqual(healthSettings({ interval: 0.5 }), { interval: 0.5, rise: 2, fall: 3, timeout: 0.5 });
    for (const [options, pattern] of [
      [{ interval: 0 }, /interval must be a number of seconds from 0.01 to 86400, got 0 \(number\)/],
      [{ interval: '5' }, /interval .* got "5"/],
      [{ rise: 1.5 }, /rise must be an integer from 1 to 1000, got 1.5/],
      [{ fall: 0 }, /fall must be an integer/],
      [{ timeout: Infinity }, /timeout must be/],
    ] as const) {
      assert.throws(() => healthSettings(options as never), pattern);
    }
    assert.throws(() => new HealthCheck('ls' as never, {}, () => undefined), /needs a function/);
  });
});

describe('health check: eligibility (MasterWork)', () => {
  function host(timers: ManualTimers, master: boolean) {
    const state = { master, applied: [] as boolean[], logs: [] as string[] };
    const work = new MasterWork(
      {
        isMaster: () => state.master,
        term: () => 1,
        drainTimeoutMs: () => 5000,
        appEligible: () => true,
        applyEligible: (eligible) => state.applied.push(eligible),
        log: (level, message) => state.logs.push(`${level} ${message}`),
      },
      { work: timers, health: timers },
    );
    return { work, state };
  }

  test('a failing master drains its work, then is made ineligible; a recovered one eligible again', async () => {
    const timers = new ManualTimers();
    const { work, state } = host(timers, true);
    let release!: () => void;
    void work.exclusive(() => new Promise<void>((resolve) => (release = resolve)));
    let healthy = true;
    work.setHealthCheck(() => healthy, { interval: 1, rise: 2, fall: 2 });
    await timers.advance(0);
    healthy = false;
    await timers.advance(2000);
    assert.equal(work.health?.state, 'failing');
    assert.deepEqual(state.applied, [], 'the work runs: not yet');
    assert.equal((await work.exclusive(() => 1)).ran, false, 'no new work while handing over');
    release();
    await flush();
    assert.deepEqual(state.applied, [false]);
    assert.ok(
      state.logs.some((line) => line.startsWith('1 Health check failing (2 in a row)')),
      state.logs.join('\n'),
    );
    state.master = false;
    healthy = true;
    await timers.advance(2000);
    assert.deepEqual(state.applied, [false, true]);
  });

  test('recovering during the drain keeps the role; removing a failing check makes the server eligible', async () => {
    const timers = new ManualTimers();
    const { work, state } = host(timers, true);
    let release!: () => void;
    void work.exclusive(() => new Promise<void>((resolve) => (release = resolve)));
    let healthy = false;
    work.setHealthCheck(() => healthy, { interval: 1, rise: 1, fall: 1 });
    await timers.advance(0);
    healthy = true;
    await timers.advance(1000);
    assert.equal(work.health?.state, 'passing');
    release();
    await flush();
    assert.deepEqual(state.applied.at(-1), true, 'healthy again by the end of the drain: still eligible');
    assert.equal((await work.exclusive(() => 1)).ran, true, 'and the gate is open again');
    healthy = false;
    await timers.advance(1000);
    state.master = false;
    await flush();
    work.setHealthCheck(null);
    assert.equal(work.health, null);
    assert.equal(state.applied.at(-1), true);
  });

  test('a failing check replaced by another: eligible again at once, and the new one decides from its first result', async () => {
    const timers = new ManualTimers();
    const { work, state } = host(timers, false);
    work.setHealthCheck(() => false, { interval: 1, rise: 1, fall: 1 });
    await timers.advance(0);
    assert.deepEqual(state.applied, [false]);
    work.setHealthCheck(() => true, { interval: 1, rise: 1, fall: 1 });
    assert.deepEqual(state.applied, [false, true], 'the new check has no result yet: counted as healthy');
    await timers.advance(0);
    assert.equal(work.health?.state, 'passing');
    assert.equal(state.applied.at(-1), true);
    work.setHealthCheck(() => false, { interval: 1, rise: 1, fall: 1 });
    await timers.advance(0);
    assert.equal(state.applied.at(-1), false, 'a replacement that fails at once makes it ineligible again');
  });
});
