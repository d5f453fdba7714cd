/**
 * `pixl-server-multi run` as a cluster, with real processes on loopback: three wrappers, each
 * running tools/run-child.js (which starts a grandchild and logs its start, SIGTERM and end
 * with precise times). Checked by pid (the processes of a test carry a token in their
 * environment) and by the children's own timestamps:
 *  - exactly the master's command and grandchild run;
 *  - SIGTERM to the master's wrapper: its command and grandchild end before the next
 *    master's command starts (a graceful handoff, no overlap);
 *  - SIGKILL of the master's wrapper: its guardian ends them before anyone else takes over;
 *  - SIGSTOP past the failover deadline: the same, and the woken wrapper runs nothing;
 *    a stall shorter than the guardian's silence changes nothing, a longer one short of a
 *    failover restarts the command on the same master;
 *  - a guardian killed or frozen on its own cannot leave the run behind;
 *  - the etcd mode: the lease holder alone runs the command.
 * Waits are for conditions, with generous deadlines; no elapsed time is asserted.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { bothStarted, hostsOf, now, pidNamespacesPermitted, RunWrappers, starts } from '../tools/run-wrappers';
import { EtcdCluster, etcdUnavailable, ETCD_PACKAGE } from '../tools/etcd-cluster';
import type { RunChildLine } from '../tools/run-child';

const TICK_S = 1;
/** Generous: a loaded machine runs these too. */
const DEADLINE_MS = 20_000;
const HOSTS = ['alpha', 'bravo', 'charlie'];

const namespaces = pidNamespacesPermitted;

const open: RunWrappers[] = [];
after(async () => {
  await Promise.all(open.map((w) => w.close()));
});

function wrappers(options: ConstructorParameters<typeof RunWrappers>[0]): RunWrappers {
  const w = new RunWrappers(options);
  open.push(w);
  return w;
}

/** Start three wrappers and wait until exactly one command (and its grandchild) runs. */
async function cluster(args: string[] = [], childArgs: string[] = []): Promise<{ w: RunWrappers; master: string; term: number }> {
  const w = wrappers({ heartbeatFreq: TICK_S, args, childArgs: ['--linger', '300', ...childArgs] });
  for (const host of HOSTS) await w.start(host);
  await w.waitFor(() => bothStarted(w) && w.commandProcesses().length === 2, DEADLINE_MS, 'one command and its grandchild');
  const start = w.lines().find((l) => l.event === 'start' && l.role === 'child') as RunChildLine;
  return { w, master: start.host, term: start.term };
}

