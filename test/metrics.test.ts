/**
 * Prometheus metrics scraped over real HTTP from pixl-server-web (beside pixl-server-api),
 * parsed strictly, and seen to change after a failover; the registry merges into an app's;
 * and without prom-client installed, metrics fail startup with the install command.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import PixlServer = require('pixl-server');
import { Registry, Counter } from 'prom-client';
import MultiServer = require('../src/index');
import { assertLoopbackConfig, freeUdpPort } from '../tools/loopback';
import { freeTcpPort, httpGet, loopbackWebConfig } from '../tools/web';
import { parsePrometheusText, sampleValue, type Family } from '../tools/prom-text';
import { waitFor } from './helpers/wait';
import { stop } from './helpers/pixl';

const ROOT = path.resolve(__dirname, '..', '..');
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Member {
  server: PixlServer;
  multi: MultiServer;
  port: number;
}

async function member(hostname: string, udpPort: number): Promise<Member> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'psm-metrics-'));
  dirs.push(dir);
  const port = await freeTcpPort();
  const section = {
    comm_port: udpPort,
    heartbeat_freq: 0.2,
    check_beats: 3,
    broadcast_ip: '127.255.255.255',
    http_metrics_uri: '/api/cluster/metrics',
  };
  assertLoopbackConfig(section);
  const server = new PixlServer({
    __name: 'MetricsTest',
    __version: '1.0',
    config: {
      hostname,
      ip: '127.0.0.1',
      foreground: true,
      echo: false,
      log_dir: dir,
      debug_level: 5,
      WebServer: loopbackWebConfig(port, dir),
      MultiServer: section,
    },
    components: [MultiServer, require('pixl-server-web'), require('pixl-server-api')],
  });
  await new Promise<void>((resolve) => {
    server.once('ready', () => resolve());
    server.startup();
  });
  return { server, multi: server.MultiServer as MultiServer, port };
}

async function scrape(m: Member): Promise<Map<string, Family>> {
  const answer = await httpGet(m.port, '/api/cluster/metrics');
  assert.equal(answer.status, 200, answer.text.slice(0, 200));
  assert.match(answer.type, /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(answer.text);
}

describe('the metrics route on a live two-server cluster', () => {
  let udpPort = 0;
  let alpha: Member;
  let bravo: Member;
  before(async () => {
    udpPort = await freeUdpPort();
    [alpha, bravo] = await Promise.all([member('alpha', udpPort), member('bravo', udpPort)]);
    await waitFor(() => alpha.multi.master && bravo.multi.masterHostname === 'alpha', 'alpha to be master');
  });
  after(async () => {
    for (const m of [alpha, bravo]) if (!m.server.shut) await stop(m.server);
  });

  test("every family is typed and documented, and the values are the component's", async () => {
    const families = await scrape(alpha);
    const expected: Record<string, Family['type']> = {
      pixl_multi_is_master: 'gauge',
      pixl_multi_master_known: 'gauge',
      pixl_multi_eligible: 'gauge',
      pixl_multi_term: 'gauge',
      pixl_multi_members: 'gauge',
      pixl_multi_servers: 'gauge',
      pixl_multi_failovers_total: 'counter',
      pixl_multi_last_failover_seconds: 'gauge',
      pixl_multi_last_failover_timestamp_seconds: 'gauge',
      pixl_multi_elections_total: 'counter',
      pixl_multi_handoffs_total: 'counter',
      pixl_multi_packets_received_total: 'counter',
      pixl_multi_packets_sent_total: 'counter',
      pixl_multi_received_bytes_total: 'counter',
      pixl_multi_sent_bytes_total: 'counter',
      pixl_multi_send_errors_total: 'counter',
      pixl_multi_old_key_packets_total: 'counter',
      pixl_multi_dropped_packets_total: 'counter',
      pixl_multi_health_check_passing: 'gauge',
      pixl_multi_health_check_failures: 'gauge',
      pixl_multi_health_checks_total: 'counter',
    };
    assert.deepEqual(Object.fromEntries([...families.values()].map((f) => [f.name, f.type])), expected);
    for (const family of families.values()) assert.ok(family.help.length > 10, `${family.name} has help`);
    assert.equal(sampleValue(families, 'pixl_multi_is_master'), 1);
    assert.equal(sampleValue(families, 'pixl_multi_term'), alpha.multi.term);
    assert.equal(sampleValue(families, 'pixl_multi_members'), 2);
    assert.equal(sampleValue(families, 'pixl_multi_servers'), 2);
    assert.ok(sampleValue(families, 'pixl_multi_packets_sent_total') >= 2);
    assert.ok(sampleValue(families, 'pixl_multi_received_bytes_total') > 0);
    const slave = await scrape(bravo);
    assert.equal(sampleValue(slave, 'pixl_multi_is_master'), 0);
    assert.equal(sampleValue(slave, 'pixl_multi_master_known'), 1);
  });

  test('drops are counted by reason', async () => {
    const before = await scrape(bravo);
    assert.equal(before.get('pixl_multi_dropped_packets_total')?.samples.filter((s) => s.labels.reason === 'not-json').length, 0);
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.send(Buffer.from('garbage'), udpPort, '127.0.0.1', () => resolve()));
    socket.close();
    await waitFor(
      () => (bravo.multi.stats.dropped['not-json'] ?? 0) > 0 || (alpha.multi.stats.dropped['not-json'] ?? 0) > 0,
      'the garbage to be dropped',
    );
    // With address reuse one of the two sockets gets a unicast datagram: scrape whichever did.
    const dropper = (bravo.multi.stats.dropped['not-json'] ?? 0) > 0 ? bravo : alpha;
    assert.equal(sampleValue(await scrape(dropper), 'pixl_multi_dropped_packets_total', { reason: 'not-json' }), 1);
  });

  test('after a failover: the survivor is master, its term rose, the failover is counted and timed', async () => {
    const before = await scrape(bravo);
    const termBefore = sampleValue(before, 'pixl_multi_term');
    assert.equal(sampleValue(before, 'pixl_multi_failovers_total'), 0);
    assert.equal(sampleValue(before, 'pixl_multi_last_failover_timestamp_seconds'), 0);
    const stoppedAt = Date.now() / 1000;
    await stop(alpha.server);
    await waitFor(() => bravo.multi.master, 'bravo to take over');
    const after = await scrape(bravo);
    assert.equal(sampleValue(after, 'pixl_multi_is_master'), 1);
    assert.ok(sampleValue(after, 'pixl_multi_term') > termBefore);
    assert.equal(sampleValue(after, 'pixl_multi_failovers_total'), 1);
    assert.equal(sampleValue(after, 'pixl_multi_elections_total'), 1);
    assert.equal(sampleValue(after, 'pixl_multi_servers'), 1);
    // A graceful shutdown hands over at once: it took at most a heartbeat interval since alpha was last heard.
    const took = sampleValue(after, 'pixl_multi_last_failover_seconds');
    assert.ok(took >= 0 && took < 1, `failover took ${took} s`);
    assert.ok(sampleValue(after, 'pixl_multi_last_failover_timestamp_seconds') >= stoppedAt - 0.01);
  });

  test("the registry merges into an app's own", async () => {
    const app = new Registry();
    new Counter({ name: 'app_requests_total', help: 'Requests.', registers: [app] }).inc(7);
    const merged = Registry.merge([app, bravo.multi.metricsRegistry() as Registry]);
    const families = parsePrometheusText(await merged.metrics());
    assert.equal(sampleValue(families, 'app_requests_total'), 7);
    assert.equal(sampleValue(families, 'pixl_multi_is_master'), 1);
    assert.equal(bravo.multi.metricsRegistry(), bravo.multi.metricsRegistry(), 'one registry per component');
  });
});

describe('without prom-client installed', () => {
  const child = async (metrics: boolean): Promise<{ code: number; stdout: string; stderr: string }> => {
    const udpPort = await freeUdpPort();
    return new Promise((resolve) => {
      const script = `
        const PixlServer = require('pixl-server');
        const MultiServer = require(${JSON.stringify(path.join(ROOT, 'dist', 'src', 'index.js'))});
        const section = { comm_port: ${udpPort}, heartbeat_freq: 0.2, broadcast_ip: '127.255.255.255' ${metrics ? ", http_metrics_uri: '/metrics'" : ''} };
        const server = new PixlServer({ __name: 'T', __version: '1', config: { hostname: 'solo', foreground: true, echo: false, log_dir: process.argv[1], MultiServer: section }, components: [MultiServer] });
        server.once('prestart', () => server.logger.on('row', (line, cols, args) => { if (args.category === 'error') console.log('ERROR ' + args.msg); }));
        server.startup(() => {
          let thrown = 'none';
          try { server.MultiServer.metricsRegistry(); } catch (err) { thrown = err.message; }
          console.log('STARTED loaded=' + Object.keys(require.cache).some((f) => f.includes('prom-client')) + ' registry=' + thrown);
          server.shutdown();
        });
        setTimeout(() => process.exit(0), 3000).unref();
      `;
      const dir = mkdtempSync(path.join(os.tmpdir(), 'psm-metrics-'));
      dirs.push(dir);
      execFile(
        process.execPath,
        ['-r', path.join(ROOT, 'dist', 'tools', 'hide-module.js'), '-e', script, dir],
        { cwd: ROOT, env: { ...process.env, PSM_HIDE_MODULES: 'prom-client' }, timeout: 20_000 },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  };

  test('metrics configured: startup fails, naming `npm install prom-client`', async () => {
    const { stdout } = await child(true);
    assert.match(stdout, /ERROR MultiServer metrics need the prom-client package, which is not installed: run `npm install prom-client`/);
    assert.doesNotMatch(stdout, /STARTED/);
  });

  test('metrics not configured: the server runs and never loads prom-client; asking for the registry says what to install', async () => {
    const { stdout } = await child(false);
    assert.match(stdout, /STARTED loaded=false registry=MultiServer metrics need the prom-client package.*npm install prom-client/);
  });
});
