/**
 * exclusive() with real pixl-server processes on loopback (tools/child.ts with tools/work.ts):
 * every member calls exclusive() every 40 ms, each call a job that writes its start and end
 * with precise timestamps to one file. Whatever hands the role over on purpose (stepDown,
 * SIGTERM, a promote request, a failing health check), the next master's first job starts
 * after the last job of the master before it ended; a drain that times out aborts its jobs
 * first; the role lost against the master's will (quorum) aborts them at once. The same
 * through a real etcd. Order is read from the timestamps the work wrote, never from elapsed time.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ProcessCluster } from '../tools/process-cluster';
import { preciseNow } from '../tools/child';
import { readWork, workRuns, type WorkConfig, type WorkLine, type WorkRun } from '../tools/work';
import { EtcdCluster, etcdUnavailable, ETCD_PACKAGE } from '../tools/etcd-cluster';
import { waitFor } from './helpers/wait';

const TICK_S = 0.25;
const CHECK_BEATS = 3;
const WAIT_MS = 15_000;

let dir = '';
let files = 0;
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'psm-exclusive-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function workFile(): string {
  return path.join(dir, `work-${++files}.jsonl`);
}

async function cluster(
  hosts: string[],
  work: Omit<WorkConfig, 'file'>,
  multi: Record<string, unknown> = {},
  tick = TICK_S,
): Promise<{ cluster: ProcessCluster; file: string }> {
  const file = workFile();
  const made = new ProcessCluster({ heartbeatFreq: tick, checkBeats: CHECK_BEATS, multi, work: { file, ...work } });
  try {
    await Promise.all(hosts.map((host) => made.start(host, {}, true)));
    await made.release(hosts);
  } catch (err) {
    await made.stopAll();
    throw err;
  }
  return { cluster: made, file };
}

function lines(file: string, host?: string, event?: WorkLine['event']): WorkLine[] {
  return readWork(file).filter((line) => (host === undefined || line.host === host) && (event === undefined || line.event === event));
}

/** Resolve once `host` has started `count` jobs (the file read every 20 ms). */
function jobsStarted(file: string, host: string, count: number, what = `${host} to run ${count} job(s)`): Promise<void> {
  return waitFor(() => lines(file, host, 'start').length >= count, what, WAIT_MS, 20);
}

/** Every run of the master role the work shows, each starting after the previous one ended; returns them. */
/** Every other live server's record of `host` shows its health check as `pattern` (their state asked every 100 ms). */
async function peersSee(c: ProcessCluster, host: string, pattern: RegExp, what: string): Promise<void> {
  const others = c.live().filter((other) => other !== host);
  const ask = setInterval(() => {
    for (const other of others) c.command(other, { cmd: 'state' });
  }, 100);
  try {
    await c.waitFor(
      () => others.every((other) => pattern.test(c.state(other)?.peerHealth[host] ?? '')),
      WAIT_MS,
      `${others.join(' and ')} to see ${host}'s health check ${what}`,
    );
  } catch (err) {
    const seen = others.map((other) => `${other}: ${JSON.stringify(c.state(other)?.peerHealth[host])}`).join(', ');
    throw new Error(`${(err as Error).message} (they see ${seen})`);
  } finally {
    clearInterval(ask);
  }
}

/**
 * Every run of the master role the work shows starts after each job of the run before it ended
 * or had its signal aborted (docs/SPEC.md §9.6); returns the runs. The same host may follow
 * itself under a higher term: a master stalled past what its peers wait steps down as it wakes,
 * aborting its jobs (`role-lost`), and is elected again (§4.11); this work ignores the signal,
 * so those jobs log their end later, but their writes are fenced by then. A term bump that
 * aborted nothing (a master outbidding a term while its jobs go on) still fails here.
 */
function assertNoOverlap(file: string): WorkRun[] {
  const runs = workRuns(readWork(file));
  for (let i = 1; i < runs.length; i++) {
    const before = runs[i - 1]!;
    const run = runs[i]!;
    assert.ok(run.term > before.term, `terms grow: ${JSON.stringify(runs)}`);
    assert.ok(
      run.firstStart > before.lastSettled,
      `${run.host} (term ${run.term}) started a job ${(before.lastSettled - run.firstStart).toFixed(1)} ms before ${before.host}'s last job (term ${before.term}) ended or was aborted: ${JSON.stringify(runs)}`,
    );
  }
  return runs;
}

/** The hosts that held the role, in order: a host that lost it and took it back (a stall) counts once. */
function holders(runs: WorkRun[]): string[] {
  return runs.map((run) => run.host).filter((host, i, all) => i === 0 || all[i - 1] !== host);
}

