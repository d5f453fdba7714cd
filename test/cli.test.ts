/**
 * The status CLI against live loopback clusters: an authenticated cluster at the default
 * heartbeat (20 s) is heard within the 2 s window because every hello carries an instance id
 * and a sequence; --watch keeps every live server in every frame; the state column tells
 * listening, slave, master, suspect and left apart; exit codes hold as documented.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ProcessCluster } from '../tools/process-cluster';
import { freeUdpPort } from '../tools/loopback';
import type { Snapshot } from '../src/cli';
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
function watch(args: string[], onFrame: (frame: Snapshot, index: number) => void): Promise<{ code: number | null; frames: Snapshot[]; stderr: string }> {
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

const states = (snapshot: Snapshot): Record<string, string> => Object.fromEntries(snapshot.servers.map((s) => [s.hostname, s.state]));

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
    assert.ok(snapshot.listenedMs < 2500, `listened ${snapshot.listenedMs} ms`);
    assert.deepEqual(states(snapshot), { alpha: 'listening', bravo: 'listening', charlie: 'listening' });
    assert.equal(snapshot.masterHostname, '');
    assert.deepEqual(snapshot.observer.dropped, {});
  });

  test('after a promote: master and slaves, each answering the hello at once', async () => {
    cluster.command('alpha', { cmd: 'promote' });
    await cluster.waitFor(() => HOSTS.every((h) => cluster.state(h)?.masterHostname === 'alpha'), 10_000, 'everyone to follow alpha');
    const { code, stdout, stderr } = await cli([...base(), '--json']);
    assert.equal(code, 0, stderr);
    const snapshot = JSON.parse(stdout) as Snapshot;
    assert.deepEqual(states(snapshot), { alpha: 'master', bravo: 'slave', charlie: 'slave' });
    assert.equal(snapshot.masterHostname, 'alpha');
    for (const server of snapshot.servers) {
      assert.equal(server.term, snapshot.term);
      assert.ok(server.lastHeard < 2, `${server.hostname} last heard ${server.lastHeard} s ago`);
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
    assert.deepEqual(snapshot.servers, []);
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
    frames.forEach((frame, i) => assert.deepEqual(frame.servers.map((s) => s.hostname), HOSTS, `frame ${i + 1} lists every server`));
    // alpha's silence is judged by the tock: master or suspect at first, then left for good.
    const alpha = frames.slice(killedAt + 1).map((f) => states(f).alpha);
    assert.ok(alpha.every((s) => ['master', 'suspect', 'left'].includes(s as string)), alpha.join(' '));
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
      const datagram = encode({ action: 'heartbeat', hostname, ip: '127.0.0.1', master: false, eligible: true, uptime: 1, data: {}, iid: hostname === 'quick' ? '00000000000000aa' : '00000000000000bb', seq: ++seq, ...timing });
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
    assert.deepEqual(frames[0]?.servers, []);
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
    assert.match(stdout, /Exit codes: 0 servers listed, 1 nothing heard or a run-time error, 2 bad arguments/);
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
    assert.deepEqual(watched.frames[0]?.servers, []);
  });
});
