/**
 * The status CLI against live loopback clusters: an authenticated cluster at the default
 * heartbeat (20 s) is heard within the 2 s window because every hello carries an instance id
 * and a sequence; --watch keeps every live server in every frame; the state column tells
 * listening, slave, master, suspect and left apart; exit codes hold as documented.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ProcessCluster } from '../tools/process-cluster';
import { freeUdpPort } from '../tools/loopback';
import { freeTcpPort, httpJson, loopbackWebConfig } from '../tools/web';
import { renderTable, type Snapshot } from '../src/cli';
import { encode } from '../src/wire/codec';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.resolve(__dirname, '..', 'src', 'cli.js');
const LOOPBACK = ['--broadcast-ip', '127.255.255.255'];
const SECRET = 'cli-test-secret-0123456789';
const HOSTS = ['alpha', 'bravo', 'charlie'];

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Run `status --watch --json`, handing each frame to `onFrame` as it arrives. */
function watch(
  args: string[],
  onFrame: (frame: Snapshot, index: number) => void,
): Promise<{ code: number | null; frames: Snapshot[]; stderr: string }> {
  const child = spawn(process.execPath, [CLI, 'status', '--watch', '--json', ...args]);
  const frames: Snapshot[] = [];
  let buffer = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const frame = JSON.parse(buffer.slice(0, newline)) as Snapshot;
      buffer = buffer.slice(newline + 1);
      frames.push(frame);
      onFrame(frame, frames.length - 1);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, frames, stderr })));
}

/** Every server listed: those present (view) and those that left (departed), by state. */
const states = (snapshot: Snapshot): Record<string, string> =>
  Object.fromEntries(
    [...snapshot.view.map((s) => [s.hostname, s.state]), ...snapshot.departed.map((d) => [d.hostname, 'left'])].sort(([a], [b]) =>
      (a as string) < (b as string) ? -1 : 1,
    ),
  );
const listed = (snapshot: Snapshot): string[] => Object.keys(states(snapshot));

