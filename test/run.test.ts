/**
 * `pixl-server-multi run` with real processes on loopback: three wrappers, each running
 * tools/run-child.js (which starts a grandchild and logs starts, SIGTERMs and ends with
 * precise times). Checked by pid (the processes of a test carry a token in their
 * environment) and by the children's own timestamps:
 *  - exactly the master's command and grandchild run;
 *  - SIGTERM to the master's wrapper: its command and grandchild end before the next
 *    master's command starts (a graceful handoff, no overlap);
 *  - SIGKILL of the master's wrapper: its guardian ends them, before anyone else takes over;
 *  - SIGSTOP past the failover deadline: the same, and the woken wrapper runs nothing;
 *  - a grandchild that left the process group (setsid) dies with the run in a pid namespace;
 *  - what happens when the command exits by itself: restart (backoff), step-down, exit;
 *  - hooks: when each runs and with what, a hanging one never delays the command, and the
 *    winner of a master conflict runs on-master again.
 * Waits are for conditions, with generous deadlines; no elapsed time is asserted.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { encode } from '../src/wire/codec';
import type { HeartbeatMessage } from '../src/protocol/messages';
import { CLI, now, RunWrappers, type RunProcess } from '../tools/run-wrappers';
import { EtcdCluster, etcdUnavailable, ETCD_PACKAGE } from '../tools/etcd-cluster';
import type { RunChildLine } from '../tools/run-child';

const TICK_S = 1;
/** Generous: a loaded machine runs these too. */
const DEADLINE_MS = 20_000;
const HOSTS = ['alpha', 'bravo', 'charlie'];

const namespaces = spawnSync('unshare', ['--pid', '--fork', '--kill-child', '--mount', '--propagation', 'slave', '--mount-proc', 'true']).status === 0;

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

function starts(w: RunWrappers, host?: string): RunChildLine[] {
  return w.lines().filter((l) => l.event === 'start' && l.role === 'child' && (host === undefined || l.host === host));
}

/** A command and its grandchild have both started (and so handle SIGTERM), `count` runs in all. */
function bothStarted(w: RunWrappers, count = 1): boolean {
  const lines = w.lines().filter((l) => l.event === 'start');
  return lines.filter((l) => l.role === 'child').length === count && lines.filter((l) => l.role === 'grandchild').length === count;
}

