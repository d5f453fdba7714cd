/**
 * The status CLI against a live loopback cluster: it lists every server with its role,
 * never appears in their tables, prints JSON for scripts, redraws with --watch, and fails
 * clearly when nothing is heard or the port cannot be bound.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as path from 'node:path';
import { ProcessCluster } from '../tools/process-cluster';
import { freeUdpPort } from '../tools/loopback';
import type { Snapshot } from '../src/cli';

const CLI = path.resolve(__dirname, '..', 'src', 'cli.js');
const LOOPBACK = ['--broadcast-ip', '127.255.255.255'];

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('pixl-server-multi status', () => {
  const cluster = new ProcessCluster({ heartbeatFreq: 0.2, checkBeats: 3, multi: { secret_key: 'cli-test-secret-0123456789' } });
  before(async () => {
    await Promise.all(['alpha', 'bravo', 'charlie'].map((host) => cluster.start(host, {}, true)));
    await cluster.release(['alpha', 'bravo', 'charlie']);
    await cluster.waitAgreed(15_000);
  });
  after(() => cluster.stopAll());

  test('--json lists every server with its role, as an observer nobody counts', async () => {
    const { code, stdout, stderr } = await cli(['status', '--port', String(cluster.port), ...LOOPBACK, '--secret', 'cli-test-secret-0123456789', '--listen', '1', '--json']);
    assert.equal(code, 0, stderr);
    const snapshot = JSON.parse(stdout) as Snapshot;
    const master = cluster.agreedMaster();
    assert.equal(snapshot.masterHostname, master);
    assert.deepEqual(snapshot.servers.map((s) => s.hostname), ['alpha', 'bravo', 'charlie']);
    for (const server of snapshot.servers) {
      assert.equal(server.role, server.hostname === master ? 'master' : 'slave');
      assert.equal(server.eligible, true);
      assert.equal(server.term, snapshot.term);
      assert.ok(server.lastHeard >= 0 && server.lastHeard < 1, `${server.hostname} last heard ${server.lastHeard}`);
    }
    assert.ok(snapshot.term >= 1);
    // The observer never shows up in any server's table.
    for (const host of cluster.live()) cluster.command(host, { cmd: 'state' });
    const since = Date.now();
    await cluster.waitFor(() => cluster.live().every((h) => cluster.reports.some((r) => r.host === h && r.type === 'state' && r.t >= since - 5)), 10_000);
    for (const host of cluster.live()) assert.deepEqual(cluster.state(host)?.servers, ['alpha', 'bravo', 'charlie']);
  });

  test('the table names the master and each server', async () => {
    const { code, stdout } = await cli(['status', '--port', String(cluster.port), ...LOOPBACK, '--secret', 'cli-test-secret-0123456789', '--listen', '0.5']);
    assert.equal(code, 0);
    assert.match(stdout, new RegExp(`3 servers on port ${cluster.port}, master: ${cluster.agreedMaster()} \\(term \\d+\\)`));
    for (const host of ['alpha', 'bravo', 'charlie']) assert.match(stdout, new RegExp(`│ ${host}\\s+│ 127\\.0\\.0\\.1`));
  });

  test('without the secret nothing is heard, and it says what was dropped', async () => {
    const { code, stderr } = await cli(['status', '--port', String(cluster.port), ...LOOPBACK, '--listen', '0.5']);
    assert.equal(code, 1);
    assert.match(stderr, /no heartbeat heard/);
    assert.match(stderr, /unauthenticated|unexpected-auth/);
  });

  test('--watch redraws', async () => {
    const child = spawn(process.execPath, [CLI, 'status', '--port', String(cluster.port), ...LOOPBACK, '--secret', 'cli-test-secret-0123456789', '--watch', '--frames', '2', '--json']);
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0);
    const frames = out.trim().split('\n').map((line) => JSON.parse(line) as Snapshot);
    assert.equal(frames.length, 2);
    assert.deepEqual(frames[1]?.servers.map((s) => s.hostname), ['alpha', 'bravo', 'charlie']);
  });
});

describe('pixl-server-multi status errors', () => {
  test('a port held without address reuse is a clear error', async () => {
    const holder = dgram.createSocket({ type: 'udp4', reuseAddr: false });
    const port = await freeUdpPort();
    await new Promise<void>((resolve) => holder.bind(port, '0.0.0.0', () => resolve()));
    try {
      const { code, stderr } = await cli(['status', '--port', String(port), ...LOOPBACK, '--listen', '0.2']);
      assert.equal(code, 2);
      assert.match(stderr, new RegExp(`cannot listen on UDP port ${port}`));
    } finally {
      holder.close();
    }
  });

  test('bad arguments name the option', async () => {
    const { code, stderr } = await cli(['status', '--port', '99999']);
    assert.notEqual(code, 0);
    assert.match(stderr, /--port/);
  });
});
