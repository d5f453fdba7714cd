/**
 * The `MultiServer` config section: every key, its default and the reason for it,
 * validated once (at startup and on each reload) into typed settings.
 */
import { isIPv4 } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import { Netmask } from 'netmask';
import {
  CLUSTER_ID_PATTERN,
  DEFAULT_MAX_DATA_BYTES,
  DEFAULT_MAX_PACKET_BYTES,
  isValidHostname,
  MAX_PRIORITY,
  MAX_UDP_PAYLOAD,
} from './protocol/limits';
import { MAX_KEYS } from './wire/auth';
import type { Family } from './protocol/address';
import { canonicalIp, ipFamily, isMulticast, parsePeer, unicastProblem, WILDCARD } from './protocol/address';
import type { EtcdSettings } from './etcd/settings';
import { editDistance, nearestName, normalizeName } from './util/nearest';
import { ETCD_DEFAULT_ELECTION_MS, leaderlessMs, minimumTtlSeconds, renewDeadlineMs, renewalWorstMs } from './coordinator/timing';

/** How heartbeats travel; see SPEC 14 (docs/SPEC.md). */
export type TransportKind = 'broadcast' | 'multicast' | 'unicast';
const TRANSPORTS: readonly TransportKind[] = ['broadcast', 'multicast', 'unicast'];
/** The default groups: administratively scoped (they stay in the site), ending in the default port's 30.14. */
export const DEFAULT_MULTICAST_GROUP: Readonly<Record<Family, string>> = Object.freeze({ 4: '239.255.30.14', 6: 'ff15::3014' });

