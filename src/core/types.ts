/**
 * Types shared by the election core, the wire codec and the shell.
 * Nothing here touches a socket, a timer or a clock.
 */

/** A JSON value as it arrives from the wire after validation. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * A reading of the two clocks. `mono` (milliseconds, only ever increases) drives
 * every timeout; `wall` (epoch milliseconds) is only copied into the `now` field of
 * server records for display, so stepping it changes no decision.
 */
export interface Instant {
  mono: number;
  wall: number;
}

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
  /** The highest term (fencing token) the sender knows; a master's is its own. Absent: 0. */
  term?: number;
  /** The sender's priority (higher wins, then hostname). Absent: 0. */
  prio?: number;
  /** On a master's last heartbeat before it steps down: the server it hands the role to. */
  handoff?: string;
  /** Cluster namespace; servers with another id ignore the packet. Absent: the default cluster. */
  cid?: string;
  /** The master's last checkpoint, so the next master can resume from it. */
  ckpt?: Checkpoint;
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

/** One row of `servers`: the shape the original exposed, with booleans where it had 0/1. */
export interface ServerRecord {
  hostname: string;
  ip: string;
  master: boolean;
  eligible: boolean;
  self: boolean;
  /** Epoch seconds (wall clock) of the last heartbeat heard; for display only. */
  now: number;
  data: JsonObject;
  /** Seconds since that server started, as it reported. */
  uptime: number;
  /** Set to true (by the application) to keep this server from ever being auto-removed. */
  locked: boolean;
  /** Its priority: higher wins an election, then the hostname that sorts first. */
  priority: number;
  /** The highest term it reported. */
  term: number;
}

export type CoreEvent =
  | { type: 'master'; term: number; checkpoint: JsonValue | null }
  | { type: 'message'; from: string; to: string; messageType: string; payload: JsonValue; rid?: string; re?: string }
  /** The set of live eligible servers changed (work split by key moves). */
  | { type: 'members'; members: string[] }
  | { type: 'slave' }
  | { type: 'addserver'; server: ServerRecord }
  | { type: 'deleteserver'; server: ServerRecord }
  | { type: 'masterchange'; hostname: string; previous: string }
  | { type: 'conflict'; hostname: string }
  | {
      type: 'duplicate';
      hostname: string;
      /** The two processes that announce `hostname`: the one that keeps the name first. */
      keeper: { iid: string; address: string };
      yielder: { iid: string; address: string };
      /** True when this server is one of the two. */
      self: boolean;
    }
  | { type: 'exit'; reason: string }
  /** Outcome of stepDown(): ok once another server is master. */
  | { type: 'stepdown'; ok: boolean; hostname: string; reason: string }
  /** Outcome of promote(): ok once we are master. */
  | { type: 'promote'; ok: boolean; reason: string };

export interface LogLine {
  level: number;
  message: string;
  data?: unknown;
}

export interface Outbound {
  message: Message;
  /** Absent: to every server (broadcast). */
  to?: Address;
}

/** What one step of the core asks its caller to do. */
export interface Output {
  send: Outbound[];
  events: CoreEvent[];
  logs: LogLine[];
  /** Monotonic ms at which the core wants `tick()` called next; Infinity when stopped. */
  wakeAt: number;
  /** Set by `receive` when it ignored the message, with the reason. */
  dropped?: CoreDropReason;
}

/**
 * Why the core ignored a valid message: `stale` (sequence not above the last one of that
 * instance: reordered or replayed), `unverified` (authenticated cluster: an instance that has
 * not yet answered our challenge), `yielded` (the instance that lost a duplicate-hostname
 * tie-break), `table-full` (max_servers reached).
 */
export type CoreDropReason = 'stale' | 'unverified' | 'yielded' | 'table-full';