describe('an authenticated cluster at the default heartbeat (20 s)', () => {
  const cluster = new ProcessCluster({ heartbeatFreq: 20, checkBeats: 3, multi: { secret_key: SECRET } });
  const base = (): string[] => ['status', '--port', String(cluster.port), ...LOOPBACK, '--secret', SECRET];
  before(async () => {
    await Promise.all(HOSTS.map((host) => cluster.start(host, {}, true)));
    await cluster.release(HOSTS);
  });
  after(() => cluster.stopAll());

  test('heard within the 2 s window; before anyone claims master, every server is listening (not slave)', async () => {
    const { code, stdout, stderr } = await cli([...base(), '--json']);
    assert.equal(code, 0, stderr);
    const snapshot = JSON.parse(stdout) as Snapshot;
    assert.ok((snapshot.observer?.listenedMs ?? Infinity) < 2500, `listened ${snapshot.observer?.listenedMs} ms`);
    assert.deepEqual(states(snapshot), { alpha: 'listening', bravo: 'listening', charlie: 'listening' });
    assert.equal(snapshot.masterHostname, '');
    assert.deepEqual(snapshot.observer?.dropped, {});
  });

  test('after a promote: master and slaves, each answering the hello at once', async () => {
    cluster.command('alpha', { cmd: 'promote' });
    await cluster.waitFor(() => HOSTS.every((h) => cluster.state(h)?.masterHostname === 'alpha'), 10_000, 'everyone to follow alpha');
    const { code, stdout, stderr } = await cli([...base(), '--json']);
    assert.equal(code, 0, stderr);
    const snapshot = JSON.parse(stdout) as Snapshot;
    assert.deepEqual(states(snapshot), { alpha: 'master', bravo: 'slave', charlie: 'slave' });
    assert.equal(snapshot.masterHostname, 'alpha');
    for (const server of snapshot.view) {
      assert.equal(server.term, snapshot.term);
      assert.ok(server.lastHeardMs < 2000, `${server.hostname} last heard ${server.lastHeardMs} ms ago`);
    }
    // The observer never shows up in any server's table.
    for (const host of HOSTS) assert.deepEqual(cluster.state(host)?.servers, HOSTS);
  });

  test('the table has the state column and names the master', async () => {
    const { code, stdout } = await cli([...base(), '--listen', '1']);
    assert.equal(code, 0);
    assert.match(stdout, new RegExp(`^3 servers on port ${cluster.port}, master: alpha \\(term \\d+\\)`));
    assert.match(stdout, /│ state\s+│/);
    assert.match(stdout, /│ alpha\s+│ 127\.0\.0\.1\s+│ master\s+│/);
    assert.match(stdout, /│ bravo\s+│ 127\.0\.0\.1\s+│ slave\s+│/);
  });

  test("a server's failing health check: its row says `failing n/fall`, the line under the table why; passing again, `passing`", async () => {
    const reason = 'connect ECONNREFUSED 127.0.0.1:5432';
    cluster.command('charlie', { cmd: 'healthcheck', fail: reason });
    const charlie = async (): Promise<{ snapshot: Snapshot; text: string }> => {
      const json = await cli([...base(), '--listen', '0.5', '--json']);
      const text = await cli([...base(), '--listen', '0.5']);
      return { snapshot: JSON.parse(json.stdout) as Snapshot, text: text.stdout };
    };
    const deadline = Date.now() + 15_000;
    let seen = await charlie();
    while (seen.snapshot.view.find((s) => s.hostname === 'charlie')?.health?.state !== 'failing' && Date.now() < deadline)
      seen = await charlie();
    const row = seen.snapshot.view.find((s) => s.hostname === 'charlie');
    assert.equal(row?.eligible, false, JSON.stringify(row));
    assert.equal(row?.health?.state, 'failing');
    assert.equal(row?.health?.fall, 1);
    assert.ok((row?.health?.failures ?? 0) >= 1);
    assert.equal(row?.health?.error, reason);
    assert.deepEqual(seen.snapshot.servers.charlie?.health, row?.health);
    assert.equal(seen.snapshot.view.find((s) => s.hostname === 'bravo')?.health, null, 'bravo runs no check');
    // The text (heard a moment later: the count may have grown).
    assert.match(seen.text, /│ charlie\s+│ 127\.0\.0\.1\s+│ slave\s+│ no\s+│ failing \d+\/1\s+│/);
    assert.ok(seen.text.includes(`charlie: not eligible: its health check fails: ${reason}`), seen.text);
    cluster.command('charlie', { cmd: 'healthcheck', fail: null });
    const until = Date.now() + 15_000;
    do seen = await charlie();
    while (seen.snapshot.view.find((s) => s.hostname === 'charlie')?.health?.state !== 'passing' && Date.now() < until);
    assert.equal(seen.snapshot.view.find((s) => s.hostname === 'charlie')?.eligible, true);
    assert.match(seen.text, /│ charlie\s+│ 127\.0\.0\.1\s+│ slave\s+│ yes\s+│ passing\s+│/);
    assert.ok(!seen.text.includes('not eligible'), seen.text);
  });

  test('--watch keeps every server in every frame (a hello each frame), well past the old 3 s blank-out', async () => {
    const { code, frames, stderr } = await watch([...base().slice(1), '--frames', '6'], () => undefined);
    assert.equal(code, 0, stderr);
    assert.equal(frames.length, 6);
    frames.forEach((frame, i) => assert.deepEqual(states(frame), { alpha: 'master', bravo: 'slave', charlie: 'slave' }, `frame ${i + 1}`));
  });

  test('without the secret nothing is heard (the servers ignore an unsigned hello): exit 1, and --json still prints a document', async () => {
    const { code, stdout, stderr } = await cli(['status', '--port', String(cluster.port), ...LOOPBACK, '--listen', '0.5', '--json']);
    assert.equal(code, 1);
    assert.match(stderr, /no heartbeat heard/);
    const snapshot = JSON.parse(stdout) as Snapshot;
    assert.deepEqual(snapshot.servers, {});
    assert.deepEqual(snapshot.view, []);
    assert.equal(snapshot.masterHostname, '');
  });
});

