/**
 * The component with `coordinator` set, against a real three-member etcd (Debian's
 * `etcd-server` on 127.0.0.1 ports): whole pixl-server processes (tools/process-cluster.ts)
 * for kill, SIGSTOP and graceful handoff; and, in this process, the app-facing surface that
 * must not tell the modes apart (events, servers, send/request by UDP unicast to the
 * registered addresses, the fencing term). Skipped, naming the package, without etcd.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import PixlServer = require('pixl-server');
import MultiServer = require('../src/index');
import { EtcdCluster, etcdUnavailable, ETCD_PACKAGE } from '../tools/etcd-cluster';
import { ProcessCluster } from '../tools/process-cluster';
import { preciseNow } from '../tools/child';
import { assertLoopbackConfig, freeUdpPort } from '../tools/loopback';
import { fencedWrite } from '../tools/lease-child';
import { stop } from './helpers/pixl';
import { pause, waitFor } from './helpers/wait';

const unavailable = etcdUnavailable();
/**
 * A tick of 1 s: servers that start within a tick elect by rank, and a pixl-server process
 * takes a varying few hundred ms to load etcd3 and gRPC at startup on a busy machine.
 * Failover does not depend on it: the TTL is set to the least the test etcd's timings
 * allow (tools/etcd-cluster.ts: election timeout 250 ms, so 2 s).
 */
const TICK_S = 1;
const CHECK_BEATS = 2;
const TTL_S = 2;
const ETCD_EXPIRY_SWEEP_MS = 500;

let etcd: EtcdCluster;
let prefixes = 0;

function coordinator(): NonNullable<MultiServer.Config['coordinator']> {
  return {
    type: 'etcd',
    hosts: etcd.endpoints,
    ttl: TTL_S,
    election_timeout_ms: etcd.electionMs,
    prefix: `/psm-component-${process.pid}/${++prefixes}/`,
  };
}

