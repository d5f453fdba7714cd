/**
 * What the `MultiServer` section is: every key with its default and the reason for it, the
 * settings validation makes of it, and the list of keys (so an unknown one is caught).
 * The validators (src/config/*.ts, src/config.ts) read it; it reads none of them.
 */
import type { Family } from '../protocol/address';
import { DEFAULT_MAX_DATA_BYTES, DEFAULT_MAX_PACKET_BYTES } from '../protocol/limits';
import type { EtcdSettings } from '../etcd/settings';

/** How heartbeats travel; see SPEC 14 (docs/SPEC.md). */
export type TransportKind = 'broadcast' | 'multicast' | 'unicast';
export const TRANSPORTS: readonly TransportKind[] = ['broadcast', 'multicast', 'unicast'];
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