describe('a fast cluster (0.2 s) under --watch', () => {
  const cluster = new ProcessCluster({ heartbeatFreq: 0.2, checkBeats: 3, multi: { secret_key: SECRET } });
  before(async () => {
    await Promise.all(HOSTS.map((host) => cluster.start(host, {}, true)));
    await cluster.release(HOSTS);
    await cluster.waitAgreed(15_000, 'alpha');
  });
  after(() => cluster.stopAll());

  test('without the secret it says what it dropped (heartbeats come every 0.2 s here)', async () => {
    const { code, stderr } = await cli(['status', '--port', String(cluster.port), ...LOOPBACK, '--listen', '0.5']);
    assert.equal(code, 1);
    assert.match(stderr, /no heartbeat heard.*Datagrams were dropped \(unexpected-auth \d+\): check --secret and --cluster-id/);
  });

  test('no blank frames; a killed master turns left (never stays master), the next master shows, a stopped server is left', async () => {
    let killedAt = -1;
    let stoppedAt = -1;
    const { code, frames, stderr } = await watch(
      ['--port', String(cluster.port), ...LOOPBACK, '--secret', SECRET, '--heartbeat-freq', '0.2', '--check-beats', '3', '--frames', '9'],
      (frame, index) => {
        const now = states(frame);
        if (killedAt < 0 && now.alpha === 'master') {
          cluster.kill('alpha');
          killedAt = index;
        } else if (killedAt >= 0 && stoppedAt < 0 && frame.masterHostname === 'bravo' && now.alpha === 'left') {
          void cluster.stop('charlie');
          stoppedAt = index;
        }
      },
    );
    assert.equal(code, 0, stderr);
    assert.ok(killedAt >= 0 && stoppedAt > killedAt, `killed at frame ${killedAt}, stopped at ${stoppedAt}`);
    frames.forEach((frame, i) => assert.deepEqual(listed(frame), HOSTS, `frame ${i + 1} lists every server`));
    // alpha's silence is judged by the tock: master or suspect at first, then left for good.
    const alpha = frames.slice(killedAt + 1).map((f) => states(f).alpha);
    assert.ok(
      alpha.every((s) => ['master', 'suspect', 'left'].includes(s as string)),
      alpha.join(' '),
    );
    const firstLeft = alpha.indexOf('left');
    assert.ok(firstLeft >= 0 && firstLeft <= 2, `alpha left at frame ${firstLeft} after the kill: ${alpha.join(' ')}`);
    assert.ok(alpha.slice(firstLeft).every((s) => s === 'left'));
    // charlie was stopped: it is left within two frames, and bravo is master throughout.
    const after = frames.slice(stoppedAt + 1);
    assert.ok(after.length >= 2);
    assert.equal(states(after[1] as Snapshot).charlie, 'left');
    for (const frame of after) assert.equal(states(frame).bravo, 'master');
  });
});

describe('per-server timing and the state rules', () => {
  test('a server advertising its tick and beats is judged by them, not by --heartbeat-freq', async () => {
    const port = await freeUdpPort();
    const sender = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve) => sender.bind(0, '127.0.0.1', () => resolve()));
    sender.setBroadcast(true);
    let seq = 0;
    const beat = (hostname: string, timing: { tick?: number; beats?: number }): void => {
      const datagram = encode({
        action: 'heartbeat',
        hostname,
        ip: '127.0.0.1',
        master: false,
        eligible: true,
        uptime: 1,
        data: {},
        iid: hostname === 'quick' ? '00000000000000aa' : '00000000000000bb',
        seq: ++seq,
        ...timing,
      });
      sender.send(datagram, port, '127.255.255.255');
    };
    // Both fall silent after one heartbeat; only "quick" says its tock is 0.3 s.
    // The first frame proves the CLI listens; the second comes a second after the heartbeats.
    const { code, frames } = await watch(['--port', String(port), ...LOOPBACK, '--no-hello', '--frames', '2'], (_frame, index) => {
      if (index > 0) return;
      beat('quick', { tick: 100, beats: 3 });
      beat('default', {});
    });
    sender.close();
    assert.equal(code, 0);
    assert.deepEqual(frames[0]?.view, []);
    const last = states(frames[1] as Snapshot);
    assert.equal(last.quick, 'left', 'silent past its own tock (0.3 s)');
    assert.equal(last.default, 'listening', 'judged by the default 20 s tick');
  });
});