describe('run: a 3-wrapper cluster on loopback', () => {
  test('exactly the master\'s command and grandchild run, with MULTI_TERM and MULTI_MASTER', async () => {
    const { w, master, term } = await cluster();
    assert.equal(master, 'alpha', 'alpha ranks first');
    assert.ok(term >= 1);
    // Over two ticks more, nothing else starts anywhere.
    const until = now() + 2000;
    await w.waitFor(() => now() > until, 5000, 'two ticks');
    const running = w.commandProcesses();
    assert.deepEqual(hostsOf(running), ['alpha'], `processes: ${JSON.stringify(running)}`);
    assert.deepEqual(running.map((p) => p.role).sort(), ['child', 'grandchild']);
    assert.equal(starts(w).length, 1);
    const env = readFileSync(`/proc/${running.find((p) => p.role === 'child')?.pid}/environ`, 'utf8').split('\0');
    assert.ok(env.includes('MULTI_MASTER=alpha') && env.includes('MULTI_HOSTNAME=alpha') && env.includes(`MULTI_TERM=${term}`), env.filter((v) => v.startsWith('MULTI_')).join(' '));
  });

  test('SIGTERM to the master\'s wrapper: its command and grandchild end, then the next master starts its own; the wrapper exits 0', async () => {
    const { w, master } = await cluster();
    const old = w.commandProcesses();
    w.kill(master, 'SIGTERM');
    const exit = await w.wrapper(master).exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    await w.waitFor(() => starts(w).length === 2, DEADLINE_MS, 'the next master\'s command');
    const next = starts(w)[1] as RunChildLine;
    assert.equal(next.host, 'bravo');
    const ends = w.lines().filter((l) => l.host === master && l.event === 'end');
    assert.equal(ends.length, 2, 'the command and its grandchild each ran their SIGTERM cleanup to the end');
    for (const end of ends) assert.ok(end.t < next.t, `${end.role} of ${master} ended at ${end.t}, after bravo's command started at ${next.t}`);
    for (const p of old) assert.equal(RunWrappers.exists(p), false, `${p.role} ${p.pid} still runs`);
    await w.waitFor(() => w.commandProcesses().length === 2, DEADLINE_MS, 'bravo\'s command and grandchild');
    assert.deepEqual(hostsOf(w.commandProcesses()), ['bravo']);
    assert.ok(next.term > (starts(w, master)[0] as RunChildLine).term, 'the term rose');
  });

  test('SIGKILL of the master\'s wrapper: its guardian ends command and grandchild before another wrapper starts its own', async () => {
    const { w, master } = await cluster();
    const old = w.commandProcesses();
    const killedAt = w.kill(master, 'SIGKILL');
    await w.waitFor(() => old.every((p) => !RunWrappers.exists(p)), DEADLINE_MS, 'the killed wrapper\'s command and grandchild to end');
    await w.waitFor(() => starts(w).length === 2, DEADLINE_MS, 'another master\'s command');
    const next = starts(w)[1] as RunChildLine;
    assert.notEqual(next.host, master);
    const ends = w.lines().filter((l) => l.host === master && l.event === 'end');
    assert.equal(ends.length, 2, 'both got SIGTERM and finished their cleanup');
    for (const end of ends) assert.ok(end.t > killedAt && end.t < next.t, `${end.role} ended at ${end.t}; the wrapper died at ${killedAt}, the next command started at ${next.t}`);
    await w.waitFor(() => w.commandProcesses().length === 2, DEADLINE_MS, 'the new master\'s command and grandchild');
    assert.deepEqual(hostsOf(w.commandProcesses()), [next.host]);
  });

  test('SIGSTOP of the master\'s wrapper past the failover deadline: its run ends before another starts; woken, it runs nothing', async () => {
    const { w, master } = await cluster();
    const old = w.commandProcesses();
    w.kill(master, 'SIGSTOP');
    await w.waitFor(() => starts(w).length === 2, DEADLINE_MS, 'another master\'s command');
    const next = starts(w)[1] as RunChildLine;
    assert.notEqual(next.host, master);
    for (const p of old) assert.equal(RunWrappers.exists(p), false, `${p.role} ${p.pid} of the frozen wrapper still runs`);
    const ends = w.lines().filter((l) => l.host === master && l.event === 'end');
    assert.equal(ends.length, 2);
    for (const end of ends) assert.ok(end.t < next.t, `${end.role} ended at ${end.t}, after the next command started at ${next.t}`);
    const wokeAt = w.kill(master, 'SIGCONT');
    await w.waitFor(() => w.logged(master, /We are now a slave server|relinquishing/, wokeAt), DEADLINE_MS, `${master} to step down as it wakes`);
    // Two ticks after waking, still only the new master's run.
    const until = now() + 2000;
    await w.waitFor(() => now() > until, 5000, 'two ticks');
    assert.deepEqual(hostsOf(w.commandProcesses()), [next.host]);
    assert.equal(starts(w, master).length, 1, 'the woken wrapper started its command again');
  });
});

