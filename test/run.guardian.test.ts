/**
 * `pixl-server-multi run` with real processes on loopback (see run.cluster.test.ts for the
 * cluster's basic handoffs): a stall shorter than the guardian's silence changes nothing, a
 * longer one short of a failover restarts the command on the same master; a guardian killed
 * or frozen on its own cannot leave the run behind; the etcd mode: the lease holder alone
 * runs the command. Waits are for conditions, with generous deadlines; no elapsed time is asserted.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { bothStarted, hostsOf, pidNamespacesPermitted, RunWrappers, starts } from '../tools/run-wrappers';
import { EtcdCluster, etcdUnavailable, ETCD_PACKAGE } from '../tools/etcd-cluster';
import type { RunChildLine } from '../tools/run-child';
import { closeAll, cluster, DEADLINE_MS, wrappers } from './helpers/run-cluster';
import { pause } from './helpers/wait';

const namespaces = pidNamespacesPermitted;

describe('run: stalls and a failing guardian', () => {
  test('a stall well under half the failover budget leaves the command alone; one past it (but short of a failover) stops it, and the wrapper, still master, starts it again', async () => {
    const { w, master } = await cluster();
    const first = w.commandProcesses();
    // Budget at tick 1 s, check_beats 3: 2250 ms; the guardian acts after 1125 ms of silence.
    w.kill(master, 'SIGSTOP');
    await pause(200); // the stall itself
    w.kill(master, 'SIGCONT');
    // A tick and a half in which the command must not be stopped.
    await pause(1500);
    assert.ok(
      first.every((p) => RunWrappers.exists(p)),
      'a 200 ms stall stopped the command',
    );
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
      const guardian = w
        .processes()
        .find((p) => p.role === 'guardian' && readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').startsWith(process.execPath));
      assert.ok(guardian, `the guardian process (${mode})`);
      process.kill(guardian.pid, 'SIGKILL');
      await w.waitFor(
        () => run.every((p) => !RunWrappers.exists(p)),
        DEADLINE_MS,
        `the run to end with its guardian (--pid-namespace ${mode})`,
      );
      await w.waitFor(() => bothStarted(w, 2), DEADLINE_MS, 'the command again');
    }
  });

  test('a frozen guardian cannot hold a stop: the wrapper kills the run itself after the grace', async () => {
    for (const mode of namespaces ? ['on', 'off'] : ['off']) {
      const w = wrappers({ heartbeatFreq: 0.5, args: ['--pid-namespace', mode, '--grace', '0.5'], childArgs: ['--ignore-term'] });
      const wrapper = await w.start('solo');
      await w.waitFor(() => bothStarted(w) && w.commandProcesses().length === 2, DEADLINE_MS, 'the command and its grandchild');
      const run = w.commandProcesses();
      const guardian = w
        .processes()
        .find((p) => p.role === 'guardian' && readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').startsWith(process.execPath));
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

describe('run: mastership from etcd', {
  skip: etcdUnavailable() ? `real etcd needed: ${etcdUnavailable()} (Debian package ${ETCD_PACKAGE})` : false,
}, () => {
  test('the command runs on the lease holder only; SIGKILL of its wrapper ends it before the next lease holder starts its own', async () => {
    const etcd = await EtcdCluster.start();
    try {
      const w = wrappers({ heartbeatFreq: 0.5, childArgs: ['--linger', '100'] });
      const config = path.join(w.dir, 'etcd.json');
      writeFileSync(
        config,
        JSON.stringify({
          coordinator: {
            type: 'etcd',
            hosts: etcd.endpoints,
            ttl: 2,
            election_timeout_ms: etcd.electionMs,
            prefix: `/psm-run-test-${process.pid}/`,
          },
        }),
      );
      w.args.push('--config', config);
      await w.start('alpha', { args: ['--bind-ip', '127.0.0.2'] });
      await w.start('bravo', { args: ['--bind-ip', '127.0.0.3'] });
      await w.waitFor(() => bothStarted(w) && w.commandProcesses().length === 2, DEADLINE_MS, "the lease holder's command");
      const first = starts(w)[0] as RunChildLine;
      assert.ok(w.logged(first.host, /failover budget 133\d ms/), 'the budget is two thirds of the 2 s TTL');
      const old = w.commandProcesses();
      const killedAt = w.kill(first.host, 'SIGKILL');
      await w.waitFor(() => starts(w).length === 2, DEADLINE_MS, "the next lease holder's command");
      const next = starts(w)[1] as RunChildLine;
      assert.notEqual(next.host, first.host);
      assert.ok(next.term > first.term);
      for (const p of old) assert.equal(RunWrappers.exists(p), false);
      for (const end of w.lines().filter((l) => l.host === first.host && l.event === 'end')) assert.ok(end.t > killedAt && end.t < next.t);
    } finally {
      await closeAll();
      await etcd.close();
    }
  });
});