describe('exit codes and arguments', () => {
  test('--version prints the package version and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const { code, stdout } = await cli([flag]);
      assert.equal(code, 0);
      assert.equal(stdout.trim(), version);
    }
  });

  test('--help exits 0 and documents the states and exit codes', async () => {
    const { code, stdout } = await cli(['status', '--help']);
    assert.equal(code, 0);
    assert.match(stdout, /listening .*slave, master, suspect/s);
    assert.match(
      stdout,
      /Exit codes: 0 servers listed, 1 nothing heard or a run-time error \(a hello that could not be\s+sent\), 2 bad arguments/,
    );
    assert.match(stdout, /--json prints the status document/);
  });

  test('bad arguments exit 2 and name what is wrong', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['status', '--port', '99999'], /--port/],
      [['status', '--port', 'x'], /--port/],
      [['status', '--heartbeat-freq', '0'], /--heartbeat-freq/],
      [['status', '--check-beats', '1.5'], /--check-beats/],
      [['status', '--listen', '-1'], /--listen/],
      [['status', '--frames', '3'], /--frames needs --watch/],
      [['status', '--cluster-id', 'has space'], /--cluster-id/],
      [['status', '--listen', '0'], /--listen must be a number of seconds from 0.1 to 86400/],
      [['status', '--listen', '1e10'], /--listen/],
      [['status', '--listen', ''], /--listen/],
      [['status', '--secret', ''], /--secret must not be empty/],
      [['status', '--port', '0'], /--port/],
      [['status', 'extra'], /too many arguments/],
      [['status', '--broadcast-ip', '127.255.255.255', '--multicast-group', '239.255.30.14'], /--broadcast-ip and --multicast-group/],
      [['status', '--bind-ip', '::'], /broadcast is IPv4 only/],
      [['status', '--bind-ip', '0.0.0.0', '--multicast-group', 'ff15::3014'], /one version/],
      [['status', '--bogus'], /unknown option/],
      [['stats'], /unknown command/],
      [[], /Usage/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await cli(args);
      assert.equal(code, 2, `${args.join(' ')}: exit ${code}, ${stderr}`);
      assert.match(stderr, message, args.join(' '));
    }
  });

  test('every malformed address is refused before anything is sent: exit 2, naming the option and the value', async () => {
    const bad: Array<[string, string[]]> = [
      [
        '--broadcast-ip',
        [
          'notanip',
          '300.1.1.1',
          '127.0.0',
          '127.0.0.1.1',
          '::1',
          '239.255.30.14',
          'localhost',
          '1.2.3.4 ',
          '0x7f.0.0.1',
          '127.0.0.1:3014',
          '',
        ],
      ],
      ['--bind-ip', ['x', '255.255.255.255', '224.0.0.1', 'fe80::1%eth0', '10.0.0.256']],
      ['--multicast-group', ['10.0.0.1', 'x', '::1', '239.255.30.14%eth0', '']],
    ];
    const runs = bad.flatMap(([option, values]) => values.map((value) => ({ option, value })));
    const results = await Promise.all(runs.map(({ option, value }) => cli(['status', option, value, '--listen', '0.1'])));
    results.forEach((result, i) => {
      const { option, value } = runs[i] as { option: string; value: string };
      assert.equal(result.code, 2, `${option} ${JSON.stringify(value)}: exit ${result.code}, ${result.stderr}`);
      assert.ok(
        result.stderr.includes(`${option} must be`) && result.stderr.includes(`got "${value}"`),
        `${option} ${JSON.stringify(value)}: ${result.stderr}`,
      );
      assert.equal(result.stdout, '');
    });
  });

  test('a port held without address reuse is a run-time error: exit 1', async () => {
    const holder = dgram.createSocket({ type: 'udp4', reuseAddr: false });
    const port = await freeUdpPort();
    await new Promise<void>((resolve) => holder.bind(port, '0.0.0.0', () => resolve()));
    try {
      const { code, stderr } = await cli(['status', '--port', String(port), ...LOOPBACK, '--listen', '0.2']);
      assert.equal(code, 1);
      assert.match(stderr, new RegExp(`cannot listen on UDP port ${port}`));
    } finally {
      holder.close();
    }
  });

  test('nothing heard: exit 1, also with --watch', async () => {
    const port = await freeUdpPort();
    const once = await cli(['status', '--port', String(port), ...LOOPBACK, '--listen', '0.3']);
    assert.equal(once.code, 1);
    assert.match(once.stderr, /no heartbeat heard/);
    const watched = await watch(['--port', String(port), ...LOOPBACK, '--frames', '1'], () => undefined);
    assert.equal(watched.code, 1);
    assert.deepEqual(watched.frames[0]?.view, []);
  });
});

