/**
 * `pixl-server-multi run` as a cluster, with real processes on loopback: three wrappers, each
 * running tools/run-child.js (which starts a grandchild and logs its start, SIGTERM and end
 * with precise times). Checked by pid (the processes of a test carry a token in their
 * environment) and by the children's own timestamps:
 *  - exactly the master's command and grandchild run;
 *  - SIGTERM to the master's wrapper: its command and grandchild end before the next
 *    master's command starts (a graceful handoff, no overlap);
 *  - SIGKILL of the master's wrapper: its guardian ends them before anyone else takes over;
 *  - SIGSTOP past the failover deadline: the same, and the woken wrapper runs nothing.
 * Stalls, a failing guardian and the etcd mode: run.guardian.test.ts.
 * Waits are for conditions, with generous deadlines; no elapsed time is asserted.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { hostsOf, RunWrappers, starts } from '../tools/run-wrappers';
import type { RunChildLine } from '../tools/run-child';
import { cluster, DEADLINE_MS } from './helpers/run-cluster';
import { pause } from './helpers/wait';

describe('run: a 3-wrapper cluster on loopback', () => {
  test("exactly the master's command and grandchild run, with MULTI_TERM and MULTI_MASTER", async () => {
    const { w, master, term } = await cluster();
    assert.equal(master, 'alpha', 'alpha ranks first');
    assert.ok(term >= 1);
    // Over two ticks more, nothing else starts anywhere.
    await pause(2000);
    const running = w.commandProcesses();
    assert.deepEqual(hostsOf(running), ['alpha'], `processes: ${JSON.stringify(running)}`);
    assert.deepEqual(running.map((p) => p.role).sort(), ['child', 'grandchild']);
    assert.equal(starts(w).length, 1);
    const env = readFileSync(`/proc/${running.find((p) => p.role === 'child')?.pid}/environ`, 'utf8').split('\0');
    assert.ok(
      env.includes('MULTI_MASTER=alpha') && env.includes('MULTI_HOSTNAME=alpha') && env.includes(`MULTI_TERM=${term}`),
      env.filter((v) => v.startsWith('MULTI_')).join(' '),
    );
  });

  test("SIGTERM to the master's wrapper: its command and grandchild end, then the next master starts its own; the wrapper exits 0", async () => {
    const { w, master } = await cluster();
    const old = w.commandProcesses();
    w.kill(master, 'SIGTERM');
    const exit = await w.wrapper(master).exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    await w.waitFor(() => starts(w).length === 2, DEADLINE_MS, "the next master's command");
    const next = starts(w)[1] as RunChildLine;
    assert.equal(next.host, 'bravo');
    const ends = w.lines().filter((l) => l.host === master && l.event === 'end');
    assert.equal(ends.length, 2, 'the command and its grandchild each ran their SIGTERM cleanup to the end');
    for (const end of ends)
      assert.ok(end.t < next.t, `${end.role} of ${master} ended at ${end.t}, after bravo's command started at ${next.t}`);
    for (const p of old) assert.equal(RunWrappers.exists(p), false, `${p.role} ${p.pid} still runs`);
    await w.waitFor(() => w.commandProcesses().length === 2, DEADLINE_MS, "bravo's command and grandchild");
    assert.deepEqual(hostsOf(w.commandProcesses()), ['bravo']);
    assert.ok(next.term > (starts(w, master)[0] as RunChildLine).term, 'the term rose');
  });

  test("SIGKILL of the master's wrapper: its guardian ends command and grandchild before another wrapper starts its own", async () => {
    const { w, master } = await cluster();
    const old = w.commandProcesses();
    const killedAt = w.kill(master, 'SIGKILL');
    await w.waitFor(() => old.every((p) => !RunWrappers.exists(p)), DEADLINE_MS, "the killed wrapper's command and grandchild to end");
    await w.waitFor(() => starts(w).length === 2, DEADLINE_MS, "another master's command");
    const next = starts(w)[1] as RunChildLine;
    assert.notEqual(next.host, master);
    const ends = w.lines().filter((l) => l.host === master && l.event === 'end');
    assert.equal(ends.length, 2, 'both got SIGTERM and finished their cleanup');
    for (const end of ends)
      assert.ok(
        end.t > killedAt && end.t < next.t,
        `${end.role} ended at ${end.t}; the wrapper died at ${killedAt}, the next command started at ${next.t}`,
      );
    await w.waitFor(() => w.commandProcesses().length === 2, DEADLINE_MS, "the new master's command and grandchild");
    assert.deepEqual(hostsOf(w.commandProcesses()), [next.host]);
  });

  test("SIGSTOP of the master's wrapper past the failover deadline: its run ends before another starts; woken, it runs nothing", async () => {
    const { w, master } = await cluster();
    const old = w.commandProcesses();
    w.kill(master, 'SIGSTOP');
    await w.waitFor(() => starts(w).length === 2, DEADLINE_MS, "another master's command");
    const next = starts(w)[1] as RunChildLine;
    assert.notEqual(next.host, master);
    for (const p of old) assert.equal(RunWrappers.exists(p), false, `${p.role} ${p.pid} of the frozen wrapper still runs`);
    const ends = w.lines().filter((l) => l.host === master && l.event === 'end');
    assert.equal(ends.length, 2);
    for (const end of ends) assert.ok(end.t < next.t, `${end.role} ended at ${end.t}, after the next command started at ${next.t}`);
    const wokeAt = w.kill(master, 'SIGCONT');
    await w.waitFor(
      () => w.logged(master, /We are now a slave server|relinquishing/, wokeAt),
      DEADLINE_MS,
      `${master} to step down as it wakes`,
    );
    // Two ticks after waking, still only the new master's run.
    await pause(2000);
    assert.deepEqual(hostsOf(w.commandProcesses()), [next.host]);
    assert.equal(starts(w, master).length, 1, 'the woken wrapper started its command again');
  });
});
