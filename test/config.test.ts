/**
 * Config validation (errors name the key and the value) and the default broadcast
 * address, computed as a pure function of the interface list: never by sending.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { computeBroadcastIP, ConfigError, DEFAULT_CONFIG, validateConfig, validateHostname } from '../src/config';
import { RateLimiter } from '../src/util/rate-limit';
import { assertLoopback } from '../tools/loopback';

function rejects(section: Record<string, unknown>, key: string, shown: string): void {
  assert.throws(
    () => validateConfig(section),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, 'not a ConfigError');
      assert.equal(err.key, key);
      assert.ok(err.message.includes(`\`${key}\``), `message does not name ${key}: ${err.message}`);
      assert.ok(err.message.includes(shown), `message does not show ${shown}: ${err.message}`);
      return true;
    },
  );
}

describe('config validation', () => {
  test('defaults are the original ones', () => {
    const settings = validateConfig({});
    assert.equal(settings.comm_port, 3014);
    assert.equal(settings.heartbeat_freq, 20);
    assert.equal(settings.check_beats, 3);
    assert.equal(settings.exit_on_conflict, false);
    assert.equal(settings.broadcast_ip, '');
    assert.equal(settings.priority, 0);
    assert.equal(settings.quorum, 0);
    assert.equal(settings.cluster_id, '');
    assert.equal(validateConfig(undefined).comm_port, DEFAULT_CONFIG.comm_port);
  });

  test('fractions of a second are allowed for heartbeat_freq', () => {
    assert.equal(validateConfig({ heartbeat_freq: 0.05 }).heartbeat_freq, 0.05);
  });

  test('each bad value fails naming the key and the value', () => {
    rejects({ comm_port: 0 }, 'comm_port', '`0`');
    rejects({ comm_port: 70000 }, 'comm_port', '`70000`');
    rejects({ comm_port: '3014' }, 'comm_port', '`"3014"` (string)');
    rejects({ comm_port: 3014.5 }, 'comm_port', '3014.5');
    rejects({ heartbeat_freq: 0 }, 'heartbeat_freq', '`0`');
    rejects({ heartbeat_freq: -1 }, 'heartbeat_freq', '`-1`');
    rejects({ heartbeat_freq: 'fast' }, 'heartbeat_freq', '"fast"');
    rejects({ heartbeat_freq: Number.NaN }, 'heartbeat_freq', 'number');
    rejects({ check_beats: 0 }, 'check_beats', '`0`');
    rejects({ check_beats: 2.5 }, 'check_beats', '2.5');
    rejects({ check_beats: null }, 'check_beats', 'null');
    rejects({ broadcast_ip: '300.1.1.1' }, 'broadcast_ip', '300.1.1.1');
    rejects({ broadcast_ip: 'localhost' }, 'broadcast_ip', 'localhost');
    rejects({ broadcast_ip: 5 }, 'broadcast_ip', '`5`');
    rejects({ exit_on_conflict: 'yes' }, 'exit_on_conflict', '"yes"');
    rejects({ max_packet_bytes: 100 }, 'max_packet_bytes', '`100`');
    rejects({ max_servers: 0 }, 'max_servers', '`0`');
    rejects({ priority: 'high' }, 'priority', '"high"');
    rejects({ priority: 1e9 }, 'priority', '1000000000');
    rejects({ quorum: -1 }, 'quorum', '`-1`');
    rejects({ quorum: 1.5 }, 'quorum', '1.5');
    rejects({ quorum: 5, max_servers: 4 }, 'quorum', '`5`');
    rejects({ cluster_id: 'has space' }, 'cluster_id', '"has space"');
    rejects({ cluster_id: 7 }, 'cluster_id', '`7`');
  });

  test('HTTP route URIs: off by default, a path each, no two the same', () => {
    const settings = validateConfig({});
    for (const key of ['http_status_uri', 'http_health_uri', 'http_master_uri', 'http_metrics_uri', 'http_ui_uri'] as const) {
      assert.equal(settings[key], '', `${key} is off by default`);
      assert.equal(validateConfig({ [key]: '/cluster/x' })[key], '/cluster/x');
      rejects({ [key]: 'cluster' }, key, '"cluster"');
      rejects({ [key]: '/has space' }, key, '"/has space"');
      rejects({ [key]: '/health?full=1' }, key, '"/health?full=1"');
      rejects({ [key]: '/page#top' }, key, '"/page#top"');
      rejects({ [key]: true }, key, '`true` (boolean)');
    }
    const both = validateConfig({ http_master_uri: '/master', http_metrics_uri: '/metrics', http_ui_uri: '/cluster' });
    assert.deepEqual([both.http_master_uri, both.http_metrics_uri, both.http_ui_uri], ['/master', '/metrics', '/cluster']);
    assert.throws(
      () => validateConfig({ http_health_uri: '/health', http_master_uri: '/health' }),
      (err: unknown) => err instanceof ConfigError && err.key === 'http_master_uri' && /`http_health_uri` does not already use, got `"\/health"`/.test(err.message),
    );
  });

  test('the section itself must be an object', () => {
    assert.throws(() => validateConfig('nope'), /`MultiServer`.*"nope"/);
  });

  test('the server hostname must be one the wire accepts', () => {
    assert.equal(validateHostname('web-01.example.com'), 'web-01.example.com');
    for (const bad of ['', 'has space', 'toString', 5]) {
      assert.throws(() => validateHostname(bad), (err: unknown) => err instanceof ConfigError && err.key === 'hostname');
    }
  });
});

function iface(address: string, netmask: string, internal = false, family: 'IPv4' | 'IPv6' = 'IPv4'): NetworkInterfaceInfo {
  return { address, netmask, family, internal, mac: '00:00:00:00:00:00', cidr: null, scopeid: family === 'IPv6' ? 0 : undefined } as NetworkInterfaceInfo;
}

describe('default broadcast address (pure; nothing is sent)', () => {
  test('directed broadcast of the first non-internal IPv4 interface', () => {
    assert.equal(computeBroadcastIP({ lo: [iface('127.0.0.1', '255.0.0.0', true)], eth0: [iface('192.168.1.37', '255.255.255.0')] }), '192.168.1.255');
    assert.equal(computeBroadcastIP({ eth0: [iface('10.1.10.24', '255.255.0.0')] }), '10.1.255.255');
    assert.equal(computeBroadcastIP({ eth0: [iface('172.16.5.4', '255.255.240.0')] }), '172.16.15.255');
  });

  test('IPv6 and internal addresses are skipped', () => {
    assert.equal(
      computeBroadcastIP({ eth0: [iface('fe80::1', 'ffff:ffff:ffff:ffff::', false, 'IPv6'), iface('10.0.0.5', '255.255.255.0')] }),
      '10.0.0.255',
    );
  });

  test('falls back to 255.255.255.255 without a usable interface, or with only /31 and /32 prefixes', () => {
    assert.equal(computeBroadcastIP({}), '255.255.255.255');
    assert.equal(computeBroadcastIP({ lo: [iface('127.0.0.1', '255.0.0.0', true)] }), '255.255.255.255');
    assert.equal(computeBroadcastIP({ eth0: [iface('10.0.0.5', '255.255.255.255')] }), '255.255.255.255');
    assert.equal(computeBroadcastIP({ eth0: [iface('10.0.0.5', '255.255.255.254')] }), '255.255.255.255');
  });

  test('every prefix from /1 to /30; a mask that is not a prefix, /0 or an unreadable one is passed over like /32', () => {
    assert.equal(computeBroadcastIP({ eth0: [iface('10.1.2.3', '128.0.0.0')] }), '127.255.255.255');
    assert.equal(computeBroadcastIP({ eth0: [iface('10.1.2.3', '255.255.255.252')] }), '10.1.2.3');
    assert.equal(computeBroadcastIP({ eth0: [iface('172.31.200.1', '255.255.192.0')] }), '172.31.255.255');
    for (const mask of ['255.0.255.0', '0.0.0.0', '', '255.255.255', '256.0.0.0', 'ffff::']) {
      assert.equal(computeBroadcastIP({ eth0: [iface('10.1.2.3', mask)], eth1: [iface('192.168.7.9', '255.255.255.0')] }), '192.168.7.255', `mask ${JSON.stringify(mask)}`);
    }
  });

  test('a /32 interface is passed over for the next usable one', () => {
    assert.equal(computeBroadcastIP({ tun0: [iface('10.8.0.1', '255.255.255.255')], eth0: [iface('192.168.0.9', '255.255.255.0')] }), '192.168.0.255');
  });
});

describe('guards and limits', () => {
  test('test clusters refuse any broadcast address off loopback', () => {
    for (const ip of ['127.255.255.255', '127.0.0.1', '127.1.2.3']) assert.doesNotThrow(() => assertLoopback(ip));
    for (const ip of ['255.255.255.255', '192.168.1.255', '10.0.0.255', '', undefined, '128.0.0.1']) {
      assert.throws(() => assertLoopback(ip), /Refusing/);
    }
  });

  test('the drop-log limiter reports once per interval per sender, counts the rest, and stays bounded', () => {
    const limiter = new RateLimiter(1000, 4);
    assert.equal(limiter.hit('a', 0), 0);
    assert.equal(limiter.hit('a', 10), null);
    assert.equal(limiter.hit('a', 20), null);
    assert.equal(limiter.hit('a', 1000), 2);
    for (let i = 0; i < 100; i++) limiter.hit(`sender${i}`, 2000);
    assert.equal(limiter.size, 4);
  });
});
