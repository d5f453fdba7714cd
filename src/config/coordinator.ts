/** The `coordinator` section (the etcd mode): endpoints, prefix, TTL against etcd's timings, credentials. */
import type { EtcdSettings } from '../etcd/settings';
import { ETCD_DEFAULT_ELECTION_MS, leaderlessMs, minimumTtlSeconds, renewDeadlineMs, renewalWorstMs } from '../coordinator/timing';
import { ConfigError, Redacted } from './primitives';

/** Most etcd endpoints listed; a real cluster has 3, 5 or 7 members. */
const MAX_COORDINATOR_HOSTS = 32;

/** The `coordinator` section; null when unset (the UDP election). */
export function coordinatorSettings(value: unknown, clusterId: string, maxServers: number, quorum: unknown): EtcdSettings | null {
  if (value === undefined || value === null) return null;
  if (quorum !== 0) throw new ConfigError('quorum', '0 (unset) with a `coordinator`: etcd is the quorum', quorum);
  if (typeof value !== 'object' || Array.isArray(value))
    throw new ConfigError('coordinator', 'an object such as {"type": "etcd", "hosts": ["http://10.0.0.1:2379"]}', value);
  const raw = value as Record<string, unknown>;
  if (raw.type !== 'etcd') throw new ConfigError('coordinator.type', '"etcd"', raw.type);
  const hosts = raw.hosts;
  if (!Array.isArray(hosts) || hosts.length === 0 || hosts.length > MAX_COORDINATOR_HOSTS) {
    throw new ConfigError(
      'coordinator.hosts',
      `an array of 1 to ${MAX_COORDINATOR_HOSTS} etcd client URLs such as "http://10.0.0.1:2379"`,
      hosts,
    );
  }
  hosts.forEach((host: unknown, index) => {
    let url: URL | null = null;
    try {
      url = typeof host === 'string' ? new URL(host) : null;
    } catch {
      url = null;
    }
    // Credentials in any form (a user, a password with an empty user) never belong in a URL: they would reach logs.
    if (
      !url ||
      (url.protocol !== 'http:' && url.protocol !== 'https:') ||
      !url.port ||
      url.pathname !== '/' ||
      url.username ||
      url.password ||
      url.search ||
      url.hash ||
      (typeof host === 'string' && host.includes('@'))
    ) {
      // A URL with credentials in it is not echoed back into a log.
      const shown = typeof host === 'string' && host.includes('@') ? new Redacted(host) : host;
      throw new ConfigError(
        `coordinator.hosts[${index}]`,
        'an etcd client URL "http://host:port" or "https://host:port" (credentials go in username / password)',
        shown,
      );
    }
  });
  let prefix = raw.prefix;
  if (prefix === undefined || prefix === null || prefix === '') {
    prefix = `/pixl-server-multi/${clusterId || 'default'}/`;
  } else if (typeof prefix !== 'string' || !/^[\x21-\x7e]{1,255}\/$/.test(prefix)) {
    throw new ConfigError(
      'coordinator.prefix',
      'a key prefix of printable characters ending with "/", such as "/pixl-server-multi/prod/"',
      prefix,
    );
  }
  const electionMs = raw.election_timeout_ms ?? ETCD_DEFAULT_ELECTION_MS;
  if (typeof electionMs !== 'number' || !Number.isInteger(electionMs) || electionMs < 10 || electionMs > 60_000) {
    throw new ConfigError(
      'coordinator.election_timeout_ms',
      "the etcd cluster's --election-timeout in ms, from 10 to 60000 (etcd's default: 1000)",
      electionMs,
    );
  }
  const ttl = raw.ttl ?? 0;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0 || ttl > 86400) {
    throw new ConfigError(
      'coordinator.ttl',
      'a whole number of seconds from 1 to 86400 (etcd leases count whole seconds), or 0 for one tock',
      ttl,
    );
  }
  const minimum = minimumTtlSeconds(electionMs);
  if (ttl !== 0 && ttl < minimum) {
    // The master must renew within TTL − margin; a renewal can wait that long for etcd's next leader.
    throw new ConfigError(
      'coordinator.ttl',
      `at least ${minimum} s: etcd can be without a leader for up to ${leaderlessMs(electionMs)} ms (twice its election timeout of ${electionMs} ms, coordinator.election_timeout_ms, and a vote), so a renewal can take ${Math.round(renewalWorstMs(ttl, electionMs))} ms, but with this TTL a master must renew within ${Math.round(renewDeadlineMs(ttl))} ms: it would lose the role at etcd leader elections`,
      ttl,
    );
  }
  const settings: EtcdSettings = {
    type: 'etcd',
    hosts: hosts as string[],
    prefix: prefix as string,
    ttl,
    election_timeout_ms: electionMs,
    max_keys: maxServers + 16,
  };
  for (const key of ['username', 'password', 'password_file', 'ca_file', 'cert_file', 'key_file'] as const) {
    const field = raw[key];
    if (field === undefined || field === null) continue;
    if (typeof field !== 'string' || field === '' || field.length > 4096)
      throw new ConfigError(`coordinator.${key}`, 'a non-empty string', key === 'password' ? new Redacted(field) : field);
    settings[key] = field;
  }
  if (settings.password !== undefined && settings.password_file !== undefined)
    throw new ConfigError('coordinator.password_file', 'unset when `coordinator.password` is set (one or the other)', raw.password_file);
  if ((settings.password !== undefined || settings.password_file !== undefined) && settings.username === undefined) {
    throw new ConfigError(
      'coordinator.username',
      `set when \`coordinator.${settings.password !== undefined ? 'password' : 'password_file'}\` is`,
      raw.username,
    );
  }
  if ((settings.cert_file === undefined) !== (settings.key_file === undefined)) {
    throw new ConfigError(
      settings.cert_file === undefined ? 'coordinator.cert_file' : 'coordinator.key_file',
      'set together with the other of cert_file / key_file (a client certificate and its key)',
      settings.cert_file === undefined ? raw.cert_file : raw.key_file,
    );
  }
  if (settings.cert_file !== undefined && settings.ca_file === undefined)
    throw new ConfigError(
      'coordinator.ca_file',
      "set when a client certificate is (the CA that signed the etcd servers' certificates)",
      raw.ca_file,
    );
  if (settings.ca_file !== undefined && (hosts as string[]).some((host) => !host.startsWith('https:'))) {
    throw new ConfigError('coordinator.hosts', 'https:// URLs when `coordinator.ca_file` is set (TLS)', hosts);
  }
  return settings;
}