describe('run: stalls and a failing guardian', () => {
  test('a stall well under half the failover budget leaves the command alone; one past it (but short of a failover) stops it, and the wrapper, still master, starts it again', async () => {
    const { w, master } = await cluster();
    const first = w.commandProcesses();
    // Budget at tick 1 s, check_beats 3: 2250 ms; the guardian acts after 1125 ms of silence.
    w.kill(master, 'SIGSTOP');
    await new Promise((resolve) => setTimeout(resolve, 200));
    w.kill(master, 'SIGCONT');
    const until = now() + 1500;
    await w.waitFor(() => now() > until, 5000, 'a tick and a half');
    assert.ok(first.every((p) => RunWrappers.exists(p)), 'a 200 ms stall stopped the command');
    w.kill(master, 'SIGSTOP');
    await w.waitFor(() => first.every((p) => !RunWrappers.exists(p)), DEADLINE_MS, 'the guardian to stop the run of the frozen wrapper');
    w.kill(master, 'SIGCONT');
    await w.waitFor(() => bothStarted(w, 2), DEADLINE_MS, 'the command again');
    assert.deepEqual(hostsOf(w.commandProcesses()), [master], 'the same master runs it again: the stall was shorter than a failover');
    assert.ok(w.logged(master, /The guardian ended the command: this process was silent for \d+ ms/));
  });

  test('a guardian killed on its own: the run ends with it, and the wrapper starts the command again', async () => {
    for (const mode of namespaces ? ['on', 'off'] : ['off']) {
      const w = wrappers({ heartbeatFreq: 0.5, args: ['--pid-namespace', mode], childArgs: ['--ignore-term'] });
      await w.start('solo');
      await w.waitFor(() => bothStarted(w) && w.commandProcesses().length === 2, DEADLINE_MS, 'the command and its grandchild');
      const run = w.commandProcesses();
      const guardian = w.processes().find((p) => p.role === 'guardian' && readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').startsWith(process.execPath));
      assert.ok(guardian, `the guardian process (${mode})`);
      process.kill(guardian.pid, 'SIGKILL');
      await w.waitFor(() => run.every((p) => !RunWrappers.exists(p)), DEADLINE_MS, `the run to end with its guardian (--pid-namespace ${mode})`);
      await w.waitFor(() => bothStarted(w, 2), DEADLINE_MS, 'the command again');
    }
  });

  test('a frozen guardian cannot hold a stop: the wrapper kills the run itself after the grace', async () => {
    for (const mode of namespaces ? ['on', 'off'] : ['off']) {
      const w = wrappers({ heartbeatFreq: 0.5, args: ['--pid-namespace', mode, '--grace', '0.5'], childArgs: ['--ignore-term'] });
      const wrapper = await w.start('solo');
      await w.waitFor(() => bothStarted(w) && w.commandProcesses().length === 2, DEADLINE_MS, 'the command and its grandchild');
      const run = w.commandProcesses();
      const guardian = w.processes().find((p) => p.role === 'guardian' && readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').startsWith(process.execPath));
      assert.ok(guardian);
      process.kill(guardian.pid, 'SIGSTOP');
      w.kill('solo', 'SIGTERM');
      const exit = await wrapper.exited;
      assert.deepEqual(exit, { code: 0, signal: null });
      for (const p of run) assert.equal(RunWrappers.exists(p), false, `${p.role} outlived its wrapper (--pid-namespace ${mode})`);
      assert.ok(w.logged('solo', /Killing the command's .* from the wrapper: the guardian did not finish the stop in time/));
    }
  });
});

describe('run: mastership from etcd', { skip: etcdUnavailable() ? `real etcd needed: ${etcdUnavailable()} (Debian package ${ETCD_PACKAGE})` : false }, () => {
  test('the command runs on the lease holder only; SIGKILL of its wrapper ends it before the next lease holder starts its own', async () => {
    const etcd = await EtcdCluster.start();
    try {
      const w = wrappers({ heartbeatFreq: 0.5, childArgs: ['--linger', '100'] });
      const config = path.join(w.dir, 'etcd.json');
      writeFileSync(config, JSON.stringify({ coordinator: { type: 'etcd', hosts: etcd.endpoints, ttl: 2, election_timeout_ms: etcd.electionMs, prefix: `/psm-run-test-${process.pid}/` } }));
      w.args.push('--config', config);
      await w.start('alpha', { args: ['--bind-ip', '127.0.0.2'] });
      await w.start('bravo', { args: ['--bind-ip', '127.0.0.3'] });
      await w.waitFor(() => bothStarted(w) && w.commandProcesses().length === 2, DEADLINE_MS, 'the lease holder\'s command');
      const first = starts(w)[0] as RunChildLine;
      assert.ok(w.logged(first.host, /failover budget 133\d ms/), 'the budget is two thirds of the 2 s TTL');
      const old = w.commandProcesses();
      const killedAt = w.kill(first.host, 'SIGKILL');
      await w.waitFor(() => starts(w).length === 2, DEADLINE_MS, 'the next lease holder\'s command');
      const next = starts(w)[1] as RunChildLine;
      assert.notEqual(next.host, first.host);
      assert.ok(next.term > first.term);
      for (const p of old) assert.equal(RunWrappers.exists(p), false);
      for (const end of w.lines().filter((l) => l.host === first.host && l.event === 'end')) assert.ok(end.t > killedAt && end.t < next.t);
    } finally {
      await Promise.all(open.splice(0).map((w) => w.close()));
      await etcd.close();
    }
  });
});