export interface MultiServerConfig {
  /** UDP port; every server of a cluster uses the same one. @default 3014 (the original's) */
  comm_port: number;
  /** Seconds between heartbeats (one tick); fractions allowed. @default 20 (the original's) */
  heartbeat_freq: number;
  /**
   * Heartbeats per tock. A server silent for a tock is dead; a starting server listens
   * for a tock before it may claim master. Failover takes at most tock + tick.
   * @default 3 (the original's; two lost heartbeats in a row are tolerated)
   */
  check_beats: number;
  /** Broadcast address. @default computed from the first non-internal IPv4 interface, else 255.255.255.255 */
  broadcast_ip: string;
  /** On a master conflict shut the server down instead of relinquishing. @default false */
  exit_on_conflict: boolean;
  /**
   * Largest datagram accepted or sent, in bytes (heartbeat including `data`).
   * @default 32768 (room for generous `data`, far below the UDP limit of 65507)
   */
  max_packet_bytes: number;
  /** Most servers kept in the table; bounds memory under a flood of forged hostnames. @default 1000 */
  max_servers: number;
  /**
   * Higher wins an election; equal priorities fall back to hostname order (the original's
   * rule). Only decides between servers that may claim: a running master is never replaced
   * by a higher-priority joiner. @default 0
   */
  priority: number;
  /**
   * Eligible servers (self included) that must be visible for anyone to be master; below
   * it a master steps down within one tock and nobody claims. Set it to a majority
   * (e.g. 2 of 3) so the minority side of a partition never has a master. @default 0 (off)
   */
  quorum: number;
  /**
   * Namespace: clusters with different ids share a port and ignore each other.
   * @default '' (the default cluster, whose packets are the original's)
   */
  cluster_id: string;
  /**
   * Largest checkpoint (`setCheckpoint`), as JSON bytes. It rides on every heartbeat of the
   * master, so it shares `max_packet_bytes` with `data`. @default 4096
   */
  max_checkpoint_bytes: number;
  /** Default timeout of `request()`, in milliseconds. @default 5000 */
  request_timeout_ms: number;
  /** With pixl-server-web: a URI answering the cluster status as JSON. @default '' (off) */
  http_status_uri: string;
  /** With pixl-server-web: a URI answering 200 while a master is known, 503 otherwise. @default '' (off) */
  http_health_uri: string;
  /**
   * With pixl-server-web: a URI answering 200 on the master only, 503 on every other server
   * (for a load balancer that must send traffic to the master). @default '' (off)
   */
  http_master_uri: string;
  /** With pixl-server-web: Prometheus metrics (needs the prom-client package). @default '' (off) */
  http_metrics_uri: string;
  /** With pixl-server-web: a live status page (HTML, updates itself). @default '' (off) */
  http_ui_uri: string;
  /** Restrict those URIs to pixl-server-web's default ACL (private networks). @default true */
  http_acl: boolean;
  /**
   * How heartbeats travel: `broadcast` (the original's; one LAN, IPv4), `multicast` (a
   * group; networks that route multicast, and IPv6) or `unicast` (to listed and learned
   * addresses; clouds, Docker overlays, several subnets). @default "broadcast"
   */
  transport: TransportKind;
  /**
   * Local address the socket binds. With `broadcast` and `multicast` only the wildcard
   * works (a socket bound to one address receives neither); with `unicast` it picks the
   * interface (and lets servers on one host each have their own address).
   * @default "0.0.0.0", or "::" for an IPv6 group or IPv6 peers
   */
  bind_ip: string;
  /** Multicast group (224.0.0.0/4, or ff00::/8 for IPv6). @default "239.255.30.14" ("ff15::3014" when bind_ip is IPv6) */
  multicast_group: string;
  /** Hops a multicast heartbeat may cross: 1 stays on the local network, 0 on this host. @default 1 */
  multicast_ttl: number;
  /**
   * Interface for multicast: its IPv4 address, or for IPv6 `::%name` (`::%eth0`).
   * @default unset: the OS picks (the interface of the default route)
   */
  multicast_interface?: string;
  /**
   * Unicast: servers to contact, as `host`, `host:port`, `[IPv6]:port` (port default
   * comm_port). One reachable peer is enough to join: the others are learned from it.
   * Names are looked up at startup and again every tock (every 30 s if the tock is shorter). @default []
   */
  peers: string[];
  /**
   * Largest user `data` accepted or sent, in bytes of JSON; a heartbeat over it is dropped
   * (received) or sent without its data (sent). @default 0 (no limit of its own: `max_packet_bytes` bounds it)
   */
  max_data_bytes: number;
  /**
   * Shared secret: when set, every packet is authenticated (HMAC-SHA256) and replay-proof,
   * and packets without a valid MAC are dropped. A list rotates keys: the first signs, any
   * of them verifies. Every server of the cluster needs it; original servers cannot join.
   * @default unset (the original's open format)
   * @example "k3Hq…32 random bytes in base64…" or ["new key", "old key"]
   */
  secret_key?: string | string[];
  /**
   * Mastership decided by an etcd cluster instead of UDP heartbeats (see
   * docs/ETCD.md): `{ "type": "etcd", "hosts": ["http://10.0.0.1:2379", ...] }`, plus
   * optional `prefix`, `ttl`, `username` / `password`, `ca_file` / `cert_file` / `key_file`.
   * Needs the `etcd3` package (`npm install etcd3`), loaded only when this is set.
   * @default unset (UDP heartbeats: the original's election)
   */
  coordinator?: CoordinatorConfig | null;
  /**
   * An unknown key in this section (or in `coordinator`) fails startup, and a reload, instead
   * of being logged at level 1 and ignored. @default false (a config written for another
   * version of this package, with keys this one does not know, still starts)
   */
  strict_config: boolean;
  /** pixl-server's own: this component's log level, when it differs from the server's `debug_level`. @default unset */
  debug_level?: number;
  /**
   * Seconds a handover made on purpose (stepDown, a promote request, a graceful shutdown, a
   * failing health check, `eligible = false`) waits for the master's `exclusive()` calls to
   * end; past it they are aborted and the role goes. 0: abort them at once. Keep it below the
   * stop timeout of whatever stops the server (systemd's 90 s, `docker stop`'s 10 s).
   * @default 10
   */
  drain_timeout: number;
  /**
   * Preemption: this server, when it ranks before the master (priority, then hostname), asks
   * it for the role once both have been in place for `preempt_delay` (a graceful handoff, with
   * the drain). Off by default: a running master keeps its role (the original's rule).
   * @default false
   */
  preempt: boolean;
  /**
   * Seconds the current master must have been master, and this server live and following it,
   * before this server preempts it: so a flapping server takes the role at most once per delay.
   * @default 60
   */
  preempt_delay: number;
}