/** Can this process make a network namespace of its own (root, and unshare installed)? */
function namespaceUnavailable(): string | null {
  try {
    execFileSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
    return null;
  } catch {
    return "needs root and util-linux's unshare (Debian: util-linux) to make a network namespace";
  }
}

describe('a hello that cannot be sent', { skip: namespaceUnavailable() ?? false }, () => {
  test('in a namespace of its own (no route: its loopback is down) each failed hello is an error, not a hello sent; exit 1', async () => {
    // Nothing can leave a fresh namespace: not even loopback is up in it.
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        'unshare',
        ['-n', process.execPath, CLI, 'status', '--port', '3014', ...LOOPBACK, '--listen', '1', '--json'],
        { timeout: 30_000 },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    assert.equal(result.code, 1, result.stderr);
    const lines = result.stderr.trim().split('\n');
    assert.match(
      lines[0] ?? '',
      /^error: cannot send the hello to 127\.255\.255\.255 port 3014: send ENETUNREACH 127\.255\.255\.255:3014 \(no route to that address from this host: check --broadcast-ip\)$/,
    );
    assert.equal(lines.filter((line) => line.startsWith('error: cannot send')).length, 1, 'said once, not once per hello');
    assert.match(result.stderr, /No hello could be sent/);
    const doc = JSON.parse(result.stdout) as Snapshot;
    assert.equal(doc.observer?.hellosSent, 0);
    assert.ok((doc.observer?.hellosFailed ?? 0) >= 2, JSON.stringify(doc.observer));
    assert.match(doc.observer?.helloError ?? '', /ENETUNREACH/);
  });
});

