/**
 * The `MultiServer` config section: every key, its default and the reason for it,
 * validated once (at startup and on each reload) into typed settings.
 */
import { isIPv4 } from 'node:net';
import type { NetworkInterfaceInfo } from 'node:os';
import { Netmask } from 'netmask';
import { CLUSTER_ID_PATTERN, isValidHostname, MAX_PRIORITY, MAX_UDP_PAYLOAD } from './protocol/limits';
import { MAX_KEYS } from './wire/auth';
import { coordinatorSettings } from './config/coordinator';
import { refuseUnknown } from './config/keys';
import { bool, ConfigError, integer, pick, Redacted, seconds, uri } from './config/primitives';
import type { MultiServerConfig, Settings } from './config/schema';
import { transportSettings } from './config/transport';

export {
  CONFIG_KEYS,
  COORDINATOR_CONFIG_KEYS,
  DEFAULT_CONFIG,
  DEFAULT_MULTICAST_GROUP,
  type CoordinatorConfig,
  type MultiServerConfig,
  type MultiServerSection,
  type Settings,
  type TransportKind,
} from './config/schema';
export { ConfigError } from './config/primitives';
export { misplacedKeys, unknownKeys, type UnknownKey } from './config/keys';

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