/** The `coordinator` section as written in the config. */
export interface CoordinatorConfig {
  type: 'etcd';
  hosts: string[];
  /** Key prefix of this cluster. @default "/pixl-server-multi/<cluster_id, or 'default'>/" */
  prefix?: string;
  /**
   * Lease TTL, whole seconds (etcd's unit). At least what outlasts an etcd leader election
   * (3 s with etcd's default timings); a shorter one is refused.
   * @default one tock, rounded up, and at least that minimum
   */
  ttl?: number;
  /** The etcd cluster's `--election-timeout`, ms: the TTL must outlast twice it. @default 1000 (etcd's default) */
  election_timeout_ms?: number;
  username?: string;
  password?: string;
  /**
   * A file holding the password (its first line), instead of `password`: pixl-server logs its
   * whole configuration at debug level 10 (and a reloaded one at 9), password included.
   */
  password_file?: string;
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
}

/**
 * Fixed defaults, merged into the section by pixl-server. Keys whose default depends on
 * others (broadcast_ip, bind_ip, multicast_group) are computed by validateConfig, and
 * `peers` / `multicast_interface` are absent so that setting one with another transport
 * is caught as the mistake it is.
 */
export const DEFAULT_CONFIG: Readonly<
  Omit<MultiServerConfig, 'broadcast_ip' | 'bind_ip' | 'multicast_group' | 'multicast_interface' | 'peers' | 'debug_level'>
> = Object.freeze({
  comm_port: 3014,
  heartbeat_freq: 20,
  check_beats: 3,
  exit_on_conflict: false,
  max_packet_bytes: DEFAULT_MAX_PACKET_BYTES,
  max_servers: 1000,
  priority: 0,
  quorum: 0,
  cluster_id: '',
  max_checkpoint_bytes: 4096,
  request_timeout_ms: 5000,
  http_status_uri: '',
  http_health_uri: '',
  http_master_uri: '',
  http_metrics_uri: '',
  http_ui_uri: '',
  http_acl: true,
  max_data_bytes: DEFAULT_MAX_DATA_BYTES,
  transport: 'broadcast',
  multicast_ttl: 1,
  strict_config: false,
  drain_timeout: 10,
  preempt: false,
  preempt_delay: 60,
});

/**
 * Settings after validation; `broadcast_ip` is '' when it is to be computed, `secret_key`
 * is the list of keys ([] when unset; the first signs).
 */
export type Settings = Omit<MultiServerConfig, 'secret_key' | 'coordinator' | 'debug_level'> & {
  secret_key: string[];
  coordinator: EtcdSettings | null;
};

/**
 * The section as an app writes it: every key optional, the defaults fill in the rest. This is
 * what TypeScript checks `config.MultiServer` against (a misspelt key does not compile).
 */
export interface MultiServerSection extends Partial<MultiServerConfig> {}

export class ConfigError extends Error {
  readonly key: string;
  readonly value: unknown;
  /** `message`: said instead of "expected `key` to be …" (an unknown key has no expected value). */
  constructor(key: string, expected: string, value: unknown, message?: string) {
    super(message ?? `MultiServer config: expected \`${key}\` to be ${expected}, got ${describe(value)}`);
    this.name = 'ConfigError';
    this.key = key;
    this.value = value;
  }
}

function describe(value: unknown): string {
  if (value instanceof Redacted) return value.text;
  let text: string;
  try {
    text = typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value) ?? value);
  } catch {
    text = String(value);
  }
  if (text.length > 60) text = text.slice(0, 57) + '...';
  return `\`${text}\` (${value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value})`;
}

function pick(raw: Record<string, unknown>, key: keyof MultiServerConfig): unknown {
  const value = raw[key];
  return value === undefined ? (DEFAULT_CONFIG as Record<string, unknown>)[key] : value;
}