/** The last run of `host`'s master role. */
function lastRun(runs: WorkRun[], host: string): WorkRun | undefined {
  return runs.filter((run) => run.host === host).at(-1);
}

describe('exclusive(): real processes, UDP heartbeats', () => {
  test('stepDown() while jobs run: it waits for them, and the next master starts after the last one ended', async () => {
    const { cluster: c, file } = await cluster(['alpha', 'bravo', 'charlie'], { everyMs: 40, jobMs: 300 });
    try {
      await c.waitAgreed(WAIT_MS, 'alpha');
      await jobsStarted(file, 'alpha', 5);
      c.command('alpha', { cmd: 'stepdown' });
      await c.waitFor(() => c.reports.some((r) => r.host === 'alpha' && r.type === 'steppeddown'), WAIT_MS, 'alpha to step down');
      const stepped = c.reports.find((r) => r.host === 'alpha' && r.type === 'steppeddown')!;
      assert.equal(stepped.detail, undefined, `stepDown failed: ${stepped.detail}`);
      await c.waitAgreed(WAIT_MS, 'bravo');
      await jobsStarted(file, 'bravo', 1);
      const runs = assertNoOverlap(file);
      const alpha = lastRun(runs, 'alpha')!;
      assert.equal(alpha.aborts, 0, 'nothing aborted: every job ended within drain_timeout');
      assert.ok(stepped.t >= alpha.lastEnd, 'stepDown() resolved after the last job ended');
      // Each job began only while its server was master (a handover closes the gate first).
      assert.deepEqual([...new Set(lines(file, undefined, 'start').map((line) => line.host))].sort(), ['alpha', 'bravo']);
    } finally {
      await c.stopAll();
    }
  });

  test('SIGTERM to the master while jobs run: it leaves once they ended, and the next master starts after', async () => {
    const { cluster: c, file } = await cluster(['alpha', 'bravo', 'charlie'], { everyMs: 40, jobMs: 400 });
    try {
      await c.waitAgreed(WAIT_MS, 'alpha');
      await jobsStarted(file, 'alpha', 5);
      assert.equal(await c.stop('alpha'), 0);
      await c.waitAgreed(WAIT_MS, 'bravo');
      await jobsStarted(file, 'bravo', 1);
      const runs = assertNoOverlap(file);
      assert.equal(lastRun(runs, 'alpha')?.aborts, 0);
    } finally {
      await c.stopAll();
    }
  });

  test('promote() of another server while jobs longer than a tock run: it waits for the drain (no failure), then takes over', async () => {
    // Jobs of 1.5 s, a tock of 0.75 s: the promote outlasts its own tock, kept waiting by the master's heartbeats.
    const { cluster: c, file } = await cluster(['alpha', 'bravo', 'charlie'], { everyMs: 100, jobMs: 1500 });
    try {
      await c.waitAgreed(WAIT_MS, 'alpha');
      await jobsStarted(file, 'alpha', 3);
      const asked = preciseNow();
      c.command('charlie', { cmd: 'promote' });
      await c.waitFor(() => c.reports.some((r) => r.host === 'charlie' && r.type === 'promoted'), WAIT_MS, "charlie's promote() to settle");
      const promoted = c.reports.find((r) => r.host === 'charlie' && r.type === 'promoted')!;
      assert.equal(promoted.detail, undefined, `promote() failed: ${promoted.detail}`);
      await c.waitAgreed(WAIT_MS, 'charlie');
      await jobsStarted(file, 'charlie', 1);
      assertNoOverlap(file);
      assert.ok(promoted.t - asked > c.tockMs, 'the drain outlasted a tock (a job just started runs 1.5 s), and the promote waited it out');
    } finally {
      await c.stopAll();
    }
  });

  test("preemption: a server that ranks first joins, and after preempt_delay takes the role once the master's jobs ended", async () => {
    const file = workFile();
    const c = new ProcessCluster({
      heartbeatFreq: TICK_S,
      checkBeats: CHECK_BEATS,
      multi: { preempt: true, preempt_delay: 1 },
      work: { file, everyMs: 40, jobMs: 300 },
    });
    try {
      await c.start('bravo');
      await c.start('charlie');
      await c.waitAgreed(WAIT_MS, 'bravo');
      await jobsStarted(file, 'bravo', 3);
      await c.start('alpha', { priority: 5 });
      await c.waitAgreed(WAIT_MS, 'alpha');
      await jobsStarted(file, 'alpha', 1);
      const runs = assertNoOverlap(file);
      assert.deepEqual(holders(runs), ['bravo', 'alpha']);
      const followed = c.reports.find((r) => r.host === 'alpha' && r.type === 'masterchange' && r.detail === 'bravo')!;
      const took = c.reports.find((r) => r.host === 'alpha' && r.type === 'master')!;
      assert.ok(
        took.t - followed.t >= 1000,
        `alpha took the role ${(took.t - followed.t).toFixed(0)} ms after it began to follow bravo (preempt_delay 1 s)`,
      );
    } finally {
      await c.stopAll();
    }
  });

  test('a failing health check: the master drains, steps down; once it passes again the server can be master again', async () => {
    const { cluster: c, file } = await cluster(['alpha', 'bravo', 'charlie'], {
      everyMs: 40,
      jobMs: 300,
      health: { interval: 0.1, rise: 2, fall: 2 },
    });
    try {
      await c.waitAgreed(WAIT_MS, 'alpha');
      await c.waitFor(() => c.state('alpha')?.health === 'passing', WAIT_MS, "alpha's check to pass");
      await jobsStarted(file, 'alpha', 5);
      c.command('alpha', { cmd: 'healthy', value: false });
      await c.waitAgreed(WAIT_MS, 'bravo');
      assert.equal(c.state('alpha')?.health, 'failing');
      // The other servers see why alpha is not eligible: its check fails (fall 2: 2 in a row, or more).
      await peersSee(c, 'alpha', /^failing ([2-9]|\d{2,})\/2$/, 'failing');
      await jobsStarted(file, 'bravo', 1);
      assertNoOverlap(file);
      // Recovered: eligible again. bravo steps down, and alpha (first in rank) takes the role.
      c.command('alpha', { cmd: 'healthy', value: true });
      await c.waitFor(() => c.state('alpha')?.health === 'passing', WAIT_MS, "alpha's check to pass again");
      await peersSee(c, 'alpha', /^passing$/, 'passing');
      c.command('bravo', { cmd: 'stepdown' });
      await c.waitAgreed(WAIT_MS, 'alpha');
      await jobsStarted(file, 'alpha', lines(file, 'alpha', 'start').length + 1, 'alpha to run jobs again');
      assertNoOverlap(file);
    } finally {
      await c.stopAll();
    }
  });

  test('drain_timeout: jobs still running are aborted (drain-timeout) before the next master may start', async () => {
    const { cluster: c, file } = await cluster(['alpha', 'bravo'], { everyMs: 40, jobMs: 4000 }, { drain_timeout: 0.3 });
    try {
      await c.waitAgreed(WAIT_MS, 'alpha');
      await jobsStarted(file, 'alpha', 3);
      c.command('alpha', { cmd: 'stepdown' });
      await c.waitAgreed(WAIT_MS, 'bravo');
      await jobsStarted(file, 'bravo', 1);
      const aborts = lines(file, 'alpha', 'abort');
      const started = lines(file, 'alpha', 'start').length;
      assert.equal(aborts.length, started, 'every job of alpha was aborted');
      assert.ok(
        aborts.every((line) => line.kind === 'drain-timeout'),
        JSON.stringify(aborts),
      );
      const bravoFirst = lines(file, 'bravo', 'start')[0]!.t;
      assert.ok(bravoFirst > Math.max(...aborts.map((line) => line.t)), 'bravo started after alpha aborted its jobs');
    } finally {
      await c.stopAll();
    }
  });

  test('every server frozen past the failover time (a loaded machine): the master steps down as it wakes, before its work starts another job, and runs the next ones under a new term', async () => {
    // What a full suite on a busy machine did to the preemption test: every process starved at
    // once for longer than peers wait for a master. Frozen here with SIGSTOP, as the scheduler
    // freezes them, for 2 tocks: the length is not asserted, only what the work shows after.
    const { cluster: c, file } = await cluster(['bravo', 'charlie'], { everyMs: 40, jobMs: 300 });
    const pids = ['bravo', 'charlie'].map((host) => c.pid(host)!);
    try {
      await c.waitAgreed(WAIT_MS, 'bravo');
      await jobsStarted(file, 'bravo', 5);
      const before = lines(file, 'bravo', 'start')[0]!.term;
      const seen = c.reports.length;
      for (const pid of pids) process.kill(pid, 'SIGSTOP');
      await new Promise((resolve) => setTimeout(resolve, 2 * c.tockMs));
      const resumed = preciseNow();
      for (const pid of pids) process.kill(pid, 'SIGCONT');
      await c.waitFor(
        () => c.reports.slice(seen).some((r) => r.host === 'bravo' && r.type === 'slave'),
        WAIT_MS,
        'bravo to step down as it wakes',
      );
      await c.waitAgreed(WAIT_MS);
      const next = c.agreedMaster()!;
      await jobsStarted(file, next, lines(file, next, 'start').length + 1, `${next} to run jobs again`);
      const runs = assertNoOverlap(file);
      const old = runs.find((run) => run.host === 'bravo' && run.term === before)!;
      assert.ok(old.aborts > 0 && lines(file, 'bravo', 'abort').every((line) => line.kind === 'role-lost'), JSON.stringify(runs));
      assert.ok(runs.at(-1)!.term > old.term, `a new term after the stall: ${JSON.stringify(runs)}`);
      // Its 40 ms timer fires before the election's as it wakes: it found the role given up already.
      const late = lines(file, 'bravo', 'start').filter((line) => line.term === before && line.t >= resumed);
      assert.deepEqual(late, [], 'no job began under the old term once the stall was over');
    } finally {
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGCONT');
        } catch {
          // Already gone.
        }
      }
      await c.stopAll();
    }
  });

  test("the role lost against the master's will (quorum lost) aborts the running jobs at once (role-lost)", async () => {
    const { cluster: c, file } = await cluster(['alpha', 'bravo'], { everyMs: 40, jobMs: 10_000 }, { quorum: 2 });
    try {
      await c.waitAgreed(WAIT_MS, 'alpha');
      await jobsStarted(file, 'alpha', 3);
      c.kill('bravo');
      await c.waitFor(() => c.state('alpha')?.master === false, WAIT_MS, 'alpha to lose quorum');
      await waitFor(
        () => lines(file, 'alpha', 'abort').length >= lines(file, 'alpha', 'start').length,
        "alpha's running jobs to be aborted",
        WAIT_MS,
        20,
      );
      const aborts = lines(file, 'alpha', 'abort');
      assert.equal(aborts.length, lines(file, 'alpha', 'start').length, 'every running job was aborted');
      assert.ok(
        aborts.every((line) => line.kind === 'role-lost'),
        JSON.stringify(aborts),
      );
      assert.equal(lines(file, 'alpha', 'end').length, 0, 'aborted long before they would have ended');
    } finally {
      await c.stopAll();
    }
  });
});

