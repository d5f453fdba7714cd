/**
 * The messages servers exchange, as the codec hands them over after validation. This is
 * the bottom layer: the core, the codec and the transports import from here, and nothing
 * here imports from them.
 */

/** A JSON value as it arrives from the wire after validation. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/** Where a datagram came from, as the transport saw it. */
export interface Address {
  address: string;
  port: number;
}

/** A heartbeat: the original's packet, plus `iid` (instance id) which old servers ignore. */
export interface HeartbeatMessage {
  action: 'heartbeat';
  hostname: string;
  ip: string;
  master: boolean;
  eligible: boolean;
  uptime: number;
  data: JsonObject;
  /** Random per process; tells a restarted server and a duplicate hostname from an echo of our own packet. */
  iid?: string;
  /** Counts up per packet of one instance; a datagram overtaken by a newer one is stale. */
  seq?: number;
  /**
   * Authenticated clusters only: the hellos this heartbeat answers, as "<iid>:<seq>" of each.
   * A receiver that sent one of them knows this packet was made after its hello: the
   * freshness proof that admits a new instance (see core/freshness.ts).
   */
  echo?: string[];
  /** The highest term (fencing token) the sender knows; a master's is the term it claimed and serves under. Absent: 0. */
  term?: number;
  /** The sender's priority (higher wins, then hostname). Absent: 0. */
  prio?: number;
  /** On a master's last heartbeat before it steps down: the server it hands the role to. */
  handoff?: string;
  /**
   * On a master that holds a promote request while its app's work drains: the server that
   * asked, which keeps waiting for as long as this says so (elector/hold.ts).
   */
  drain?: string;
  /** Cluster namespace; servers with another id ignore the packet. Absent: the default cluster. */
  cid?: string;
  /** The master's last checkpoint, so the next master can resume from it. */
  ckpt?: Checkpoint;
  /** The sender's heartbeat_freq in milliseconds, so observers judge its silence by its own clock. */
  tick?: number;
  /** The sender's check_beats (heartbeats per tock). */
  beats?: number;
  /** The sender's process id: a duplicate-hostname report names each process by it (and its host). */
  pid?: number;
  /**
   * The interval (ms) at which the sender sends its heartbeats now, when it paces them to a
   * faster peer (absent: every `tick`). A server that reloaded a shorter heartbeat judges a
   * peer by its new deadline only once the peer's heartbeats show this pace.
   */
  pace?: number;
  /**
   * A slave's master, when the slave hears it itself (see `Lead`). A server that cannot hear
   * that master (a cut between the two, while both hear this one) counts it as a live master
   * on this word, one hop only (core/relays.ts).
   */
  lead?: Lead;
  /**
   * The sender's health check (absent: it runs none), so an operator can tell a server made
   * ineligible by a failing check from one made ineligible by its config or its app.
   */
  health?: HealthWord;
}

/**
 * A health check's state as a heartbeat carries it: small, since every heartbeat carries it,
 * and informational only (no election rule reads it: `eligible` says what the check decided).
 */
export interface HealthWord {
  /** `starting` (no result yet), `passing` or `failing`. */
  s: HealthWordState;
  /** Failures in a row (absent: 0), at most MAX_HEALTH_COUNT. */
  f?: number;
  /** Passes in a row (absent: 0), at most MAX_HEALTH_COUNT. */
  p?: number;
  /** Its rise and fall counts (1 to 1000). */
  rise: number;
  fall: number;
  /** Why its last check failed (absent when it passed): one line, at most MAX_HEALTH_ERROR_CHARS. */
  e?: string;
}

export type HealthWordState = 'starting' | 'passing' | 'failing';

/** The master a slave follows and hears, as the slave last heard it. */
export interface Lead {
  /** Its hostname. */
  h: string;
  /** Milliseconds since the slave last heard it (0 to a day). */
  age: number;
  /** Its term. */
  t: number;
  /** Its priority (absent: 0). */
  p?: number;
  /**
   * How many servers the word passed through before this one (absent: 0, the sender hears
   * it itself). A slave that follows a master on another's word passes it on once more.
   */
  n?: number;
}

/** A small state object published by a master; ordered by (term, version). */
export interface Checkpoint {
  /** Term of the master that published it. */
  t: number;
  /** Counts up per checkpoint within that term. */
  v: number;
  d: JsonValue;
}

/** The graceful-shutdown notice of the original. */
export interface ShutdownMessage {
  action: 'shutdown';
  hostname: string;
  iid?: string;
  seq?: number;
  cid?: string;
}

/**
 * "Who is there?" sent by a starting server. Old servers ignore unknown actions;
 * new ones answer at once with a heartbeat, so a joiner learns the master in one round trip.
 */
export interface HelloMessage {
  action: 'hello';
  hostname: string;
  iid?: string;
  seq?: number;
  /** Only the instance with this id answers: a challenge to one unverified instance (authenticated clusters). */
  for?: string;
  cid?: string;
}

/** "Hand the master role to me": sent by `promote()`, acted on by the master named in `target`. */
export interface PromoteMessage {
  action: 'promote';
  hostname: string;
  target: string;
  iid?: string;
  seq?: number;
  cid?: string;
}

/** An application message between servers (at most once, size-limited). */
export interface AppMessage {
  action: 'message';
  hostname: string;
  /** A hostname, or '*' for every other server. */
  to: string;
  type: string;
  payload: JsonValue;
  /** Request id: the sender awaits a reply carrying it in `re`. */
  rid?: string;
  /** The request id this message replies to. */
  re?: string;
  iid?: string;
  seq?: number;
  cid?: string;
}

export type Message = HeartbeatMessage | ShutdownMessage | HelloMessage | PromoteMessage | AppMessage;

/**
 * Unicast gossip, "the addresses I hear" (canonical `ip:port`). It belongs to the shell:
 * the shell hands it to the transport, and it never reaches the election core. Servers
 * that do not know the action ignore it, as they ignore any unknown action.
 */
export interface PeersMessage {
  action: 'peers';
  hostname: string;
  addrs: string[];
}

/** Everything a server sends: the core's messages and the shell's own. */
export type WireMessage = Message | PeersMessage;
