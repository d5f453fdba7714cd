/**
 * The `run` wrapper's parts that need no cluster: the deadlines it derives from the cluster's
 * timing (they must stay below the time another server may claim), the restart backoff, the
 * option and config resolution (errors name the flag or key and the value), and the hook
 * queue under a flood of role changes (bounded, in order, a slow hook never blocks the caller).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { validateConfig } from '../src/config';
import { backoffMs, runTiming } from '../src/run/timing';
import { readSecretFile, resolveRunOptions, UsageError } from '../src/run/options';
import { HookRunner, MAX_PENDING_HOOKS } from '../src/run/hooks';
import { exitStatus } from '../src/run/wrapper';

describe('run: deadlines from the cluster timing', () => {
  test('UDP: the guardian has everything dead before peers may claim (tock + ¼ tick after a heartbeat up to a tick old), for any tick and check_beats', () => {
    for (const tick of [0.01, 0.25, 1, 20, 86400]) {
      for (const beats of [1, 2, 3, 10]) {
        for (const quorum of [0, 2]) {
          const settings = validateConfig({ heartbeat_freq: tick, check_beats: beats, quorum });
          const timing = runTiming(settings);
          const tickMs = tick * 1000;
          const earliestClaim = tickMs * beats + (quorum ? tickMs : tickMs / 4) - tickMs;
          assert.equal(timing.budgetMs, earliestClaim);
          assert.ok(timing.silenceMs < timing.deadMs && timing.deadMs < timing.budgetMs, JSON.stringify(timing));
          assert.ok(
            timing.pingMs < timing.silenceMs / 2 || timing.pingMs === 10,
            `pings every ${timing.pingMs} ms against a ${timing.silenceMs} ms silence`,
          );
          assert.ok(timing.pingMs >= 10 && timing.pingMs <= 1000);
          assert.ok(timing.lossGraceMs <= tickMs / 2);
        }
      }
    }
  });

  test("etcd: two thirds of the TTL (the lease outlives the last keep-alive, sent at most a third of a TTL before a stall), the default TTL the component's own", () => {
    const hosts = ['http://127.0.0.1:2379'];
    assert.equal(
      runTiming(validateConfig({ heartbeat_freq: 1, coordinator: { type: 'etcd', hosts, ttl: 3, election_timeout_ms: 250 } })).budgetMs,
      2000,
    );
    assert.equal(
      runTiming(validateConfig({ heartbeat_freq: 0.25, coordinator: { type: 'etcd', hosts } })).budgetMs,
      10_000 / 3,
      "tock 0.75 s, etcd's default election timeout: TTL 5 s, the least that outlasts an etcd leader election",
    );
    assert.equal(
      runTiming(validateConfig({ heartbeat_freq: 0.25, coordinator: { type: 'etcd', hosts, election_timeout_ms: 250 } })).budgetMs,
      4000 / 3,
      'tock 0.75 s, election timeout 250 ms: TTL 2 s',
    );
    assert.equal(
      runTiming(validateConfig({ heartbeat_freq: 4, coordinator: { type: 'etcd', hosts } })).budgetMs,
      8000,
      'tock 12 s: TTL 12 s',
    );
    const timing = runTiming(validateConfig({ heartbeat_freq: 1, coordinator: { type: 'etcd', hosts, ttl: 10 } }));
    assert.equal(timing.lossGraceMs, 500, 'half the margin by which the master steps down before its lease can expire (TTL/10)');
  });

  test('backoff doubles from the first delay up to the cap, and never overflows', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((n) => backoffMs(n, 1000, 60_000)),
      [1000, 2000, 4000, 8000, 16000, 32000, 60000],
    );
    assert.equal(backoffMs(10_000, 1000, 60_000), 60_000);
    assert.equal(backoffMs(5, 0, 60_000), 0);
  });

  test('exit status: the code, else 128 + the signal number', () => {
    assert.equal(exitStatus({ code: 7, signal: null }), 7);
    assert.equal(exitStatus({ code: null, signal: 'SIGKILL' }), 137);
    assert.equal(exitStatus({ code: null, signal: 'SIGTERM' }), 143);
    assert.equal(exitStatus({ code: null, signal: null }), 1);
  });
});

describe('run: options', () => {
  const files =
    (entries: Record<string, string>) =>
    (file: string): string => {
      const text = entries[file];
      if (text === undefined) throw new Error(`ENOENT: ${file}`);
      return text;
    };

  test('flags override the config file; numbers are numbers; the defaults', () => {
    const options = resolveRunOptions(
      { config: 'c.json', heartbeatFreq: '0.5', port: '4000', hostname: 'web1', etcd: [] },
      ['node', 'app.js', '--flag'],
      files({ 'c.json': '{"heartbeat_freq": 2, "check_beats": 4, "hostname": "fromfile", "priority": 3}' }),
    );
    assert.equal(options.hostname, 'web1');
    assert.equal(options.settings.heartbeat_freq, 0.5);
    assert.equal(options.settings.check_beats, 4);
    assert.equal(options.settings.comm_port, 4000);
    assert.equal(options.settings.priority, 3);
    assert.deepEqual(options.command, ['node', 'app.js', '--flag']);
    assert.equal(options.graceMs, 10_000);
    assert.equal(options.onExit, 'restart');
    assert.equal(options.restartDelayMs, 1000);
    assert.equal(options.restartDelayMaxMs, 60_000);
    assert.equal(options.hookTimeoutMs, 30_000);
    assert.equal(options.pidNamespace, 'auto');
    assert.equal(options.debugLevel, 4);
    assert.equal(options.lossGraceMs, undefined, 'the timing decides unless --loss-grace is given');
    assert.equal(resolveRunOptions({ lossGrace: '5' }, ['x']).lossGraceMs, 5000);
    assert.equal(resolveRunOptions({ config: 'c.json' }, ['x'], files({ 'c.json': '{"hostname": "fromfile"}' })).hostname, 'fromfile');
  });

  test("--etcd builds the coordinator, keeping the file's other coordinator keys", () => {
    const options = resolveRunOptions(
      { config: 'c.json', etcd: ['http://127.0.0.1:2379', 'http://127.0.0.1:2381'] },
      ['x'],
      files({ 'c.json': '{"coordinator": {"type": "etcd", "hosts": ["http://10.9.9.9:1"], "ttl": 6}}' }),
    );
    assert.deepEqual(options.settings.coordinator?.hosts, ['http://127.0.0.1:2379', 'http://127.0.0.1:2381']);
    assert.equal(options.settings.coordinator?.ttl, 6);
  });

  test('every error names where the value came from and the value', () => {
    const cases: Array<[Parameters<typeof resolveRunOptions>[0], RegExp]> = [
      [{ checkBeats: '1.5' }, /^--check-beats 1\.5: .*`check_beats`.*`1\.5`/],
      [{ quorum: '-1' }, /^--quorum -1: .*`quorum`/],
      [{ priority: '1e9999' }, /^--priority 1e9999: .*`priority`.*"1e9999"/],
      [{ clusterId: 'a b' }, /^--cluster-id a b: .*`cluster_id`/],
      [{ bindIp: '300.1.1.1' }, /^--bind-ip 300\.1\.1\.1: .*`bind_ip`/],
      [{ restartDelay: '2', restartDelayMax: '1' }, /--restart-delay-max must be a number of seconds from 2 to 86400, got "1"/],
      [{ hookTimeout: '0' }, /--hook-timeout must be a number of seconds from 0\.1/],
      [{ lossGrace: 'soon' }, /--loss-grace must be a number of seconds from 0 to 86400, got "soon"/],
      [{ debugLevel: '11' }, /--debug-level must be an integer from 1 to 10, got "11"/],
      [{ onMaster: '  ' }, /--on-master must be a shell command/],
      [{ ip: 'not an ip' }, /--ip: expected an IP address/],
      [{ config: 'c.json' }, /unknown key "__proto__"/],
    ];
    for (const [flags, pattern] of cases) {
      assert.throws(
        () => resolveRunOptions(flags, ['x'], files({ 'c.json': '{"__proto__": {"polluted": 1}}' })),
        (err: unknown) => err instanceof UsageError && pattern.test(err.message),
        JSON.stringify(flags),
      );
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined, 'a config file cannot pollute a prototype');
    assert.throws(() => resolveRunOptions({}, []), /missing the command/);
  });

  test('--health-*: a command with its counts and times (defaults 2 s, rise 2, fall 3, timeout the interval); bad ones named', () => {
    assert.equal(resolveRunOptions({}, ['x']).health, undefined);
    assert.deepEqual(resolveRunOptions({ healthCmd: 'curl -fs localhost/ok' }, ['x']).health, {
      command: 'curl -fs localhost/ok',
      interval: 2,
      rise: 2,
      fall: 3,
      timeout: 2,
    });
    assert.deepEqual(
      resolveRunOptions({ healthCmd: 'true', healthInterval: '0.5', healthRise: '1', healthFall: '5', healthTimeout: '3' }, ['x']).health,
      { command: 'true', interval: 0.5, rise: 1, fall: 5, timeout: 3 },
    );
    for (const [flags, pattern] of [
      [{ healthInterval: '1' }, /^--health-interval needs --health-cmd/],
      [{ healthCmd: ' ' }, /--health-cmd must be a shell command/],
      [{ healthCmd: 'true', healthInterval: '0' }, /--health-interval must be a number of seconds from 0.01 to 86400, got "0"/],
      [{ healthCmd: 'true', healthRise: '1.5' }, /--health-rise must be an integer from 1 to 1000, got "1.5"/],
      [{ healthCmd: 'true', healthFall: 'x' }, /--health-fall must be an integer/],
    ] as const) {
      assert.throws(
        () => resolveRunOptions(flags, ['x']),
        (err: unknown) => err instanceof UsageError && pattern.test(err.message),
        JSON.stringify(flags),
      );
    }
  });

  test("drain_timeout covers the command's stop (the grace and 5 s): raised with a warning when set lower", () => {
    assert.equal(resolveRunOptions({}, ['x']).settings.drain_timeout, 15);
    assert.equal(resolveRunOptions({ grace: '2' }, ['x']).section.drain_timeout, 7);
    const raised = resolveRunOptions({ config: 'c.json' }, ['x'], files({ 'c.json': '{"drain_timeout": 1}' }));
    assert.equal(raised.settings.drain_timeout, 15);
    assert.match(raised.warnings.join('\n'), /drain_timeout 1 s \(--config c\.json\) raised to 15 s/);
    assert.equal(resolveRunOptions({ config: 'c.json' }, ['x'], files({ 'c.json': '{"drain_timeout": 60}' })).settings.drain_timeout, 60);
  });

  test('--secret-file: one key a line, comments and blanks skipped; warned when others may read it; never echoed', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'psm-run-secret-'));
    try {
      const file = path.join(dir, 'key');
      writeFileSync(file, '# rotated 2026-01\nnew key, long enough to be fine\n\n  old key, long enough to be fine  \n');
      chmodSync(file, 0o600);
      const secret = readSecretFile(file);
      assert.deepEqual(secret.keys, ['new key, long enough to be fine', 'old key, long enough to be fine']);
      assert.equal(secret.warning, null);
      chmodSync(file, 0o644);
      assert.match(readSecretFile(file).warning ?? '', /readable by other users/);
      const options = resolveRunOptions({ secretFile: file }, ['x']);
      assert.deepEqual(options.settings.secret_key, secret.keys);
      writeFileSync(file, '# nothing\n');
      assert.throws(
        () => readSecretFile(file),
        (err: unknown) => err instanceof UsageError && /no key in it/.test(err.message) && !/nothing/.test(err.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('run: hooks', () => {
  test("a flood of role changes behind a slow hook: the caller never waits, at most the queue's bound run, in order, and one line says what was dropped", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'psm-run-hooks-'));
    try {
      const record = path.join(dir, 'record');
      writeFileSync(record, '');
      const lines: string[] = [];
      const hooks = new HookRunner(
        { master: `echo "$MULTI_REASON" >> ${record}; sleep 0.02` },
        5000,
        (_level, message) => lines.push(message),
        process.env,
      );
      const began = performance.now();
      for (let i = 0; i < 1000; i++) hooks.enqueue({ event: 'master', env: { MULTI_REASON: String(i) } });
      hooks.enqueue({ event: 'slave', env: { MULTI_REASON: 'no hook configured' } });
      assert.ok(performance.now() - began < 1000, 'enqueueing waited for hooks');
      await hooks.idle(60_000);
      const ran = readFileSync(record, 'utf8').split('\n').filter(Boolean).map(Number);
      assert.equal(ran.length, MAX_PENDING_HOOKS + 1, "the running one, and the queue's bound");
      assert.equal(ran[0], 0, 'the first ran at once');
      assert.deepEqual(
        ran.slice(1),
        Array.from({ length: MAX_PENDING_HOOKS }, (_, i) => 1000 - MAX_PENDING_HOOKS + i),
        'then the newest, in order',
      );
      assert.equal(lines.filter((l) => /Hook queue full/.test(l)).length, 1, 'one line for the burst');
      assert.ok(
        lines.some((l) => /967 hooks were dropped in all/.test(l)),
        lines.filter((l) => /dropped/.test(l)).join('\n'),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a hook that cannot run, fails, or hangs past its timeout is logged, and the next one runs', async () => {
    const lines: string[] = [];
    const hooks = new HookRunner(
      { master: 'exit 3', slave: 'sleep 1000', fault: 'true' },
      300,
      (_level, message) => lines.push(message),
      process.env,
    );
    hooks.enqueue({ event: 'master', env: { MULTI_REASON: 'a' } });
    hooks.enqueue({ event: 'slave', env: { MULTI_REASON: 'b' } });
    hooks.enqueue({ event: 'fault', env: { MULTI_REASON: 'c' } });
    await hooks.idle(20_000);
    assert.ok(
      lines.some((l) => /on-master \(a\) failed with exit code 3/.test(l)),
      lines.join('\n'),
    );
    assert.ok(lines.some((l) => /on-slave still running after 0\.3 s: SIGTERM/.test(l)));
    assert.ok(lines.some((l) => /on-slave \(b\) was killed by SIGTERM/.test(l)));
    assert.ok(lines.some((l) => /on-fault \(c\) succeeded/.test(l)));
  });
});
