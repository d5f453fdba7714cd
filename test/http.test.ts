/**
 * The HTTP routes inside a real app: pixl-server-web AND pixl-server-api loaded together, as
 * most pixl-server apps run, with the routes under /api/ where pixl-server-api's catch-all
 * `/api/(\w+)` used to answer them first ("200 Unsupported API" whatever the cluster's state).
 * Real servers on 127.0.0.1, heartbeats on loopback broadcast.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { EventEmitter } from 'node:events';
import * as os from 'node:os';
import * as path from 'node:path';
import PixlServer = require('pixl-server');
import MultiServer = require('../src/index');
import { freeUdpPort, assertLoopbackConfig } from '../tools/loopback';
import { freeTcpPort, httpGet, httpJson, loopbackWebConfig } from '../tools/web';
import { ROUTE_NAMES } from '../src/shell/http';
import { stop } from './helpers/pixl';
import { waitFor } from './helpers/wait';

const ROUTES = {
  http_status_uri: '/api/cluster/status',
  http_health_uri: '/api/cluster/health',
  http_master_uri: '/api/cluster/master',
  http_ui_uri: '/api/cluster/ui',
};

interface Member {
  server: PixlServer;
  multi: MultiServer;
  port: number;
  logs: Array<{ category: string; code: string; msg: string }>;
}

const dirs: string[] = [];

async function member(
  hostname: string,
  udpPort: number,
  options: { multi?: Record<string, unknown>; web?: Record<string, unknown>; eligible?: boolean } = {},
): Promise<Member> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'psm-http-'));
  dirs.push(dir);
  const port = await freeTcpPort();
  const section = { comm_port: udpPort, heartbeat_freq: 0.2, check_beats: 3, broadcast_ip: '127.255.255.255', ...ROUTES, ...options.multi };
  assertLoopbackConfig(section);
  const server = new PixlServer({
    __name: 'HttpTest',
    __version: '1.0',
    config: {
      hostname,
      ip: '127.0.0.1',
      foreground: true,
      echo: false,
      log_dir: dir,
      log_filename: `${hostname}.log`,
      debug_level: 5,
      WebServer: loopbackWebConfig(port, dir, options.web),
      MultiServer: section,
    },
    // MultiServer first: its routes must survive pixl-server-web's startup, and pixl-server-api
    // registers its catch-all before MultiServer's routes exist.
    components: [MultiServer, require('pixl-server-web'), require('pixl-server-api')],
  });
  const logs: Member['logs'] = [];
  server.once('prestart', () =>
    (server.logger as unknown as EventEmitter).on('row', (_line: string, _cols: unknown, args: Record<string, string>) =>
      logs.push({ category: args.category ?? '', code: String(args.code ?? ''), msg: args.msg ?? '' }),
    ),
  );
  const multi = (): MultiServer => server.MultiServer as MultiServer;
  await new Promise<void>((resolve) => {
    server.once('prestart', () => {
      if (options.eligible === false) multi().eligible = false;
    });
    server.once('ready', () => resolve());
    server.startup();
  });
  return { server, multi: multi(), port, logs };
}

after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('routes beside pixl-server-api', () => {
  let udpPort = 0;
  let alpha: Member;
  let bravo: Member;

  before(async () => {
    udpPort = await freeUdpPort();
    // Not eligible, and alone: nobody can be master, so the 503s are not a race.
    bravo = await member('bravo', udpPort, { eligible: false });
  });
  after(async () => {
    await Promise.all([alpha, bravo].filter(Boolean).map((m) => stop(m.server)));
  });

  test('pixl-server-api is live and owns the rest of /api/, while our routes are first in line', async () => {
    const other = await httpJson(bravo.port, '/api/something_else');
    assert.equal(other.status, 200);
    assert.match(String(other.body.description), /Unsupported API/, 'pixl-server-api must be loaded for this test to mean anything');
    const handlers = (bravo.server.WebServer as { uriHandlers: Array<{ name: string }> }).uriHandlers.map((h) => h.name);
    const ours = handlers.filter((name) => name.startsWith('MultiServer'));
    assert.deepEqual(
      new Set(ours),
      new Set([ROUTE_NAMES.http_status_uri, ROUTE_NAMES.http_health_uri, ROUTE_NAMES.http_master_uri, ROUTE_NAMES.http_ui_uri]),
    );
    assert.ok(handlers.indexOf('API') > handlers.indexOf(ours[ours.length - 1] as string), `handler order: ${handlers.join(', ')}`);
    assert.equal(bravo.logs.filter((l) => /shadowed/.test(l.msg)).length, 0, 'nothing shadows the routes, so nothing is logged');
  });

  test('no master anywhere: health and master answer 503, status says listening', async () => {
    const health = await httpJson(bravo.port, ROUTES.http_health_uri);
    assert.equal(health.status, 503);
    assert.deepEqual(health.body, { ok: false, reason: 'no agreed master known to this server' });
    const master = await httpJson(bravo.port, ROUTES.http_master_uri);
    assert.equal(master.status, 503);
    assert.equal(master.body.ok, false);
    const status = await httpJson(bravo.port, ROUTES.http_status_uri);
    assert.equal(status.status, 200);
    assert.equal(status.body.masterHostname, '');
    assert.equal(status.body.state, 'listening');
  });

  test('with a master: 200 for health on both, 200 for master only on the master, 503 on the slave', async () => {
    alpha = await member('alpha', udpPort);
    await waitFor(() => alpha.multi.master && bravo.multi.masterHostname === 'alpha', 'alpha to be master on both');
    for (const m of [alpha, bravo]) {
      const health = await httpJson(m.port, ROUTES.http_health_uri);
      assert.equal(health.status, 200, `health on ${m.multi.hostname}`);
      assert.deepEqual(health.body, { ok: true, master: 'alpha', term: alpha.multi.term });
    }
    const onMaster = await httpJson(alpha.port, ROUTES.http_master_uri);
    assert.equal(onMaster.status, 200);
    assert.deepEqual(onMaster.body, { ok: true, master: 'alpha', term: alpha.multi.term });
    const onSlave = await httpJson(bravo.port, ROUTES.http_master_uri);
    assert.equal(onSlave.status, 503);
    assert.deepEqual(onSlave.body, { ok: false, master: 'alpha', reason: 'this server is not the master' });

    const status = await httpJson(bravo.port, ROUTES.http_status_uri);
    assert.equal(status.body.state, 'slave');
    const view = status.body.view as Array<{ hostname: string; state: string; self: boolean }>;
    assert.deepEqual(
      view.map((s) => [s.hostname, s.state, s.self]),
      [
        ['alpha', 'master', false],
        ['bravo', 'slave', true],
      ],
    );
  });

  test('after a handoff the answers swap: the old master 503, the new one 200', async () => {
    bravo.multi.eligible = true;
    await waitFor(() => alpha.multi.members.includes('bravo'), 'alpha to count bravo as eligible');
    await alpha.multi.stepDown();
    await waitFor(() => bravo.multi.master && alpha.multi.masterHostname === 'bravo', 'bravo to be master on both');
    assert.equal((await httpJson(alpha.port, ROUTES.http_master_uri)).status, 503);
    assert.equal((await httpJson(bravo.port, ROUTES.http_master_uri)).status, 200);
    assert.equal((await httpJson(alpha.port, ROUTES.http_health_uri)).status, 200);
    assert.equal(alpha.multi.stats.handoffs, 1);
    const failover = (await httpJson(bravo.port, ROUTES.http_status_uri)).body.lastFailover as {
      from: string;
      to: string;
      ms: number;
      at: number;
    };
    assert.equal(failover.from, 'alpha');
    assert.equal(failover.to, 'bravo');
    assert.ok(failover.ms >= 0 && failover.ms < 1000, `a handoff takes about nothing: ${failover.ms} ms`);
  });

  test('the status page is HTML under a policy that allows only its own script and style', async () => {
    const page = await httpGet(bravo.port, ROUTES.http_ui_uri);
    assert.equal(page.status, 200);
    assert.match(page.type, /^text\/html/);
    assert.match(page.text, /<title>pixl-server-multi<\/title>/);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
    assert.doesNotMatch(page.text, /innerHTML|src="http|href="http/);
    const data = await httpJson(bravo.port, `${ROUTES.http_ui_uri}?format=json`);
    assert.equal(data.body.hostname, 'bravo');
    assert.equal(data.body.masterHostname, 'bravo');
  });
});

describe('what can still shadow a route, and the ACL', () => {
  test('a redirect that takes a route is logged as shadowing it; an exact match is not a regexp', async () => {
    const udpPort = await freeUdpPort();
    const solo = await member('solo', udpPort, {
      multi: { http_health_uri: '/api/cluster.health' },
      web: { http_redirects: { '^/api/cluster/status': '/moved' } },
    });
    try {
      const warning = solo.logs.find((l) => /shadowed/.test(l.msg));
      assert.ok(warning, `no shadowing warning among ${solo.logs.length} log rows`);
      assert.match(warning.msg, /http_status_uri \/api\/cluster\/status is shadowed: pixl-server-web sends it to the redirect to \/moved/);
      assert.equal((await httpGet(solo.port, ROUTES.http_status_uri)).status, 302, 'the warning is true: the redirect answers');
      // "." is literal: /api/clusterXhealth is pixl-server-api's, not ours.
      assert.equal((await httpJson(solo.port, '/api/cluster.health')).status, 503);
      assert.match(String((await httpJson(solo.port, '/api/clusterXhealth')).body.description), /Unsupported API/);
    } finally {
      await stop(solo.server);
    }
  });

  test("http_acl: routes refuse addresses outside pixl-server-web's default ACL, unless it is false", async () => {
    const udpPort = await freeUdpPort();
    const strict = await member('strict', udpPort, { web: { http_default_acl: ['10.0.0.0/8'] } });
    const open = await member('open', udpPort, { web: { http_default_acl: ['10.0.0.0/8'] }, multi: { http_acl: false } });
    try {
      for (const uri of Object.values(ROUTES)) {
        assert.equal((await httpGet(strict.port, uri)).status, 403, `${uri} with the ACL`);
        assert.notEqual((await httpGet(open.port, uri)).status, 403, `${uri} without it`);
      }
    } finally {
      await Promise.all([stop(strict.server), stop(open.server)]);
    }
  });
});
