/**
 * What the election core takes and gives: the clock reading it is driven by, its events,
 * and the Output of each step. Nothing here touches a socket, a timer or a clock.
 */
import type { Address, AppMessage, HealthWord, HealthWordState, JsonObject, JsonValue, Message } from '../protocol/messages';
import type { StoreOp } from '../protocol/store';

/**
 * A reading of the two clocks. `mono` (milliseconds, only ever increases) drives
 * every timeout; `wall` (epoch milliseconds) is only copied into the `now` field of
 * server records for display, so stepping it changes no decision.
 */
export interface Instant {
  mono: number;
  wall: number;
}

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
  /**
   * Its health check as it last reported it (null: it runs none, or does not say: an original
   * server, or another server in the etcd mode). A failing one is why it is not eligible.
   */
  health: ServerHealth | null;
}

/** A server's health check, as its heartbeats tell it (the `health` of a ServerRecord). */
export interface ServerHealth {
  /** `starting` (no result yet, counted as healthy), `passing`, or `failing` (not eligible). */
  state: HealthWordState;
  /** Failures in a row (0 after a pass) and passes in a row (0 after a failure). */
  failures: number;
  passes: number;
  /** Passes in a row that make it healthy again, failures in a row that make it failing. */
  rise: number;
  fall: number;
  /** Why its last check failed ('' when it passed). */
  error: string;
}

/** A record's health from the heartbeat's word. */
export function healthOf(word: HealthWord | undefined): ServerHealth | null {
  if (word === undefined) return null;
  return { state: word.s, failures: word.f ?? 0, passes: word.p ?? 0, rise: word.rise, fall: word.fall, error: word.e ?? '' };
}

/** The word a heartbeat carries for a record's health (undefined: none). */
export function healthWordOf(health: ServerHealth | null): HealthWord | undefined {
  if (health === null) return undefined;
  const word: HealthWord = { s: health.state, rise: health.rise, fall: health.fall };
  if (health.failures > 0) word.f = health.failures;
  if (health.passes > 0) word.p = health.passes;
  if (health.error) word.e = health.error;
  return word;
}

/** One of two processes that announce the same hostname, as a report names it. */
export interface ProcessRef {
  /** Instance id ('' for an original server, which sends none). */
  iid: string;
  /** Where its datagrams come from. */
  address: string;
  /** Its process id, when its heartbeats carry one. */
  pid?: number;
  /** It is this process. */
  self?: boolean;
}

export type CoreEvent =
  | { type: 'master'; term: number; checkpoint: JsonValue | null }
  | { type: 'message'; from: string; to: string; messageType: string; payload: JsonValue; rid?: string; re?: string }
  /** The set of live eligible servers changed (work split by key moves). */
  | { type: 'members'; members: string[] }
  | { type: 'slave' }
  | { type: 'addserver'; server: ServerRecord }
  | { type: 'deleteserver'; server: ServerRecord }
  /**
   * The master we follow changed. `lostAt`: when the master we lost was last heard (its
   * last heartbeat, or its shutdown notice), monotonic ms; absent when none was lost.
   */
  | { type: 'masterchange'; hostname: string; previous: string; lostAt?: number }
  | { type: 'conflict'; hostname: string }
  | {
      type: 'duplicate';
      hostname: string;
      /** The two processes that announce `hostname`: the one that keeps the name first. */
      keeper: ProcessRef;
      yielder: ProcessRef;
      /** True when this server is one of the two. */
      self: boolean;
    }
  | { type: 'exit'; reason: string }
  /** Outcome of stepDown(): ok once another server is master. */
  | { type: 'stepdown'; ok: boolean; hostname: string; reason: string }
  /** Outcome of promote(): ok once we are master. */
  | { type: 'promote'; ok: boolean; reason: string }
  /**
   * Coordinator mode: outcome of setCheckpoint() calls, every one up to `ticket` (stored in
   * etcd, or not: the master lost its role first, or the store refused its term).
   */
  | { type: 'checkpoint'; ok: boolean; ticket: number; reason: string }
  /**
   * A promote request from `target` that the election holds (`holdPromotes`) until the app's
   * master work has drained: answer with `drained()`, and the handoff goes on.
   */
  | { type: 'drain'; target: string }
  /** Preemption: we rank first and ask `master` for the role (a promote request follows). */
  | { type: 'preempt'; master: string };

export interface LogLine {
  level: number;
  message: string;
  data?: unknown;
  /**
   * Set on lines that remote input can repeat at will (a conflict per forged claim, a stall
   * per replayed packet): the driver writes at most one per kind per minute.
   */
  kind?: string;
  /** Caused by other servers' packets, not by this server's own decisions: subject to the log budget. */
  remote?: boolean;
}

export interface Outbound {
  message: Message;
  /** Absent: to every server (broadcast). */
  to?: Address;
  /**
   * It must also reach our own socket, queued behind what is already there (the marker that
   * ends the drain after a stall). Broadcast and multicast loop back by themselves.
   */
  loopback?: boolean;
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
  /** Store ops of the lease election (etcd mode), for the driver's host to carry out; always empty in the UDP mode. */
  store: StoreOp[];
}

/**
 * Why the core ignored a valid message: `stale` (sequence not above the last one of that
 * instance: reordered or replayed), `unverified` (authenticated cluster: an instance that has
 * not yet answered our challenge), `yielded` (the instance that lost a duplicate-hostname
 * tie-break), `table-full` (max_servers reached).
 */
export type CoreDropReason = 'stale' | 'unverified' | 'yielded' | 'table-full';

/** The event for an application message to us or to everyone: one shape for both electors. */
export function messageEvent(message: AppMessage): CoreEvent {
  return {
    type: 'message',
    from: message.hostname,
    to: message.to,
    messageType: message.type,
    payload: message.payload,
    ...(message.rid !== undefined ? { rid: message.rid } : {}),
    ...(message.re !== undefined ? { re: message.re } : {}),
  };
}