function integer(raw: Record<string, unknown>, key: keyof MultiServerConfig, min: number, max: number): number {
  const value = pick(raw, key);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(key, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function uri(raw: Record<string, unknown>, key: keyof MultiServerConfig): string {
  const value = pick(raw, key);
  // The query string is not part of the match, and a fragment never reaches the server.
  if (typeof value !== 'string' || (value !== '' && !/^\/[\x21-\x7e]*$/.test(value)) || /[?#]/.test(value)) {
    throw new ConfigError(key, 'a URI path starting with "/", without "?" or "#" (or "" for off)', value);
  }
  return value;
}

const HTTP_ROUTE_KEYS = ['http_status_uri', 'http_health_uri', 'http_master_uri', 'http_metrics_uri', 'http_ui_uri'] as const;
type HttpRoutes = Pick<MultiServerConfig, (typeof HTTP_ROUTE_KEYS)[number]>;

/** The route URIs: each a path or off, and no two the same (only one of them could answer). */
function httpRoutes(raw: Record<string, unknown>): HttpRoutes {
  const routes = {} as HttpRoutes;
  for (const key of HTTP_ROUTE_KEYS) {
    const value = uri(raw, key);
    const taken = HTTP_ROUTE_KEYS.find((other) => other !== key && routes[other] === value);
    if (value !== '' && taken) throw new ConfigError(key, `a URI that \`${taken}\` does not already use`, value);
    routes[key] = value;
  }
  return routes;
}

/** A number of seconds from `min` to a day (setTimeout's limit is 24.8 days; more is a unit mistake). */
function seconds(raw: Record<string, unknown>, key: keyof MultiServerConfig, min: number): number {
  const value = pick(raw, key);
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > 86400) {
    throw new ConfigError(key, `a number of seconds from ${min} to 86400`, value);
  }
  return value;
}

function bool(raw: Record<string, unknown>, key: keyof MultiServerConfig): boolean {
  const value = pick(raw, key);
  if (typeof value !== 'boolean') throw new ConfigError(key, 'a boolean', value);
  return value;
}

/**
 * Every key the section may hold: listed as an object so that the compiler fails when a key
 * is added to MultiServerConfig and not here.
 */
const SECTION_KEYS: Readonly<Record<keyof MultiServerConfig, true>> = {
  comm_port: true,
  heartbeat_freq: true,
  check_beats: true,
  broadcast_ip: true,
  exit_on_conflict: true,
  max_packet_bytes: true,
  max_servers: true,
  priority: true,
  quorum: true,
  cluster_id: true,
  max_checkpoint_bytes: true,
  request_timeout_ms: true,
  http_status_uri: true,
  http_health_uri: true,
  http_master_uri: true,
  http_metrics_uri: true,
  http_ui_uri: true,
  http_acl: true,
  transport: true,
  bind_ip: true,
  multicast_group: true,
  multicast_ttl: true,
  multicast_interface: true,
  peers: true,
  max_data_bytes: true,
  secret_key: true,
  coordinator: true,
  strict_config: true,
  debug_level: true,
  drain_timeout: true,
  preempt: true,
  preempt_delay: true,
};
const COORDINATOR_KEYS: Readonly<Record<keyof CoordinatorConfig, true>> = {
  type: true,
  hosts: true,
  prefix: true,
  ttl: true,
  election_timeout_ms: true,
  username: true,
  password: true,
  password_file: true,
  ca_file: true,
  cert_file: true,
  key_file: true,
};
/** The keys of the section, and of `coordinator`, in the order the README lists them. */
export const CONFIG_KEYS: readonly string[] = Object.freeze(Object.keys(SECTION_KEYS));
export const COORDINATOR_CONFIG_KEYS: readonly string[] = Object.freeze(Object.keys(COORDINATOR_KEYS));

/** A key nobody reads: where it is, and the known key it was probably meant to be. */
export interface UnknownKey {
  /** As the operator would find it: `heartbeat_frequency`, `coordinator.host`, or a top-level key. */
  key: string;
  /** The nearest known key, or null when none is close. */
  suggestion: string | null;
  /** One line naming both, for a log or an error. */
  message: string;
}

/** Keys listed per section: a config of thousands of stray keys still logs a bounded amount. */
const MAX_UNKNOWN_REPORTED = 20;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function unknownIn(raw: Record<string, unknown>, known: readonly string[], prefix: string, where: string, out: UnknownKey[]): void {
  for (const key of Object.keys(raw)) {
    if (out.length >= MAX_UNKNOWN_REPORTED) return;
    if (known.includes(key)) continue;
    const suggestion = nearestName(key, known);
    const shown = JSON.stringify(`${prefix}${key}`.slice(0, 80)).slice(1, -1);
    out.push({
      key: `${prefix}${key}`,
      suggestion: suggestion === null ? null : `${prefix}${suggestion}`,
      message: `MultiServer config: unknown key \`${shown}\`${suggestion === null ? '' : ` (did you mean \`${prefix}${suggestion}\`?)`} in ${where}; it is ignored`,
    });
  }
}

/**
 * Keys of the section (and of `coordinator`) this version does not read: each a misspelling
 * until proven otherwise. `strict_config` makes validateConfig fail on the first; without it
 * the component logs each at level 1 and runs on.
 */
export function unknownKeys(section: unknown): UnknownKey[] {
  const out: UnknownKey[] = [];
  if (!isObject(section)) return out;
  unknownIn(section, CONFIG_KEYS, '', 'the MultiServer section', out);
  if (isObject(section.coordinator))
    unknownIn(section.coordinator, COORDINATOR_CONFIG_KEYS, 'coordinator.', 'the MultiServer section', out);
  return out;
}

/** The original's keys: an app that puts them at the top level of its config meant them for the section. */
const TOP_LEVEL_MISPLACED: readonly string[] = ['comm_port', 'heartbeat_freq', 'check_beats', 'broadcast_ip', 'exit_on_conflict'];
const SECTION_NAME = 'MultiServer';

/**
 * Keys at the top level of the whole pixl-server config that were meant for this component:
 * the section's name misspelt or in another case (`multiserver`, `multi_server`,
 * `MultiServers`), which leaves the real section unset and every key at its default, or one of
 * the original's keys outside the section. Other top-level keys belong to pixl-server, other
 * components and the app, and are none of our business.
 */
export function misplacedKeys(config: unknown): UnknownKey[] {
  const out: UnknownKey[] = [];
  if (!isObject(config)) return out;
  const target = normalizeName(SECTION_NAME);
  for (const key of Object.keys(config)) {
    if (out.length >= MAX_UNKNOWN_REPORTED) break;
    if (key === SECTION_NAME) continue;
    const shown = JSON.stringify(key.slice(0, 80)).slice(1, -1);
    const norm = normalizeName(key.slice(0, 64));
    // Lengths more than two apart are more than two edits apart: most keys cost no comparison.
    if ((Math.abs(norm.length - target.length) <= 2 && editDistance(norm, target) <= 2) || norm === 'pixlservermulti') {
      const unset =
        config[SECTION_NAME] === undefined
          ? ', so MultiServer runs on its defaults (heartbeat_freq 20, the computed broadcast address)'
          : '';
      out.push({
        key,
        suggestion: SECTION_NAME,
        message: `MultiServer config: the top-level key \`${shown}\` is not read (did you mean \`${SECTION_NAME}\`? the name is case-sensitive)${unset}`,
      });
    } else if (TOP_LEVEL_MISPLACED.includes(key)) {
      out.push({
        key,
        suggestion: `${SECTION_NAME}.${key}`,
        message: `MultiServer config: \`${shown}\` is at the top level of the config, where MultiServer does not read it (did you mean \`${SECTION_NAME}.${key}\`, inside the section?)`,
      });
    }
  }
  return out;
}

/** strict_config: the first unknown key, as the error that stops startup. */
function refuseUnknown(raw: Record<string, unknown>): void {
  const strict = raw.strict_config ?? DEFAULT_CONFIG.strict_config;
  if (typeof strict !== 'boolean') throw new ConfigError('strict_config', 'a boolean', strict);
  if (!strict) return;
  const [first] = unknownKeys(raw);
  if (first)
    throw new ConfigError(first.key, 'a known key', undefined, `${first.message.replace(/; it is ignored$/, '')} (strict_config is on)`);
}

/** Validate a raw `MultiServer` section; throws ConfigError naming the key and the value. */
export function validateConfig(section: unknown): Settings {
  if (section !== undefined && (typeof section !== 'object' || section === null || Array.isArray(section))) {
    throw new ConfigError('MultiServer', 'an object', section);
  }
  const raw = (section ?? {}) as Record<string, unknown>;
  refuseUnknown(raw);

  const heartbeat = pick(raw, 'heartbeat_freq');
  // Below 10 ms a heartbeat timer is mostly scheduling noise; above a day is a typo.
  if (typeof heartbeat !== 'number' || !Number.isFinite(heartbeat) || heartbeat < 0.01 || heartbeat > 86400) {
    throw new ConfigError('heartbeat_freq', 'a number of seconds from 0.01 to 86400', heartbeat);
  }

  let broadcast = raw.broadcast_ip;
  if (broadcast === undefined || broadcast === null || broadcast === '') {
    broadcast = '';
  } else if (typeof broadcast !== 'string' || !isIPv4(broadcast)) {
    throw new ConfigError('broadcast_ip', 'an IPv4 address such as "192.168.1.255"', broadcast);
  }

  const exitOnConflict = pick(raw, 'exit_on_conflict');
  if (typeof exitOnConflict !== 'boolean') throw new ConfigError('exit_on_conflict', 'a boolean', exitOnConflict);

  const commPort = integer(raw, 'comm_port', 1, 65535);
  const priority = pick(raw, 'priority');
  if (typeof priority !== 'number' || !Number.isFinite(priority) || Math.abs(priority) > MAX_PRIORITY) {
    throw new ConfigError('priority', `a number from -${MAX_PRIORITY} to ${MAX_PRIORITY}`, priority);
  }
  const clusterId = pick(raw, 'cluster_id');
  if (typeof clusterId !== 'string' || (clusterId !== '' && !CLUSTER_ID_PATTERN.test(clusterId))) {
    throw new ConfigError('cluster_id', 'a string of up to 64 letters, digits, ".", "-" or "_" (or "" for the default cluster)', clusterId);
  }
  const maxServers = integer(raw, 'max_servers', 1, 100000);

  return {
    comm_port: commPort,
    heartbeat_freq: heartbeat,
    check_beats: integer(raw, 'check_beats', 1, 1000),
    broadcast_ip: broadcast as string,
    exit_on_conflict: exitOnConflict,
    max_packet_bytes: integer(raw, 'max_packet_bytes', 512, MAX_UDP_PAYLOAD),
    max_servers: maxServers,
    priority,
    quorum: integer(raw, 'quorum', 0, maxServers),
    cluster_id: clusterId,
    max_checkpoint_bytes: integer(raw, 'max_checkpoint_bytes', 0, MAX_UDP_PAYLOAD),
    request_timeout_ms: integer(raw, 'request_timeout_ms', 1, 3_600_000),
    ...httpRoutes(raw),
    http_acl: bool(raw, 'http_acl'),
    max_data_bytes: integer(raw, 'max_data_bytes', 0, MAX_UDP_PAYLOAD),
    strict_config: bool(raw, 'strict_config'),
    drain_timeout: seconds(raw, 'drain_timeout', 0),
    preempt: bool(raw, 'preempt'),
    preempt_delay: seconds(raw, 'preempt_delay', 0),
    secret_key: secretKeys(raw.secret_key),
    coordinator: coordinatorSettings(raw.coordinator, clusterId, maxServers, pick(raw, 'quorum')),
    // With a coordinator, heartbeats are gone and messages go unicast to the addresses members
    // registered: the socket is a unicast one (bind_ip picks its address), whatever `transport` says.
    ...transportSettings(
      raw.coordinator !== undefined && raw.coordinator !== null ? { ...raw, transport: 'unicast' } : raw,
      commPort,
      maxServers,
    ),
  };
}

/** Most etcd endpoints listed; a real cluster has 3, 5 or 7 members. */
const MAX_COORDINATOR_HOSTS = 32;

/** The `coordinator` section; null when unset (the UDP election). */
function coordinatorSettings(value: unknown, clusterId: string, maxServers: number, quorum: unknown): EtcdSettings | null {
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

type TransportSettings = Pick<
  MultiServerConfig,
  'transport' | 'bind_ip' | 'multicast_group' | 'multicast_ttl' | 'multicast_interface' | 'peers'
>;

/**
 * The transport keys. Each is checked whatever the transport, and a key of another
 * transport (`peers` with broadcast, say) is refused: the server would run, but not on
 * the network the operator meant.
 */
function transportSettings(raw: Record<string, unknown>, commPort: number, maxServers: number): TransportSettings {
  const transport = pick(raw, 'transport');
  if (typeof transport !== 'string' || !TRANSPORTS.includes(transport as TransportKind)) {
    throw new ConfigError('transport', 'one of "broadcast", "multicast" or "unicast"', transport);
  }
  const kind = transport as TransportKind;
  const onlyFor = (key: keyof MultiServerConfig, wanted: TransportKind, value: unknown): void => {
    if (kind !== wanted) throw new ConfigError(key, `unset: it applies only when \`transport\` is "${wanted}" (it is "${kind}")`, value);
  };

  let bindIp: string | undefined;
  if (raw.bind_ip !== undefined && raw.bind_ip !== null && raw.bind_ip !== '') {
    const value = raw.bind_ip;
    if (typeof value !== 'string' || ipFamily(value) === 0 || value.includes('%') || isMulticast(value) || value === '255.255.255.255') {
      throw new ConfigError('bind_ip', 'an IP address of this host, such as "0.0.0.0", "::" or "10.0.0.5"', value);
    }
    bindIp = canonicalIp(value);
  }
  const bindFamily = bindIp === undefined ? undefined : ipFamily(bindIp) || undefined;

  const ttl = pick(raw, 'multicast_ttl');
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0 || ttl > 255) {
    throw new ConfigError('multicast_ttl', 'an integer from 0 to 255 (1: the local network, 0: this host)', ttl);
  }

  let group = raw.multicast_group;
  if (group !== undefined && group !== null && group !== '') {
    if (typeof group !== 'string' || !isMulticast(group) || group.includes('%')) {
      throw new ConfigError('multicast_group', 'a multicast address, such as "239.255.30.14" (IPv4) or "ff15::3014" (IPv6)', group);
    }
    onlyFor('multicast_group', 'multicast', group);
    group = canonicalIp(group);
  } else {
    group = DEFAULT_MULTICAST_GROUP[bindFamily ?? 4];
  }
  const groupFamily = ipFamily(group as string) as Family;

  let iface = raw.multicast_interface;
  if (iface !== undefined && iface !== null && iface !== '') {
    const family = typeof iface === 'string' ? ipFamily(iface) : 0;
    if (family !== groupFamily || isMulticast(iface as string) || (family === 4 && unicastProblem(iface as string) !== null)) {
      throw new ConfigError(
        'multicast_interface',
        groupFamily === 4 ? 'the IPv4 address of a local interface, such as "10.0.0.5"' : 'an IPv6 interface, such as "::%eth0"',
        iface,
      );
    }
    onlyFor('multicast_interface', 'multicast', iface);
  } else {
    iface = undefined;
  }

  const peers = peerList(raw.peers, commPort, maxServers);
  if (peers.list.length > 0) onlyFor('peers', 'unicast', raw.peers);

  let family: Family;
  switch (kind) {
    case 'broadcast':
      family = 4;
      break;
    case 'multicast':
      family = groupFamily;
      break;
    case 'unicast':
      family = bindFamily ?? peers.family ?? 4;
      break;
  }
  if (kind !== 'unicast' && bindIp !== undefined && bindIp !== WILDCARD[family]) {
    const picker = kind === 'broadcast' ? 'broadcast_ip' : 'multicast_interface';
    throw new ConfigError(
      'bind_ip',
      `"${WILDCARD[family]}" with transport "${kind}" (a socket bound to one address receives no ${kind}s; ${picker} picks the interface)`,
      raw.bind_ip,
    );
  }
  if (kind === 'unicast') {
    peers.list.forEach((entry, index) => {
      const spec = parsePeer(entry, commPort);
      if (typeof spec !== 'string' && spec.family !== 0 && spec.family !== family) {
        throw new ConfigError(
          `peers[${index}]`,
          `an IPv${family} address like the other peers and bind_ip (one cluster speaks one IP version)`,
          entry,
        );
      }
    });
  }

  const settings: TransportSettings = {
    transport: kind,
    bind_ip: bindIp ?? WILDCARD[family],
    multicast_group: group as string,
    multicast_ttl: ttl,
    peers: peers.list,
  };
  if (iface !== undefined) settings.multicast_interface = iface as string;
  return settings;
}

/** `peers`: an array of unique entries; the IP version of its literals, if they agree. */
function peerList(value: unknown, commPort: number, maxServers: number): { list: string[]; family?: Family } {
  if (value === undefined || value === null) return { list: [] };
  if (!Array.isArray(value) || value.length > maxServers) {
    throw new ConfigError('peers', `an array of at most ${maxServers} (max_servers) entries "host", "host:port" or "[IPv6]:port"`, value);
  }
  const list: string[] = [];
  const families = new Set<Family>();
  value.forEach((entry: unknown, index) => {
    const spec = parsePeer(entry, commPort);
    if (typeof spec === 'string') throw new ConfigError(`peers[${index}]`, `"host", "host:port" or "[IPv6]:port" with ${spec}`, entry);
    if (spec.family !== 0) families.add(spec.family);
    if (!list.includes(entry as string)) list.push(entry as string);
  });
  if (families.size > 1) throw new ConfigError('peers', 'IPv4 or IPv6 addresses, not both (one cluster speaks one IP version)', value);
  const [family] = families;
  return family === undefined ? { list } : { list, family };
}

/**
 * `secret_key`: a non-empty string, or a list of 1 to MAX_KEYS of them. The error names the
 * key and what was wrong, never the secret itself: config errors end up in logs.
 */
function secretKeys(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  const expected = `a non-empty string, or an array of 1 to ${MAX_KEYS} non-empty strings`;
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_KEYS || !list.every((k) => typeof k === 'string' && k.length > 0)) {
    throw new ConfigError('secret_key', expected, new Redacted(value));
  }
  return [...(list as string[])];
}

