/**
 * The network rule around the LAN opt-in: outside a test namespace, a child refuses
 * PSM_LAN_NETNS whatever its value, and the harness refuses a non-loopback cluster.
 * Nothing here needs root, and no cluster member gets far enough to open a socket.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { CHILD_SCRIPT, type ChildConfig } from '../tools/child';
import { LAN_NETNS_ENV, labCollision } from '../tools/netns';
import { ProcessCluster } from '../tools/process-cluster';

function runChild(env: Record<string, string>, config: Partial<ChildConfig>): Promise<{ code: number | null; stderr: string }> {
  const full: ChildConfig = { hostname: 'alpha', port: 9, heartbeatFreq: 0.05, checkBeats: 3, logDir: '/nonexistent', ...config };
  const child = fork(CHILD_SCRIPT, [], {
    env: { ...process.env, ...env, PSM_CHILD: JSON.stringify(full) },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.on('message', () => child.kill('SIGKILL'));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stderr })));
}

describe('the LAN opt-in is refused outside a test namespace', () => {
  for (const name of [`psm-test-${process.pid}-abc123-h0`, 'psm-test-1-0-sw', '', 'host', '../../proc/1/ns/net']) {
    test(`${LAN_NETNS_ENV}=${JSON.stringify(name)} in this namespace: the child exits before starting`, async () => {
      const { code, stderr } = await runChild({ [LAN_NETNS_ENV]: name }, {});
      assert.notEqual(code, 0);
      assert.match(stderr, /Refusing PSM_LAN_NETNS/);
    });
  }

  test('without the opt-in, a non-loopback broadcast address is refused by the child', async () => {
    const { code, stderr } = await runChild({}, { broadcastIp: '10.213.0.255' });
    assert.notEqual(code, 0);
    assert.match(stderr, /Refusing to start a test cluster with broadcast_ip "10.213.0.255"/);
  });

  test('the harness refuses a non-loopback cluster, and a namespace cluster with a broadcast_ip', () => {
    assert.throws(() => new ProcessCluster({ heartbeatFreq: 1, checkBeats: 3, broadcastIp: '192.168.1.255' }), /only loopback/);
    assert.throws(
      () => new ProcessCluster({ heartbeatFreq: 1, checkBeats: 3, netnsOf: () => 'x', multi: { broadcast_ip: '10.213.0.255' } }),
      /default broadcast computation/,
    );
  });
});

describe('a lab is never built on a network this machine uses', () => {
  // What `ip -4 -o addr show` and `ip -4 route show table all` print on a host using 10.231.2.0/24.
  const host = (args: string[]): string =>
    args.includes('addr')
      ? '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n2: eth0    inet 10.231.2.7/24 brd 10.231.2.255 scope global eth0\\\n'
      : 'default via 10.231.2.1 dev eth0\n10.231.2.0/24 dev eth0 proto kernel scope link src 10.231.2.7\nblackhole 172.16.0.0/12\nlocal 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1\n';

  test('an overlapping address or route refuses the block, naming what it overlaps; the default route does not', () => {
    assert.match(labCollision('10.231.0.0/16', host) ?? '', /overlaps 10\.231\.2\.7\/24 on eth0/);
    assert.match(labCollision('10.231.2.128/25', host) ?? '', /overlaps 10\.231\.2\.7\/24/);
    assert.match(labCollision('172.20.0.0/16', host) ?? '', /overlaps the route "blackhole 172\.16\.0\.0\/12"/);
    assert.equal(labCollision('10.213.0.0/24', host), null, 'default via 10.231.2.1 covers everything, yet is no collision');
  });
});
