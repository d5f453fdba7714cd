/**
 * The `coordinator` config section: unset is today's election with nothing new loaded;
 * set, every key is validated with an error naming it; the etcd client is optional and
 * its absence names the install command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { ConfigError, validateConfig } from '../src/config';
import { INSTALL_COMMAND, loadEtcd3 } from '../src/etcd/etcd';
import { defaultTtlSeconds, minimumTtlSeconds, renewalWorstMs, renewDeadlineMs, renewIntervalMs } from '../src/coordinator/timing';

const HOSTS = ['http://10.0.0.1:2379', 'https://etcd-2.example:2379'];

function rejects(section: Record<string, unknown>, key: string, pattern?: RegExp): void {
  assert.throws(
    () => validateConfig({ coordinator: section }),
    (err: unknown) => err instanceof ConfigError && err.key === key && (pattern === undefined || pattern.test(err.message)),
    `expected a ConfigError naming ${key}`,
  );
}

test('unset (the default) is the UDP election, and loading the package does not load the etcd client', () => {
  assert.equal(validateConfig({}).coordinator, null);
  assert.equal(validateConfig({ coordinator: null }).coordinator, null);
  const index = path.join(__dirname, '..', 'src', 'index.js');
  const loaded = execFileSync(
    process.execPath,
    [
      '-e',
      `require(${JSON.stringify(index)}); console.log(Object.keys(require.cache).filter((k) => /node_modules[\\\\/](etcd3|@grpc)[\\\\/]/.test(k)).length)`,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(loaded.trim(), '0');
});

test('set: defaults for prefix (from cluster_id) and TTL (0: one tock)', () => {
  const plain = validateConfig({ coordinator: { type: 'etcd', hosts: HOSTS } }).coordinator;
  assert.deepEqual(plain, {
    type: 'etcd',
    hosts: HOSTS,
    prefix: '/pixl-server-multi/default/',
    ttl: 0,
    election_timeout_ms: 1000,
    max_keys: 1016,
  });
  const blue = validateConfig({ cluster_id: 'blue', coordinator: { type: 'etcd', hosts: HOSTS, ttl: 5 } }).coordinator;
  assert.equal(blue?.prefix, '/pixl-server-multi/blue/');
  assert.equal(blue?.ttl, 5);
  const full = validateConfig({
    coordinator: {
      type: 'etcd',
      hosts: ['https://a:2379'],
      prefix: '/jobs/',
      username: 'u',
      password: 'p',
      ca_file: '/ca.pem',
      cert_file: '/c.pem',
      key_file: '/k.pem',
    },
  }).coordinator;
  assert.equal(full?.prefix, '/jobs/');
  assert.equal(full?.username, 'u');
});

test('every bad value fails with an error naming the key', () => {
  assert.throws(
    () => validateConfig({ coordinator: 'etcd' }),
    (err: unknown) => err instanceof ConfigError && err.key === 'coordinator',
  );
  rejects({ type: 'consul', hosts: HOSTS }, 'coordinator.type');
  rejects({ type: 'etcd' }, 'coordinator.hosts');
  rejects({ type: 'etcd', hosts: [] }, 'coordinator.hosts');
  rejects({ type: 'etcd', hosts: ['10.0.0.1:2379'] }, 'coordinator.hosts[0]');
  rejects({ type: 'etcd', hosts: ['http://a:2379', 'ftp://b:21'] }, 'coordinator.hosts[1]');
  rejects({ type: 'etcd', hosts: ['http://a'] }, 'coordinator.hosts[0]');
  rejects({ type: 'etcd', hosts: HOSTS, prefix: 'no-slash' }, 'coordinator.prefix');
  rejects({ type: 'etcd', hosts: HOSTS, prefix: '/a b/' }, 'coordinator.prefix');
  rejects({ type: 'etcd', hosts: HOSTS, ttl: 1.5 }, 'coordinator.ttl');
  rejects({ type: 'etcd', hosts: HOSTS, ttl: -1 }, 'coordinator.ttl');
  rejects({ type: 'etcd', hosts: HOSTS, password: 'p' }, 'coordinator.username');
  rejects({ type: 'etcd', hosts: HOSTS, password_file: '/run/secrets/etcd' }, 'coordinator.username');
  rejects({ type: 'etcd', hosts: HOSTS, username: 'u', password: 'p', password_file: '/run/secrets/etcd' }, 'coordinator.password_file');
  assert.equal(
    validateConfig({ coordinator: { type: 'etcd', hosts: HOSTS, username: 'u', password_file: '/run/secrets/etcd' } }).coordinator
      ?.password_file,
    '/run/secrets/etcd',
  );
  rejects({ type: 'etcd', hosts: ['https://a:2379'], ca_file: '/ca', cert_file: '/c' }, 'coordinator.key_file');
  rejects({ type: 'etcd', hosts: ['https://a:2379'], cert_file: '/c', key_file: '/k' }, 'coordinator.ca_file');
  rejects({ type: 'etcd', hosts: ['http://a:2379'], ca_file: '/ca' }, 'coordinator.hosts');
});

test('a TTL that cannot outlast an etcd leader election is refused, naming the key, the minimum and why (SPEC 15.2)', () => {
  // etcd's defaults: election timeout 1000 ms, so up to 2.2 s without a leader; TTL 5 s at least.
  for (const ttl of [1, 2, 3, 4])
    rejects(
      { type: 'etcd', hosts: HOSTS, ttl },
      'coordinator.ttl',
      /at least 5 s.*without a leader for up to 2200 ms.*election_timeout_ms/,
    );
  assert.equal(validateConfig({ coordinator: { type: 'etcd', hosts: HOSTS, ttl: 5 } }).coordinator?.ttl, 5);
  // An etcd with faster elections allows a shorter TTL; one with slower ones needs a longer.
  assert.equal(validateConfig({ coordinator: { type: 'etcd', hosts: HOSTS, ttl: 2, election_timeout_ms: 250 } }).coordinator?.ttl, 2);
  rejects({ type: 'etcd', hosts: HOSTS, ttl: 5, election_timeout_ms: 2000 }, 'coordinator.ttl', /at least 9 s/);
  for (const bad of [0, 5, 1.5, '1000', 60_001])
    rejects({ type: 'etcd', hosts: HOSTS, election_timeout_ms: bad }, 'coordinator.election_timeout_ms');
});

test("the timing rule (client-go's LeaseDuration > RenewDeadline > RetryPeriod): the minimum TTL outlasts a leader election, a renewal interval and a hedge", () => {
  for (const electionMs of [50, 100, 250, 500, 1000, 2000, 5000, 10_000]) {
    const ttl = minimumTtlSeconds(electionMs);
    assert.ok(renewDeadlineMs(ttl) > renewalWorstMs(ttl, electionMs), `${electionMs} ms: TTL ${ttl}`);
    assert.ok(
      ttl === 1 || renewDeadlineMs(ttl - 1) <= renewalWorstMs(ttl - 1, electionMs) || ttl - 1 < Math.ceil((1.5 * electionMs) / 1000),
      `${electionMs} ms: TTL ${ttl} is the least`,
    );
    assert.ok(ttl * 1000 > renewDeadlineMs(ttl) && renewDeadlineMs(ttl) > renewIntervalMs(ttl * 1000));
  }
  assert.equal(minimumTtlSeconds(1000), 5, "etcd's defaults");
  // The default: a tock, raised to the minimum.
  assert.equal(defaultTtlSeconds(3000, 1000), 5);
  assert.equal(defaultTtlSeconds(60_000, 1000), 60);
  assert.equal(defaultTtlSeconds(750, 250), 2);
});

test('secrets are not echoed: a bad password, or a URL with credentials in it', () => {
  for (const [section, secret] of [
    [{ type: 'etcd', hosts: HOSTS, username: 'u', password: '' }, ''],
    [{ type: 'etcd', hosts: ['http://root:hunter2@a:2379'] }, 'hunter2'],
    [{ type: 'etcd', hosts: ['http://:hunter2@a:2379'] }, 'hunter2'],
    [{ type: 'etcd', hosts: ['http://hunter2@a:2379'] }, 'hunter2'],
    [{ type: 'etcd', hosts: ['http://a:2379', 'https://x:hunter2@b:2379'] }, 'hunter2'],
  ] as const) {
    try {
      validateConfig({ coordinator: section });
      assert.fail('accepted');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /not shown/);
      if (secret) assert.doesNotMatch(err.message, new RegExp(secret));
    }
  }
});

test('configured but not installed: the error names the install command', () => {
  const missing = (): never => {
    const err = new Error("Cannot find module 'etcd3'") as NodeJS.ErrnoException;
    err.code = 'MODULE_NOT_FOUND';
    throw err;
  };
  assert.throws(
    () => loadEtcd3([missing, missing]),
    (err: unknown) => err instanceof Error && err.message.includes(INSTALL_COMMAND) && /coordinator/.test(err.message),
  );
  // Installed (as in this repository's dev dependencies): it loads.
  assert.equal(typeof loadEtcd3().Etcd3, 'function');
});