describe('--json is the status document: one schema with the HTTP status route', () => {
  const cluster = new ProcessCluster({ heartbeatFreq: 0.2, checkBeats: 3, multi: { http_status_uri: '/status' } });
  const htdocs = mkdtempSync(path.join(os.tmpdir(), 'psm-cli-web-'));
  let webPort = 0;
  before(async () => {
    webPort = await freeTcpPort();
    await cluster.start('alpha', {}, true, loopbackWebConfig(webPort, htdocs));
    await cluster.start('bravo', {}, true);
    await cluster.start('charlie', {}, true);
    await cluster.release(HOSTS);
    await cluster.waitAgreed(15_000, 'alpha');
    cluster.command('bravo', { cmd: 'data', value: { jobs: 2 } });
  });
  after(async () => {
    await cluster.stopAll();
    rmSync(htdocs, { recursive: true, force: true });
  });

  /** The shape of a JSON value: its keys (recursively) and the JSON type of each leaf. */
  function shape(value: unknown): unknown {
    if (value === null) return 'null';
    if (Array.isArray(value)) return value.length === 0 ? 'array' : ['array of', shape(value[0])];
    if (typeof value === 'object')
      return Object.fromEntries(
        Object.keys(value as object)
          .sort()
          .map((key) => [key, shape((value as Record<string, unknown>)[key])]),
      );
    return typeof value;
  }

  test('the same fields, of the same types, at every level; and the same cluster in both', async () => {
    // charlie shuts down while the CLI listens, so both documents list a departure.
    const { code, frames, stderr } = await watch(['--port', String(cluster.port), ...LOOPBACK, '--frames', '4'], (_frame, index) => {
      if (index === 0) void cluster.stop('charlie');
    });
    assert.equal(code, 0, stderr);
    const http = (await httpJson(webPort, '/status')).body as unknown as Snapshot;
    const cliDoc = frames[frames.length - 1] as Snapshot;
    assert.deepEqual(Object.keys(cliDoc).sort(), Object.keys(http).sort(), 'top-level fields');
    // Where a writer has nothing to say the value is null: the server has no observer report, the CLI no stats.
    for (const key of Object.keys(http) as Array<keyof Snapshot>) {
      if (['stats', 'observer', 'lastFailover'].includes(key)) continue;
      if (key === 'servers') continue;
      assert.deepEqual(shape(cliDoc[key]), shape(http[key]), `the shape of ${key}`);
    }
    assert.deepEqual(shape(cliDoc.servers.bravo), shape(http.servers.bravo), 'a server record');
    assert.equal(http.observer, null);
    assert.equal(cliDoc.stats, null);
    assert.equal(cliDoc.state, 'observer');
    assert.equal(cliDoc.hostname, '');
    // The same cluster, seen from alpha and by the observer.
    assert.equal(cliDoc.masterHostname, http.masterHostname);
    assert.equal(cliDoc.term, http.term);
    assert.deepEqual(
      cliDoc.view.map((s) => [s.hostname, s.state]),
      http.view.map((s) => [s.hostname, s.state]),
    );
    assert.deepEqual(Object.keys(cliDoc.servers).sort(), Object.keys(http.servers).sort());
    assert.deepEqual(cliDoc.servers.bravo?.data, { jobs: 2 });
    assert.deepEqual(cliDoc.members, http.members);
    assert.deepEqual(
      cliDoc.departed.map((d) => [d.hostname, d.reason]),
      [['charlie', 'shutdown']],
    );
    assert.deepEqual(
      http.departed.map((d) => [d.hostname, d.reason]),
      [['charlie', 'shutdown']],
    );
    assert.deepEqual(shape(cliDoc.departed[0]), shape(http.departed[0]), 'a departure');
  });

  test('the table counts in words that agree with the number: 1 heartbeat, 2 servers', () => {
    const doc = (heartbeats: number, servers: number): Snapshot =>
      ({
        view: Array.from({ length: servers }, (_, i) => ({
          hostname: `s${i}`,
          ip: '127.0.0.1',
          state: 'slave',
          claimsMaster: false,
          eligible: true,
          self: false,
          locked: false,
          term: 1,
          priority: 0,
          lastHeardMs: 100,
          uptime: 5,
          tickMs: 1000,
          checkBeats: 3,
        })),
        departed: [],
        servers: {},
        conflict: [],
        masterHostname: '',
        generatedAt: Date.now(),
        observer: {
          port: 3014,
          listenedMs: 2000,
          packets: heartbeats,
          heartbeats,
          hellosSent: 1,
          hellosFailed: 0,
          helloError: null,
          dropped: {},
        },
      }) as unknown as Snapshot;
    assert.match(renderTable(doc(1, 1)), /^1 server on port 3014[\s\S]*\nheard 1 heartbeat in 2\.0 s$/);
    assert.match(renderTable(doc(2, 2)), /^2 servers on port 3014[\s\S]*\nheard 2 heartbeats in 2\.0 s$/);
    assert.match(renderTable(doc(0, 0)), /^0 servers [\s\S]*\nheard 0 heartbeats in/);
  });
});
