/**
 * The opt-in HTTP routes, served by a real pixl-server-web on loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import PixlServer = require('pixl-server');
import MultiServer = require('../src/index');
import { freeUdpPort } from '../tools/loopback';

function freeTcpPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function get(port: number, uri: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`http://127.0.0.1:${port}${uri}`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

test('status and health routes on a real pixl-server-web: 503 until a master is known, then 200', async () => {
  const logDir = mkdtempSync(path.join(os.tmpdir(), 'psm-http-'));
  const [udpPort, httpPort] = await Promise.all([freeUdpPort(), freeTcpPort()]);
  const server = new PixlServer({
    __name: 'HttpTest',
    __version: '1.0',
    config: {
      hostname: 'web1', ip: '127.0.0.1', foreground: true, echo: false, log_dir: logDir, debug_level: 5,
      WebServer: { http_port: httpPort, http_bind_address: '127.0.0.1', http_htdocs_dir: logDir },
      MultiServer: {
        comm_port: udpPort, heartbeat_freq: 0.2, check_beats: 3, broadcast_ip: '127.255.255.255',
        http_status_uri: '/api/cluster/status', http_health_uri: '/api/cluster/health',
      },
    },
    // MultiServer first: its routes must survive pixl-server-web's startup.
    components: [MultiServer, require('pixl-server-web')],
  });
  await new Promise<void>((resolve) => server.startup(() => resolve()));
  const multi = server.MultiServer as MultiServer;
  try {
    const early = await get(httpPort, '/api/cluster/health');
    assert.equal(multi.masterHostname, '', 'the test needs to ask before the first tock ends');
    assert.equal(early.status, 503);
    assert.equal(early.body.ok, false);

    await new Promise<void>((resolve) => (multi.master ? resolve() : multi.once('master', () => resolve())));
    const health = await get(httpPort, '/api/cluster/health');
    assert.equal(health.status, 200);
    assert.deepEqual(health.body, { ok: true, master: 'web1', term: 1 });

    const status = await get(httpPort, '/api/cluster/status');
    assert.equal(status.status, 200);
    assert.equal(status.body.masterHostname, 'web1');
    assert.equal(status.body.master, true);
    assert.equal(status.body.term, 1);
    assert.deepEqual(status.body.members, ['web1']);
    assert.deepEqual(Object.keys(status.body.servers as object), ['web1']);
    const stats = status.body.stats as Record<string, number>;
    assert.equal(stats.elections, 1);
    assert.equal(stats.term, 1);
    assert.ok((stats.packetsOut ?? 0) >= 2);
  } finally {
    await new Promise<void>((resolve) => server.shutdown(() => resolve()));
    rmSync(logDir, { recursive: true, force: true });
  }
});
