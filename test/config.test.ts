/**
 * Config validation (errors name the key and the value) and the default broadcast
 * address, computed as a pure function of the interface list: never by sending.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import {
  computeBroadcastIP,
  ConfigError,
  CONFIG_KEYS,
  COORDINATOR_CONFIG_KEYS,
  DEFAULT_CONFIG,
  misplacedKeys,
  unknownKeys,
  validateConfig,
  validateHostname,
} from '../src/config';
import { editDistance, nearestName } from '../src/util/nearest';
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
    // Added since: off, or invisible until used (exclusive(), a second server).
    assert.equal(settings.drain_timeout, 10);
    assert.equal(settings.preempt, false);
    assert.equal(settings.preempt_delay, 60);
    assert.equal(validateConfig({ drain_timeout: 0 }).drain_timeout, 0);
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
    rejects({ drain_timeout: -1 }, 'drain_timeout', '`-1`');
    rejects({ drain_timeout: '10' }, 'drain_timeout', '`"10"` (string)');
    rejects({ drain_timeout: 1e9 }, 'drain_timeout', '1000000000');
    rejects({ drain_timeout: Number.POSITIVE_INFINITY }, 'drain_timeout', 'number');
    rejects({ preempt: 1 }, 'preempt', '`1`');
    rejects({ preempt_delay: -0.5 }, 'preempt_delay', '-0.5');
    rejects({ preempt_delay: null }, 'preempt_delay', 'null');
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
      (err: unknown) =>
        err instanceof ConfigError &&
        err.key === 'http_master_uri' &&
        /`http_health_uri` does not already use, got `"\/health"`/.test(err.message),
    );
  });

  test('the section itself must be an object', () => {
    assert.throws(() => validateConfig('nope'), /`MultiServer`.*"nope"/);
  });

  test('the server hostname must be one the wire accepts', () => {
    assert.equal(validateHostname('web-01.example.com'), 'web-01.example.com');
    for (const bad of ['', 'has space', 'toString', 5]) {
      assert.throws(
        () => validateHostname(bad),
        (err: unknown) => err instanceof ConfigError && err.key === 'hostname',
      );
    }
  });
});

function iface(address: string, netmask: string, internal = false, family: 'IPv4' | 'IPv6' = 'IPv4'): NetworkInterfaceInfo {
  return {
    address,
    netmask,
    family,
    internal,
    mac: '00:00:00:00:00:00',
    cidr: null,
    scopeid: family === 'IPv6' ? 0 : undefined,
  } as NetworkInterfaceInfo;
}

describe('default broadcast address (pure; nothing is sent)', () => {
  test('directed broadcast of the first non-internal IPv4 interface', () => {
    assert.equal(
      computeBroadcastIP({ lo: [iface('127.0.0.1', '255.0.0.0', true)], eth0: [iface('192.168.1.37', '255.255.255.0')] }),
      '192.168.1.255',
    );
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
      assert.equal(
        computeBroadcastIP({ eth0: [iface('10.1.2.3', mask)], eth1: [iface('192.168.7.9', '255.255.255.0')] }),
        '192.168.7.255',
        `mask ${JSON.stringify(mask)}`,
      );
    }
  });

  test('a /32 interface is passed over for the next usable one', () => {
    assert.equal(
      computeBroadcastIP({ tun0: [iface('10.8.0.1', '255.255.255.255')], eth0: [iface('192.168.0.9', '255.255.255.0')] }),
      '192.168.0.255',
    );
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

describe('unknown keys: each reported with the key it was probably meant to be', () => {
  /** The typing mistakes a person makes, applied to a key. */
  function typos(key: string): string[] {
    const out = new Set<string>();
    for (let i = 0; i < key.length; i++) {
      out.add(key.slice(0, i) + key.slice(i + 1)); // a letter left out
      if (i + 1 < key.length) out.add(key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2)); // two swapped
      out.add(key.slice(0, i) + key[i] + key.slice(i)); // a letter doubled
    }
    out.add(key.toUpperCase());
    out.add(key.replace(/_/g, '-'));
    out.add(key.replace(/_(.)/g, (_m, c: string) => c.toUpperCase())); // camelCase
    out.add(`${key}s`);
    out.delete(key);
    return [...out].filter((typo) => !CONFIG_KEYS.includes(typo));
  }

  test("every single typo of every key of the section suggests that key (or, where the typo is another key's typo too, one as close)", () => {
    let checked = 0;
    for (const key of CONFIG_KEYS) {
      for (const typo of typos(key)) {
        const suggested = nearestName(typo, CONFIG_KEYS);
        assert.ok(suggested !== null, `${typo} (for ${key}) suggests nothing`);
        if (suggested !== key) {
          const norm = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]/g, '');
          assert.ok(
            editDistance(norm(typo), norm(suggested)) <= editDistance(norm(typo), norm(key)),
            `${typo} (for ${key}) suggests ${suggested}, which is further`,
          );
        }
        checked++;
      }
    }
    assert.ok(checked > 1000, `only ${checked} typos checked`);
  });

  test('the mistakes users made: longer, shorter, other words for the same key', () => {
    const cases: Array<[string, string]> = [
      ['heartbeat_frequency', 'heartbeat_freq'],
      ['heartbeat', 'heartbeat_freq'],
      ['check_beat', 'check_beats'],
      ['broadcast_address', 'broadcast_ip'],
      ['request_timeout', 'request_timeout_ms'],
      ['drain_timeout_ms', 'drain_timeout'],
      ['preemptDelay', 'preempt_delay'],
      ['preemption', 'preempt'],
      ['secret', 'secret_key'],
      ['port', 'comm_port'],
      ['exitOnConflict', 'exit_on_conflict'],
      ['coordinater', 'coordinator'],
    ];
    for (const [typo, key] of cases) assert.equal(nearestName(typo, CONFIG_KEYS), key, typo);
    assert.equal(nearestName('host', COORDINATOR_CONFIG_KEYS), 'hosts');
    assert.equal(nearestName('ttl_seconds', COORDINATOR_CONFIG_KEYS), 'ttl');
  });

  test('a key like no other suggests nothing; no key is its own mistake', () => {
    for (const word of ['zebra', 'log_dir', 'x', '', '____', 'q'.repeat(10_000)]) assert.equal(nearestName(word, CONFIG_KEYS), null, word);
    assert.deepEqual(unknownKeys({ ...DEFAULT_CONFIG, broadcast_ip: '127.255.255.255', peers: [], debug_level: 5 }), []);
    assert.deepEqual(
      unknownKeys({
        coordinator: {
          type: 'etcd',
          hosts: [],
          prefix: '/p/',
          ttl: 1,
          username: 'u',
          password: 'p',
          ca_file: 'a',
          cert_file: 'c',
          key_file: 'k',
        },
      }),
      [],
    );
  });

  test('unknownKeys names the key, the suggestion and says it is ignored; nested coordinator keys too', () => {
    const found = unknownKeys({
      heartbeat_frequency: 1,
      comm_port: 3014,
      zebra: true,
      coordinator: { type: 'etcd', host: ['http://127.0.0.1:2379'] },
    });
    assert.deepEqual(
      found.map((u) => [u.key, u.suggestion]),
      [
        ['heartbeat_frequency', 'heartbeat_freq'],
        ['zebra', null],
        ['coordinator.host', 'coordinator.hosts'],
      ],
    );
    assert.equal(
      found[0]?.message,
      'MultiServer config: unknown key `heartbeat_frequency` (did you mean `heartbeat_freq`?) in the MultiServer section; it is ignored',
    );
    assert.equal(found[1]?.message, 'MultiServer config: unknown key `zebra` in the MultiServer section; it is ignored');
  });

  test('hostile keys: bounded in count and length, shown escaped, no prototype touched, and no crash', () => {
    const many: Record<string, number> = {};
    for (let i = 0; i < 10_000; i++) many[`key${i}`] = i;
    assert.equal(unknownKeys(many).length, 20);
    const parsed = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": 1, "a\\nb\\u001b[31m": 1}') as Record<string, unknown>;
    const found = unknownKeys(parsed);
    assert.deepEqual(
      found.map((u) => u.key),
      ['__proto__', 'constructor', 'a\nb\u001b[31m'],
    );
    assert.ok(
      found.every((u) => !/[\n\u001b]/.test(u.message)),
      'a control character reached a log line',
    );
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const long = unknownKeys({ ['k'.repeat(1_000_000)]: 1 });
    assert.ok((long[0]?.message.length ?? Infinity) < 300);
    for (const section of [null, undefined, 5, 'x', [], { coordinator: 'etcd' }]) assert.ok(Array.isArray(unknownKeys(section)));
  });

  test('strict_config turns the first unknown key into the error that stops startup; off, validation passes', () => {
    assert.equal(validateConfig({ heartbeat_frequency: 1 }).strict_config, false);
    assert.throws(
      () => validateConfig({ strict_config: true, heartbeat_frequency: 1 }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.key === 'heartbeat_frequency' &&
        err.message ===
          'MultiServer config: unknown key `heartbeat_frequency` (did you mean `heartbeat_freq`?) in the MultiServer section (strict_config is on)',
    );
    assert.throws(
      () => validateConfig({ strict_config: true, coordinator: { type: 'etcd', hosts: ['http://127.0.0.1:2379'], tll: 2 } }),
      (err: unknown) => err instanceof ConfigError && err.key === 'coordinator.tll' && /did you mean `coordinator.ttl`/.test(err.message),
    );
    rejects({ strict_config: 'yes' }, 'strict_config', '"yes"');
    assert.equal(validateConfig({ strict_config: true, heartbeat_freq: 1 }).strict_config, true);
  });

  test('the top level: the section misnamed, or the original keys outside it', () => {
    for (const name of [
      'multiserver',
      'multi_server',
      'MultiServers',
      'Multiserver',
      'MULTI-SERVER',
      'MutliServer',
      'multiServer',
      'pixl-server-multi',
      'MultiServer ',
    ]) {
      const found = misplacedKeys({ [name]: { heartbeat_freq: 1 }, log_dir: 'logs' });
      assert.deepEqual(
        found.map((u) => [u.key, u.suggestion]),
        [[name, 'MultiServer']],
        name,
      );
      assert.match(
        found[0]?.message ?? '',
        /is not read \(did you mean `MultiServer`\? the name is case-sensitive\), so MultiServer runs on its defaults/,
      );
    }
    assert.doesNotMatch(misplacedKeys({ multiserver: {}, MultiServer: {} })[0]?.message ?? '', /runs on its defaults/);
    const misplaced = misplacedKeys({ heartbeat_freq: 1, MultiServer: {} });
    assert.deepEqual(
      misplaced.map((u) => [u.key, u.suggestion]),
      [['heartbeat_freq', 'MultiServer.heartbeat_freq']],
    );
    // What pixl-server, its other components and apps keep at the top level (Cronicle's secret_key among them) is none of ours.
    const others = {
      MultiServer: {},
      WebServer: {},
      Storage: {},
      User: {},
      secret_key: 'k',
      log_dir: 'l',
      debug_level: 9,
      hostname: 'h',
      multi: 1,
      server: 2,
      MultiServe_r_Extra_Long_Name: 3,
    };
    assert.deepEqual(misplacedKeys(others), []);
  });
});