const unavailable = etcdUnavailable();

describe('exclusive(): real processes, etcd', {
  skip: unavailable ? `real etcd needed: ${unavailable} (Debian package ${ETCD_PACKAGE})` : false,
}, () => {
  let etcd: EtcdCluster;
  before(async () => {
    etcd = await EtcdCluster.start();
  });
  after(async () => {
    await etcd?.close();
  });

  test('stepDown(), SIGTERM and a promote request while jobs run: each next master starts after the last job of the one before', async () => {
    const coordinator = {
      type: 'etcd',
      hosts: etcd.endpoints,
      ttl: 2,
      election_timeout_ms: etcd.electionMs,
      prefix: `/psm-exclusive-${process.pid}/`,
    };
    const file = workFile();
    const c = new ProcessCluster({ heartbeatFreq: 1, checkBeats: 2, multi: { coordinator }, work: { file, everyMs: 40, jobMs: 300 } });
    try {
      const hosts = ['alpha', 'bravo', 'charlie'];
      await Promise.all(hosts.map((host, i) => c.start(host, { bind_ip: `127.0.0.${i + 2}` }, true)));
      await c.release(hosts);
      await c.waitAgreed(WAIT_MS, 'alpha');
      await jobsStarted(file, 'alpha', 5);
      c.command('alpha', { cmd: 'stepdown' });
      await c.waitAgreed(WAIT_MS, 'bravo');
      await jobsStarted(file, 'bravo', 5);
      assert.equal(await c.stop('bravo'), 0);
      await c.waitAgreed(WAIT_MS);
      const next = c.agreedMaster()!;
      await jobsStarted(file, next, lines(file, next, 'start').length + 1, `${next} to run jobs`);
      const runs = assertNoOverlap(file);
      assert.deepEqual(
        runs.slice(0, 2).map((run) => run.host),
        ['alpha', 'bravo'],
      );
      assert.ok(runs.every((run) => run.aborts === 0));
      // promote() of the server that is not master: the master drains, then hands over.
      const asker = hosts.find((host) => host !== next && c.live().includes(host))!;
      c.command(asker, { cmd: 'promote' });
      await c.waitFor(() => c.reports.some((r) => r.host === asker && r.type === 'promoted'), WAIT_MS, `${asker}'s promote() to settle`);
      const promoted = c.reports.find((r) => r.host === asker && r.type === 'promoted')!;
      assert.equal(promoted.detail, undefined, `promote() failed: ${promoted.detail}`);
      await c.waitAgreed(WAIT_MS, asker);
      await jobsStarted(file, asker, lines(file, asker, 'start').length + 1, `${asker} to run jobs`);
      assertNoOverlap(file);
    } finally {
      await c.stopAll();
    }
  });
});
