/**
 * `pixl-server-multi run`, one or two wrappers on loopback (real processes, checked by pid
 * and by the children's own timestamps, as in run.cluster.test.ts):
 *  - a grandchild that left the process group (setsid) dies with the run in a pid namespace,
 *    and without one the process group still goes when the wrapper is killed;
 *  - what happens when the command exits by itself: restart (backoff), step-down, exit;
 *  - hooks: when each runs and with what, a hanging one never delays the command, and the
 *    winner of a master conflict runs on-master again;
 *  - bad arguments and config files exit 2 naming the flag or key and the value.
 * Waits are for conditions, with generous deadlines; no elapsed time is asserted.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { encode } from '../src/wire/codec';
import type { HeartbeatMessage } from '../src/protocol/messages';
import { bothStarted, CLI, hostsOf, pidNamespacesPermitted, RunWrappers, starts } from '../tools/run-wrappers';
import type { RunChildLine } from '../tools/run-child';
import { pause } from './helpers/wait';

/** Generous: a loaded machine runs these too. */
const DEADLINE_MS = 20_000;

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

describe("run: the command's descendants", () => {
  test("with --pid-namespace off, SIGKILL of the wrapper still ends the command's process group", async () => {
    const w = wrappers({ heartbeatFreq: 0.5, args: ['--pid-namespace', 'off'], childArgs: ['--linger', '100'] });
    await w.start('solo');
    await w.waitFor(() => bothStarted(w) && w.commandProcesses().length === 2, DEADLINE_MS, 'the command and its grandchild');
    const run = w.commandProcesses();
    w.kill('solo', 'SIGKILL');
    await w.waitFor(() => run.every((p) => !RunWrappers.exists(p)), DEADLINE_MS, 'the command and grandchild to end');
    assert.equal(w.lines().filter((l) => l.event === 'end').length, 2, 'both ended their SIGTERM cleanup');
  });

  test('in a pid namespace, a grandchild that left the process group (setsid) ends with the run too', {
    skip: namespaces ? false : 'unshare --pid is not permitted here (it needs root)',
  }, async () => {
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
    await w.start('solo', {
      args: ['--restart-delay', '0.2', '--on-fault', `echo "$MULTI_EVENT $MULTI_REASON $MULTI_EXIT_CODE $MULTI_TERM" >> ${faults}`],
    });
    await w.waitFor(() => starts(w).length >= 3, DEADLINE_MS, 'two restarts');
    const lines = w.lines();
    const [first, second, third] = starts(w) as [RunChildLine, RunChildLine, RunChildLine];
    const exitOf = (start: RunChildLine): RunChildLine =>
      lines.find(
        (l) => l.event === 'exit' && l.pid === start.pid && l.t > start.t && l.t < (starts(w).find((s) => s.t > start.t)?.t ?? Infinity),
      ) as RunChildLine;
    const gap1 = second.t - exitOf(first).t;
    const gap2 = third.t - exitOf(second).t;
    assert.ok(gap1 >= 200, `first restart after ${gap1} ms: --restart-delay 0.2`);
    assert.ok(gap2 >= 400, `second restart after ${gap2} ms: the delay doubles`);
    // Each time, the grandchild left behind got SIGTERM before the next start.
    const grandEnds = lines.filter((l) => l.role === 'grandchild' && l.event === 'end');
    assert.ok(
      grandEnds.some((l) => l.t < second.t) && grandEnds.some((l) => l.t > second.t && l.t < third.t),
      'grandchildren ended before each restart',
    );
    await w.waitFor(() => readFileSync(faults, 'utf8').split('\n').filter(Boolean).length >= 2, DEADLINE_MS, 'on-fault hooks');
    assert.match(readFileSync(faults, 'utf8').split('\n')[0] as string, /^fault exited 3 [1-9]\d*$/);
  });

  test('--on-exit step-down: the role moves to the next server, whose command then runs', async () => {
    const w = wrappers({ heartbeatFreq: 0.5, args: ['--on-exit', 'step-down'] });
    await w.start('alpha', { childArgs: ['--exit-after', '300', '--exit-code', '1'] });
    await w.start('bravo');
    await w.waitFor(() => starts(w, 'bravo').length === 1, DEADLINE_MS, "bravo's command after alpha stepped down");
    const alphaEnds = w.lines().filter((l) => l.host === 'alpha' && (l.event === 'end' || l.event === 'exit'));
    const bravoStart = starts(w, 'bravo')[0] as RunChildLine;
    assert.equal(alphaEnds.length, 2, "alpha's command exited and its grandchild was stopped");
    for (const end of alphaEnds) assert.ok(end.t < bravoStart.t);
    assert.ok(w.logged('alpha', /Handing the master role over: the command ended \(exit code 1\)/));
    // alpha stays in the cluster, a slave, and runs nothing: three ticks in which it must not start its command.
    await pause(1500);
    assert.deepEqual(hostsOf(w.commandProcesses()), ['bravo']);
    assert.equal(w.wrapper('alpha').alive, true);
  });

  test("--on-exit exit: the wrapper leaves the cluster and exits with the command's status; the other takes over at once", async () => {
    const w = wrappers({ heartbeatFreq: 0.5, args: ['--on-exit', 'exit'] });
    await w.start('alpha', { childArgs: ['--exit-after', '300', '--exit-code', '7', '--grandchild', 'none'] });
    await w.start('bravo');
    const exit = await w.wrapper('alpha').exited;
    assert.deepEqual(exit, { code: 7, signal: null });
    await w.waitFor(() => starts(w, 'bravo').length === 1, DEADLINE_MS, "bravo's command");
    assert.ok(w.logged('bravo', /after alpha's shutdown notice/), "bravo took over on alpha's shutdown notice, not after a silence");
  });
});

describe('run: --health-cmd', () => {
  test("failing on the master: its command is stopped, cleanup and all, before the next server's starts; passing again, it can be master again", async () => {
    const w = wrappers({ heartbeatFreq: 0.5, childArgs: ['--linger', '300'] });
    const sick = (host: string): string => path.join(w.dir, `sick-${host}`);
    // MULTI_HOSTNAME is in the check's environment: one command line for both servers.
    const args = [
      '--health-cmd',
      `test ! -e ${w.dir}/sick-$MULTI_HOSTNAME`,
      '--health-interval',
      '0.2',
      '--health-fall',
      '2',
      '--health-rise',
      '2',
    ];
    await w.start('alpha', { args });
    await w.waitFor(() => bothStarted(w), DEADLINE_MS, "alpha's command and its grandchild");
    await w.start('bravo', { args });
    await w.waitFor(() => w.logged('bravo', /The master server is now: alpha/), DEADLINE_MS, 'bravo to follow alpha');
    writeFileSync(sick('alpha'), 'x');
    await w.waitFor(() => starts(w, 'bravo').length === 1, DEADLINE_MS, "bravo's command after alpha's check failed");
    const bravoStart = starts(w, 'bravo')[0] as RunChildLine;
    const alphaEnds = w.lines().filter((l) => l.host === 'alpha' && l.event === 'end');
    assert.equal(alphaEnds.length, 2, "alpha's command and grandchild finished their SIGTERM cleanup");
    for (const end of alphaEnds) assert.ok(end.t < bravoStart.t, "bravo started after alpha's run was gone");
    assert.ok(w.logged('alpha', /Health check failing \(2 in a row\)/));
    // Passing again: eligible again. bravo's check fails now, and alpha (first in rank) takes the role back.
    rmSync(sick('alpha'));
    await w.waitFor(() => w.logged('alpha', /Health check passing again/), DEADLINE_MS, "alpha's check to pass again");
    writeFileSync(sick('bravo'), 'x');
    await w.waitFor(() => starts(w, 'alpha').length === 2, DEADLINE_MS, "alpha's command again");
    const alphaAgain = starts(w, 'alpha')[1] as RunChildLine;
    const bravoEnds = w.lines().filter((l) => l.host === 'bravo' && l.event === 'end');
    assert.equal(bravoEnds.length, 2);
    for (const end of bravoEnds) assert.ok(end.t < alphaAgain.t);
    assert.ok(
      alphaAgain.term > bravoStart.term && bravoStart.term > (starts(w, 'alpha')[0] as RunChildLine).term,
      'each run has a higher term',
    );
  });
});

describe('run: a command that cannot start', () => {
  test('is a fault like an exit: on-fault runs, and with --on-exit exit the wrapper exits 127', async () => {
    for (const mode of namespaces ? ['on', 'off'] : ['off']) {
      const w = wrappers({ heartbeatFreq: 0.25, args: ['--pid-namespace', mode, '--on-exit', 'exit'] });
      const faults = path.join(w.dir, 'faults');
      const wrapper = await w.start('solo', {
        command: [path.join(w.dir, 'no-such-program')],
        args: ['--on-fault', `echo "$MULTI_REASON" >> ${faults}`],
      });
      const exit = await wrapper.exited;
      assert.deepEqual(exit, { code: 127, signal: null }, `--pid-namespace ${mode}: ${w.describe()}`);
      assert.match(readFileSync(faults, 'utf8'), /^(spawn-failed|exited)\n$/, 'on-fault ran before the wrapper left');
    }
  });
});

describe('run: hooks', () => {
  test('on-master and on-slave run with their environment; a hanging hook is killed at its timeout and never delays the command', async () => {
    const w = wrappers({ heartbeatFreq: 0.5 });
    const record = path.join(w.dir, 'hooks');
    writeFileSync(record, '');
    const args = [
      '--hook-timeout',
      '1',
      '--on-master',
      `echo "master $MULTI_HOSTNAME $MULTI_MASTER $MULTI_TERM $MULTI_REASON" >> ${record}; sleep 1000`,
      '--on-slave',
      `echo "slave $MULTI_HOSTNAME $MULTI_MASTER $MULTI_TERM $MULTI_REASON" >> ${record}`,
    ];
    await w.start('alpha', { args });
    await w.waitFor(() => starts(w, 'alpha').length === 1, DEADLINE_MS, "alpha's command");
    const firstTerm = (starts(w, 'alpha')[0] as RunChildLine).term;
    assert.ok(
      readFileSync(record, 'utf8').startsWith(`master alpha alpha ${firstTerm} elected`),
      "on-master ran with the command's term, and the command started while it hangs",
    );
    await w.start('bravo', { args });
    await w.waitFor(() => readFileSync(record, 'utf8').includes('slave bravo alpha'), DEADLINE_MS, "bravo's on-slave");
    await w.waitFor(
      () => w.logged('alpha', /Hook on-master \(elected\) was killed by SIGTERM/),
      DEADLINE_MS,
      'the hanging on-master hook to be killed',
    );
    // alpha leaves: its command stops, then its on-slave runs (reason leaving), then bravo is master.
    w.kill('alpha', 'SIGTERM');
    await w.waitFor(() => starts(w, 'bravo').length === 1, DEADLINE_MS, "bravo's command");
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
      args: [
        '--on-master',
        `echo "master $MULTI_TERM $MULTI_REASON" >> ${record}`,
        '--on-slave',
        `echo "slave $MULTI_MASTER $MULTI_REASON" >> ${record}`,
      ],
      childArgs: ['--grandchild', 'none'],
    });
    await w.waitFor(() => starts(w).length === 1, DEADLINE_MS, "mike's command");
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    const forge = (hostname: string, term: number, seq: number): void => {
      const message: HeartbeatMessage = {
        action: 'heartbeat',
        hostname,
        ip: '127.0.0.1',
        master: true,
        eligible: true,
        uptime: 100,
        data: {},
        term,
        iid: 'ab12ab12ab12ab12',
        seq,
      };
      socket.send(encode(message), w.port, '127.0.0.1');
    };
    try {
      // A rival that ranks later ("zulu") with a higher term: mike keeps the role and takes a term above it.
      const term = (starts(w)[0] as RunChildLine).term;
      const rivalTerm = term + 10;
      const rewon = (): boolean =>
        [...readFileSync(record, 'utf8').matchAll(/master (\d+) conflict-won/g)].some((m) => Number(m[1]) > rivalTerm);
      for (let i = 1; i <= 3; i++) forge('zulu', rivalTerm, i);
      await w.waitFor(rewon, DEADLINE_MS, "on-master again after the conflict, with a term above the rival's");
      assert.equal(starts(w).length, 1, "the winner's command ran on");
      // A rival that ranks first ("alice"), with a higher term: mike relinquishes and stops its command.
      const before = w.commandProcesses();
      for (let i = 1; i <= 3; i++) forge('alice', rivalTerm + 1_000_000, i);
      await w.waitFor(() => /slave \S* (follows|no-master)/.test(readFileSync(record, 'utf8')), DEADLINE_MS, 'on-slave on losing');
      await w.waitFor(() => before.every((p) => !RunWrappers.exists(p)), DEADLINE_MS, "the loser's command to stop");
      // alice falls silent: mike is master again, and its command runs again.
      await w.waitFor(() => starts(w).length === 2, DEADLINE_MS, "mike's command again after alice lapsed");
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

  test('without pixl-server (a peer dependency) it exits 1 saying what to install; `status` still works', () => {
    const hide = ['-r', path.join(__dirname, '..', 'tools', 'hide-module.js')];
    const env = { ...process.env, PSM_HIDE_MODULES: 'pixl-server' };
    const run = spawnSync(process.execPath, [...hide, CLI, 'run', '--hostname', 'x', '--broadcast-ip', '127.255.255.255', '--', 'true'], {
      encoding: 'utf8',
      env,
      timeout: 20_000,
    });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /needs the pixl-server package \(a peer dependency\): npm install pixl-server/);
    const help = spawnSync(process.execPath, [...hide, CLI, 'status', '--help'], { encoding: 'utf8', env, timeout: 20_000 });
    assert.equal(help.status, 0, help.stderr);
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