describe('coordinator: the component, with real etcd', {
  skip: unavailable ? `real etcd needed: ${unavailable} (Debian package ${ETCD_PACKAGE})` : false,
}, () => {
  before(async () => {
    etcd = await EtcdCluster.start();
  });
  after(async () => {
    await etcd?.close();
  });

  async function processes(hosts: string[], body: (cluster: ProcessCluster) => Promise<void>): Promise<void> {
    const cluster = new ProcessCluster({ heartbeatFreq: TICK_S, checkBeats: CHECK_BEATS, multi: { coordinator: coordinator() } });
    try {
      // One loopback address per member: message sockets are unicast, bound exclusively.
      await Promise.all(hosts.map((host, i) => cluster.start(host, { bind_ip: `127.0.0.${i + 2}` }, true)));
      await cluster.release(hosts);
      await body(cluster);
    } finally {
      await cluster.stopAll();
    }
  }

  test("processes: rank elects, SIGKILL of the master fails over within TTL + etcd's sweep to the next in rank", async () => {
    await processes(['alpha', 'bravo', 'charlie'], async (cluster) => {
      const { master } = await cluster.waitAgreed(10_000);
      assert.equal(master, 'alpha');
      assert.deepEqual(cluster.state('bravo')?.servers, ['alpha', 'bravo', 'charlie']);
      const term = cluster.state('bravo')?.term ?? 0;
      assert.ok(term > 0 && cluster.state('alpha')?.term === term && cluster.state('charlie')?.term === term);
      assert.equal(cluster.maxConcurrentMasters(), 1);
      const killedAt = cluster.kill('alpha');
      const next = await cluster.waitAgreed(5000);
      const failoverMs = preciseNow() - killedAt;
      console.log(`# component+etcd: SIGKILL of the master → ${next.master} agreed after ${failoverMs.toFixed(0)} ms`);
      assert.equal(next.master, 'bravo');
      assert.ok(failoverMs <= TTL_S * 1000 + ETCD_EXPIRY_SWEEP_MS + 500, `${failoverMs} ms`);
      assert.ok((cluster.state('bravo')?.term ?? 0) > term);
      assert.deepEqual(
        cluster.live().filter((host) => cluster.state(host)?.master),
        ['bravo'],
      );
      await cluster.waitFor(() => !(cluster.state('bravo')?.servers ?? []).includes('alpha'), 10_000, 'alpha removed');
    });
  });

  test('processes: a master frozen past its TTL reports slave first when resumed; graceful shutdown, stepDown, promote hand over in ms', async () => {
    await processes(['alpha', 'bravo', 'charlie', 'delta'], async (cluster) => {
      assert.equal((await cluster.waitAgreed(10_000)).master, 'alpha');
      cluster.kill('alpha', 'SIGSTOP');
      await cluster.waitFor(
        () => cluster.state('bravo')?.master === true && cluster.state('charlie')?.masterHostname === 'bravo',
        5000,
        'bravo master',
      );
      const resumedAt = cluster.kill('alpha', 'SIGCONT');
      await cluster.waitFor(
        () => cluster.reports.some((r) => r.host === 'alpha' && r.t >= resumedAt && r.type === 'slave'),
        10_000,
        'alpha slave',
      );
      const first = cluster.reports.filter((r) => r.host === 'alpha' && r.t >= resumedAt)[0];
      assert.ok(first && !first.state.master, `first report after resume: ${first?.type} master=${first?.state.master}`);
      await cluster.waitAgreed(10_000, 'bravo');

      let t = preciseNow();
      await cluster.stop('bravo');
      const afterShutdown = await cluster.waitAgreed(10_000, 'alpha');
      const shutdownMs = afterShutdown.at - t;
      t = preciseNow();
      cluster.command('alpha', { cmd: 'stepdown' });
      const afterStepDown = await cluster.waitAgreed(10_000, 'charlie');
      const stepDownMs = afterStepDown.at - t;
      t = preciseNow();
      cluster.command('delta', { cmd: 'promote' });
      const afterPromote = await cluster.waitAgreed(10_000, 'delta');
      const promoteMs = afterPromote.at - t;
      console.log(
        `# component+etcd: graceful shutdown ${shutdownMs.toFixed(0)} ms, stepDown ${stepDownMs.toFixed(0)} ms, promote ${promoteMs.toFixed(0)} ms`,
      );
      // Milliseconds, not a TTL (a busy machine slows etcd too; the bench measures them).
      for (const ms of [shutdownMs, stepDownMs, promoteMs]) assert.ok(ms < 2000, `${ms} ms`);
      await cluster.waitFor(
        () => cluster.reports.some((r) => r.host === 'delta' && r.type === 'promoted' && !r.detail),
        2000,
        'promote() resolved',
      );
    });
  });

  test('in process: the app sees the same surface (events, servers, data, term) and messages go by UDP to registered addresses', async () => {
    const logDir = mkdtempSync(path.join(os.tmpdir(), 'psm-coordinated-'));
    const port = await freeUdpPort();
    const section = coordinator();
    const make = (hostname: string, ip: string): PixlServer => {
      const multi = { comm_port: port, heartbeat_freq: TICK_S, check_beats: CHECK_BEATS, bind_ip: ip, coordinator: section };
      assertLoopbackConfig(multi);
      return new PixlServer({
        __name: 'TestServer',
        __version: '1.0',
        config: {
          hostname,
          ip,
          foreground: true,
          echo: false,
          log_dir: logDir,
          log_filename: `${hostname}.log`,
          debug_level: 5,
          MultiServer: multi,
        },
        components: [MultiServer],
      });
    };
    // One host, one config: bravo finds comm_port taken by alpha, takes a free one and registers it.
    const a = make('alpha', '127.0.0.2');
    const b = make('bravo', '127.0.0.2');
    const events: string[] = [];
    a.on('master', (term: number) => events.push(`alpha master ${term}`));
    b.on('slave', () => events.push('bravo slave'));
    b.on('addserver', (record: { hostname: string }) => events.push(`bravo addserver ${record.hostname}`));
    const ma = a.MultiServer as MultiServer;
    const mb = b.MultiServer as MultiServer;
    try {
      await Promise.all(
        [a, b].map(
          (server) => new Promise<void>((resolve, reject) => server.startup((err?: Error | null) => (err ? reject(err) : resolve()))),
        ),
      );
      await waitFor(() => Boolean(ma.master && mb.masterHostname === 'alpha' && mb.servers.alpha), 'alpha master, followed by bravo');
      assert.ok(ma.master && mb.slave && mb.masterHostname === 'alpha');
      assert.ok(
        events.includes(`alpha master ${ma.term}`) && events.includes('bravo slave') && events.includes('bravo addserver alpha'),
        events.join('; '),
      );
      assert.equal(ma.term, mb.term);
      assert.equal(Object.getPrototypeOf(mb.servers), null);
      assert.equal(mb.servers.alpha?.ip, '127.0.0.2');
      assert.equal(mb.servers.alpha?.master, true);
      // The term fences a write in etcd.
      const { Etcd3 } = require('etcd3') as typeof import('etcd3');
      const kv = new Etcd3({ hosts: etcd.endpoints });
      try {
        assert.equal(await fencedWrite(kv, `${section.prefix as string}term`, ma.term, `${section.prefix as string}jobs/1`, 'x'), true);
        assert.equal(
          await fencedWrite(kv, `${section.prefix as string}term`, ma.term - 1, `${section.prefix as string}jobs/2`, 'x'),
          false,
        );
      } finally {
        kv.close();
      }
      // Data reaches the peer's record (at most once a tick).
      ma.data = { jobs: 4 };
      await waitFor(() => JSON.stringify(mb.servers.alpha?.data) === '{"jobs":4}', "alpha's data in bravo's record");
      assert.deepEqual(mb.servers.alpha?.data, { jobs: 4 });
      // request/reply by UDP, unicast to the registered addresses.
      mb.on('message', (type, payload, from, reply) => {
        if (type === 'status') reply?.({ from: 'bravo', got: payload, sender: from });
      });
      const answer = await ma.request('bravo', 'status', { q: 1 }, { timeoutMs: 3000 });
      assert.deepEqual(answer, { from: 'bravo', got: { q: 1 }, sender: 'alpha' });
      assert.ok(ma.stats.packetsOut >= 1 && mb.stats.packetsIn >= 1);
      assert.equal((ma.transport as { boundPort?: number } | null)?.boundPort, port);
      assert.notEqual((mb.transport as { boundPort?: number } | null)?.boundPort, port, 'bravo took another port');
      ma.on('message', (type, payload, _from, reply) => {
        if (type === 'status') reply?.({ from: 'alpha', got: payload });
      });
      assert.deepEqual(
        await mb.request('alpha', 'status', { q: 2 }, { timeoutMs: 3000 }),
        { from: 'alpha', got: { q: 2 } },
        'and back, to the port alpha registered',
      );
      // The CLI reads the cluster from etcd.
      const cli = JSON.parse(
        execFileSync(
          process.execPath,
          [
            path.join(__dirname, '..', 'src', 'cli.js'),
            'etcd-status',
            '--etcd',
            etcd.endpoints[0] as string,
            '--prefix',
            section.prefix as string,
            '--json',
            // Its own deadline for etcd (5 s by default) is too short for a process that loads
            // gRPC on a loaded machine: a generous one, as every wait here.
            '--timeout',
            '30000',
          ],
          { encoding: 'utf8' },
        ),
      ) as {
        masterHostname: string;
        term: number;
        lastTerm: number;
        members: Array<{ hostname: string; port: number; master: boolean }>;
      };
      assert.equal(cli.masterHostname, 'alpha');
      assert.equal(cli.term, ma.term);
      assert.equal(cli.lastTerm, ma.term);
      assert.deepEqual(
        cli.members.map((m) => [m.hostname, m.master, m.port]),
        [
          ['alpha', true, port],
          ['bravo', false, (mb.transport as { boundPort?: number } | null)?.boundPort],
        ],
      );
    } finally {
      await Promise.all([a, b].map(stop));
      rmSync(logDir, { recursive: true, force: true });
    }
  });

  test('credentials refused: logged at level 1 with the reason after a TTL, authentication retried with a backoff, and the password in no log line (SPEC 15.6)', async () => {
    // etcd's own count of Authenticate calls (its auth is off here: every call is refused, as a wrong password is).
    const authenticateCalls = async (): Promise<number> => {
      let total = 0;
      for (const url of etcd.endpoints) {
        const text = await (await fetch(`${url}/metrics`)).text();
        for (const line of text.split('\n'))
          if (line.startsWith('grpc_server_started_total') && line.includes('grpc_method="Authenticate"'))
            total += Number(line.split(' ').pop());
      }
      return total;
    };
    const secret = 'hunter2-d0-not-log-me';
    // In a file, the password stays out of the configuration pixl-server itself logs at level 10;
    // inline, our own lines (up to level 9, where pixl-server's reload dump starts) never carry it.
    for (const [how, debugLevel] of [
      ['password_file', 10],
      ['password', 8],
    ] as const) {
      const logDir = mkdtempSync(path.join(os.tmpdir(), 'psm-coordinated-'));
      const passwordFile = path.join(logDir, 'etcd-password');
      writeFileSync(passwordFile, `${secret}\n`, { mode: 0o600 });
      const port = await freeUdpPort();
      const credentials =
        how === 'password_file' ? { username: 'root', password_file: passwordFile } : { username: 'root', password: secret };
      const multi = {
        comm_port: port,
        heartbeat_freq: TICK_S,
        check_beats: CHECK_BEATS,
        bind_ip: '127.0.0.2',
        coordinator: { ...coordinator(), ...credentials },
      };
      assertLoopbackConfig(multi);
      const server = new PixlServer({
        __name: 'TestServer',
        __version: '1.0',
        config: {
          hostname: 'alpha',
          ip: '127.0.0.2',
          foreground: true,
          echo: false,
          log_dir: logDir,
          log_filename: 'alpha.log',
          debug_level: debugLevel,
          MultiServer: multi,
        },
        components: [MultiServer],
      });
      const before = await authenticateCalls();
      try {
        await new Promise<void>((resolve, reject) => server.startup((err?: Error | null) => (err ? reject(err) : resolve())));
        const windowMs = 6000;
        // The window is the point: its calls are counted.
        await pause(windowMs);
        const calls = (await authenticateCalls()) - before;
        console.log(`# credentials refused (${how}): ${calls} Authenticate calls in ${windowMs / 1000} s`);
        // Without the backoff: about 6 a second. With it: 1 s, 2 s, 4 s, … apart (a few members each).
        assert.ok(calls >= 1 && calls <= 10, `${calls} Authenticate calls in ${windowMs} ms`);
        assert.equal((server.MultiServer as MultiServer).master, false);
      } finally {
        await stop(server);
      }
      const log = readFileSync(path.join(logDir, 'alpha.log'), 'utf8');
      rmSync(logDir, { recursive: true, force: true });
      assert.ok(log.length > 1000, 'the log was written');
      assert.deepEqual(
        log
          .split('\n')
          .filter((line) => line.includes(secret))
          .map((line) => line.slice(0, 300)),
        [],
        `${how}: the password reached the log`,
      );
      const failure = log.split('\n').find((line) => /no working contact with etcd/.test(line));
      assert.ok(failure, 'the failure was logged');
      assert.match(failure, /\[1\]\[Coordinator|\]\[1\]\[/, 'at level 1');
      assert.match(failure, /authentication refused \(check coordinator\.username and coordinator\.password\)/);
    }
  });

  test('configured but the etcd hosts unreachable: startup succeeds, nobody is master, and nothing crashes', async () => {
    const logDir = mkdtempSync(path.join(os.tmpdir(), 'psm-coordinated-'));
    const port = await freeUdpPort();
    const multi = {
      comm_port: port,
      heartbeat_freq: TICK_S,
      check_beats: CHECK_BEATS,
      bind_ip: '127.0.0.2',
      coordinator: { type: 'etcd' as const, hosts: [`http://127.0.0.1:${await freeUdpPort()}`], ttl: TTL_S, election_timeout_ms: 250 },
    };
    assertLoopbackConfig(multi);
    const server = new PixlServer({
      __name: 'TestServer',
      __version: '1.0',
      config: {
        hostname: 'alpha',
        ip: '127.0.0.2',
        foreground: true,
        echo: false,
        log_dir: logDir,
        log_filename: 'alpha.log',
        debug_level: 5,
        MultiServer: multi,
      },
      components: [MultiServer],
    });
    try {
      await new Promise<void>((resolve, reject) => server.startup((err?: Error | null) => (err ? reject(err) : resolve())));
      // A window in which nothing may happen: no crash, no master.
      await pause(1500);
      const m = server.MultiServer as MultiServer;
      assert.equal(m.master, false);
      assert.equal(m.masterHostname, '');
    } finally {
      await stop(server);
      rmSync(logDir, { recursive: true, force: true });
    }
  });
});