/** Stands in for a secret in error messages: its shape, never its content. */
class Redacted {
  readonly text: string;
  constructor(value: unknown) {
    const kind = (v: unknown): string =>
      v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'string' ? `a string of ${v.length} characters` : `a ${typeof v}`;
    const entries = Array.isArray(value) ? value.slice(0, 4).map(kind).join(', ') + (value.length > 4 ? ', …' : '') : '';
    this.text = Array.isArray(value)
      ? `an array of ${value.length} entries${entries ? ` (${entries})` : ''} [value not shown]`
      : `${kind(value)} [value not shown]`;
  }
}

/** The server's hostname is the key of our row in every table: it must be wire-valid. */
export function validateHostname(hostname: unknown): string {
  if (!isValidHostname(hostname)) {
    throw new ConfigError('hostname', 'a hostname of letters, digits, ".", "-" or "_" (at most 253)', hostname);
  }
  return hostname;
}

/**
 * The original's default broadcast address: the directed broadcast of the first
 * non-internal IPv4 interface, computed with netmask; 255.255.255.255 when there is none
 * (or when its prefix is /31 or /32, which has no broadcast address).
 */
export function computeBroadcastIP(interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>): string {
  for (const name of Object.keys(interfaces)) {
    for (const info of interfaces[name] ?? []) {
      if (info.family !== 'IPv4' || info.internal || !isIPv4(info.address)) continue;
      try {
        const block = new Netmask(`${info.address}/${info.netmask}`);
        if (block.bitmask <= 30) return block.broadcast as string;
      } catch {
        // a netmask the library cannot read: try the next interface
      }
    }
  }
  return '255.255.255.255';
}