function hostsOf(processes: RunProcess[]): string[] {
  return [...new Set(processes.map((p) => p.host))];
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
      writeFileSync(config, JSON.stringify({ coordinator: { type: 'etcd', hosts: etcd.endpoints, ttl: 1, prefix: `/psm-run-test-${process.pid}/` } }));
      w.args.push('--config', config);
      await w.start('alpha', { args: ['--bind-ip', '127.0.0.2'] });
      await w.start('bravo', { args: ['--bind-ip', '127.0.0.3'] });
      await w.waitFor(() => bothStarted(w) && w.commandProcesses().length === 2, DEADLINE_MS, 'the lease holder\'s command');
      const first = starts(w)[0] as RunChildLine;
      assert.ok(w.logged(first.host, /failover budget 6\d\d ms/), 'the budget is two thirds of the 1 s TTL');
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

describe('run: the command\'s descendants', () => {
  test('with --pid-namespace off, SIGKILL of the wrapper still ends the command\'s process group', async () => {
    const w = wrappers({ heartbeatFreq: 0.5, args: ['--pid-namespace', 'off'], childArgs: ['--linger', '100'] });
    await w.start('solo');
    await w.waitFor(() => bothStarted(w) && w.commandProcesses().length === 2, DEADLINE_MS, 'the command and its grandchild');
    const run = w.commandProcesses();
    w.kill('solo', 'SIGKILL');
    await w.waitFor(() => run.every((p) => !RunWrappers.exists(p)), DEADLINE_MS, 'the command and grandchild to end');
    assert.equal(w.lines().filter((l) => l.event === 'end').length, 2, 'both ended their SIGTERM cleanup');
  });

  test('in a pid namespace, a grandchild that left the process group (setsid) ends with the run too', { skip: namespaces ? false : 'unshare --pid is not permitted here (it needs root)' }, async () => {
    const w = wrappers({ heartbeatFreq: 0.5, args: ['--pid-namespace', 'on'], childArgs: ['--grandchild', 'setsid', '--ignore-term'] });
    await w.start('solo');
    await w.waitFor(() => bothStarted(w) && w.commandProcesses().length === 2, DEADLINE_MS, 'the command and its setsid grandchild');
    const run = w.commandProcesses();
    w.kill('solo', 'SIGKILL');
    // Both ignore SIGTERM: only the guardian's SIGKILL (or the namespace's end) stops them.
    await w.waitFor(() => run.every((p) => !RunWrappers.exists(p)), DEADLINE_MS, 'the command and its detached grandchild to end');
    assert.equal(w.lines().filter((l) => l.event === 'term').length, 2, 'both were sent SIGTERM first');
  });
});

describe('run: when the command exits by itself', () => {
  test('--on-exit restart: restarted with a growing delay, while the rest of its group is stopped each time; on-fault runs with the exit code', async () => {
    const w = wrappers({ heartbeatFreq: 0.5, childArgs: ['--exit-after', '100', '--exit-code', '3'] });
    const faults = path.join(w.dir, 'faults');
    await w.start('solo', { args: ['--restart-delay', '0.2', '--on-fault', `echo "$MULTI_EVENT $MULTI_REASON $MULTI_EXIT_CODE $MULTI_TERM" >> ${faults}`] });
    await w.waitFor(() => starts(w).length >= 3, DEADLINE_MS, 'two restarts');
    const lines = w.lines();
    const [first, second, third] = starts(w) as [RunChildLine, RunChildLine, RunChildLine];
    const exitOf = (start: RunChildLine): RunChildLine => lines.find((l) => l.event === 'exit' && l.pid === start.pid && l.t > start.t && l.t < (starts(w).find((s) => s.t > start.t)?.t ?? Infinity)) as RunChildLine;
    const gap1 = second.t - exitOf(first).t;
    const gap2 = third.t - exitOf(second).t;
    assert.ok(gap1 >= 200, `first restart after ${gap1} ms: --restart-delay 0.2`);
    assert.ok(gap2 >= 400, `second restart after ${gap2} ms: the delay doubles`);
    // Each time, the grandchild left behind got SIGTERM before the next start.
    const grandEnds = lines.filter((l) => l.role === 'grandchild' && l.event === 'end');
    assert.ok(grandEnds.some((l) => l.t < second.t) && grandEnds.some((l) => l.t > second.t && l.t < third.t), 'grandchildren ended before each restart');
    await w.waitFor(() => readFileSync(faults, 'utf8').split('\n').filter(Boolean).length >= 2, DEADLINE_MS, 'on-fault hooks');
    assert.match(readFileSync(faults, 'utf8').split('\n')[0] as string, /^fault exited 3 [1-9]\d*$/);
  });

  test('--on-exit step-down: the role moves to the next server, whose command then runs', async () => {
    const w = wrappers({ heartbeatFreq: 0.5, args: ['--on-exit', 'step-down'] });
    await w.start('alpha', { childArgs: ['--exit-after', '300', '--exit-code', '1'] });
    await w.start('bravo');
    await w.waitFor(() => starts(w, 'bravo').length === 1, DEADLINE_MS, 'bravo\'s command after alpha stepped down');
    const alphaEnds = w.lines().filter((l) => l.host === 'alpha' && (l.event === 'end' || l.event === 'exit'));
    const bravoStart = starts(w, 'bravo')[0] as RunChildLine;
    assert.equal(alphaEnds.length, 2, 'alpha\'s command exited and its grandchild was stopped');
    for (const end of alphaEnds) assert.ok(end.t < bravoStart.t);
    assert.ok(w.logged('alpha', /Handing the master role over: the command ended \(exit code 1\)/));
    // alpha stays in the cluster, a slave, and runs nothing.
    const until = now() + 1500;
    await w.waitFor(() => now() > until, 5000, 'three ticks');
    assert.deepEqual(hostsOf(w.commandProcesses()), ['bravo']);
    assert.equal(w.wrapper('alpha').alive, true);
  });

  test('--on-exit exit: the wrapper leaves the cluster and exits with the command\'s status; the other takes over at once', async () => {
    const w = wrappers({ heartbeatFreq: 0.5, args: ['--on-exit', 'exit'] });
    await w.start('alpha', { childArgs: ['--exit-after', '300', '--exit-code', '7', '--grandchild', 'none'] });
    await w.start('bravo');
    const exit = await w.wrapper('alpha').exited;
    assert.deepEqual(exit, { code: 7, signal: null });
    await w.waitFor(() => starts(w, 'bravo').length === 1, DEADLINE_MS, 'bravo\'s command');
    assert.ok(w.logged('bravo', /after alpha's shutdown notice/), 'bravo took over on alpha\'s shutdown notice, not after a silence');
  });
});

describe('run: hooks', () => {
  test('on-master and on-slave run with their environment; a hanging hook is killed at its timeout and never delays the command', async () => {
    const w = wrappers({ heartbeatFreq: 0.5 });
    const record = path.join(w.dir, 'hooks');
    writeFileSync(record, '');
    const args = [
      '--hook-timeout', '1',
      '--on-master', `echo "master $MULTI_HOSTNAME $MULTI_MASTER $MULTI_TERM $MULTI_REASON" >> ${record}; sleep 1000`,
      '--on-slave', `echo "slave $MULTI_HOSTNAME $MULTI_MASTER $MULTI_TERM $MULTI_REASON" >> ${record}`,
    ];
    await w.start('alpha', { args });
    await w.waitFor(() => starts(w, 'alpha').length === 1, DEADLINE_MS, 'alpha\'s command');
    assert.ok(readFileSync(record, 'utf8').startsWith('master alpha alpha 1 elected'), 'on-master ran, and the command started while it hangs');
    await w.start('bravo', { args });
    await w.waitFor(() => readFileSync(record, 'utf8').includes('slave bravo alpha'), DEADLINE_MS, 'bravo\'s on-slave');
    await w.waitFor(() => w.logged('alpha', /Hook on-master \(elected\) was killed by SIGTERM/), DEADLINE_MS, 'the hanging on-master hook to be killed');
    // alpha leaves: its command stops, then its on-slave runs (reason leaving), then bravo is master.
    w.kill('alpha', 'SIGTERM');
    await w.waitFor(() => starts(w, 'bravo').length === 1, DEADLINE_MS, 'bravo\'s command');
    const text = readFileSync(record, 'utf8');
    assert.match(text, /slave alpha alpha \d+ leaving/);
    assert.match(text, /master bravo bravo \d+ elected/);
    assert.ok(text.indexOf('slave alpha alpha') < text.indexOf('master bravo'), text);
  });

  test('a conflict: the loser stops its command (on-slave); the winner runs on-master again once the rival is gone, with its new term', async () => {
    const w = wrappers({ heartbeatFreq: 0.5 });
    const record = path.join(w.dir, 'hooks');
    writeFileSync(record, '');
    await w.start('mike', {
      args: ['--on-master', `echo "master $MULTI_TERM $MULTI_REASON" >> ${record}`, '--on-slave', `echo "slave $MULTI_MASTER $MULTI_REASON" >> ${record}`],
      childArgs: ['--grandchild', 'none'],
    });
    await w.waitFor(() => starts(w).length === 1, DEADLINE_MS, 'mike\'s command');
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    const forge = (hostname: string, term: number, seq: number): void => {
      const message: HeartbeatMessage = { action: 'heartbeat', hostname, ip: '127.0.0.1', master: true, eligible: true, uptime: 100, data: {}, term, iid: 'ab12ab12ab12ab12', seq };
      socket.send(encode(message), w.port, '127.0.0.1');
    };
    try {
      // A rival that ranks later ("zulu"): mike keeps the role and takes a term above it.
      for (let i = 1; i <= 3; i++) forge('zulu', 40, i);
      await w.waitFor(() => /master 4[1-9] conflict-won/.test(readFileSync(record, 'utf8')), DEADLINE_MS, 'on-master again after the conflict');
      assert.equal(starts(w).length, 1, 'the winner\'s command ran on');
      // A rival that ranks first ("alice"), with a higher term: mike relinquishes and stops its command.
      const before = w.commandProcesses();
      for (let i = 1; i <= 3; i++) forge('alice', 90, i);
      await w.waitFor(() => /slave \S* (follows|no-master)/.test(readFileSync(record, 'utf8')), DEADLINE_MS, 'on-slave on losing');
      await w.waitFor(() => before.every((p) => !RunWrappers.exists(p)), DEADLINE_MS, 'the loser\'s command to stop');
      // alice falls silent: mike is master again, and its command runs again.
      await w.waitFor(() => starts(w).length === 2, DEADLINE_MS, 'mike\'s command again after alice lapsed');
    } finally {
      socket.close();
    }
  });
});

describe('run: arguments', () => {
  const cli = (args: string[]): { status: number | null; stderr: string } => {
    const result = spawnSync(process.execPath, [CLI, 'run', ...args], { encoding: 'utf8', timeout: 20_000 });
    return { status: result.status, stderr: result.stderr };
  };

  test('a bad flag or config value exits 2 naming the flag or key and the value, before joining anything', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--heartbeat-freq', 'fast', '--', 'true'], /--heartbeat-freq fast: .*`heartbeat_freq`.*"fast"/],
      [['--port', '70000', '--', 'true'], /--port 70000: .*`comm_port`.*70000/],
      [['--broadcast-ip', '10.0.0', '--', 'true'], /--broadcast-ip 10\.0\.0: .*`broadcast_ip`/],
      [['--hostname', 'bad name', '--', 'true'], /--hostname bad name: .*`hostname`.*"bad name"/],
      [['--grace', '-1', '--', 'true'], /--grace must be a number of seconds.*"-1"/],
      [['--on-exit', 'sometimes', '--', 'true'], /--on-exit must be one of "restart", "step-down", "exit", got "sometimes"/],
      [['--pid-namespace', 'maybe', '--', 'true'], /--pid-namespace must be one of/],
      [['--etcd', 'localhost:2379', '--', 'true'], /--etcd localhost:2379: .*`coordinator\.hosts\[0\]`/],
      [['--'], /missing the command|missing required argument/],
    ];
    for (const [args, pattern] of cases) {
      const { status, stderr } = cli(args);
      assert.equal(status, 2, `${args.join(' ')}: ${stderr}`);
      assert.match(stderr, pattern, args.join(' '));
    }
  });

  test('--config: a JSON object of MultiServer keys plus hostname; unknown keys, bad values and non-objects exit 2 naming them', () => {
    const w = wrappers({ heartbeatFreq: 1 });
    const file = (name: string, text: string): string => {
      const p = path.join(w.dir, name);
      writeFileSync(p, text);
      return p;
    };
    const cases: Array<[string, RegExp]> = [
      [file('unknown.json', '{"heartbeat_freq": 1, "heartbeat": 2}'), /unknown key "heartbeat"/],
      [file('bad.json', '{"check_beats": 0}'), /--config .*bad\.json: .*`check_beats`.*`0`/],
      [file('array.json', '[1]'), /expected a JSON object/],
      [file('broken.json', '{"heartbeat_freq": '), /not JSON/],
      [file('http.json', '{"http_ui_uri": "/x"}'), /`http_ui_uri` is not available with `run`/],
      [file('host.json', '{"hostname": "x y"}'), /--config .*host\.json: .*`hostname`/],
      [path.join(w.dir, 'missing.json'), /cannot read it/],
    ];
    for (const [config, pattern] of cases) {
      const { status, stderr } = cli(['--config', config, '--', 'true']);
      assert.equal(status, 2, `${config}: ${stderr}`);
      assert.match(stderr, pattern, config);
    }
  });
});
