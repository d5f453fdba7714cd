/**
 * The simulated UDP cluster's types (sim/cluster.ts): a server's options and state, the
 * network's faults, a socket's receive queue, the items of the event heap, and the helpers
 * that name links and addresses.
 */
import type { ElectionCore, CoreOptions } from '../src/core/election';
import type { Driver } from '../src/driver/driver';
import type { Message } from '../src/protocol/messages';
import type { CoreEvent } from '../src/elector/types';
import type { Keyring } from '../src/wire/auth';

export interface SimNodeOptions {
  eligible?: boolean;
  exitOnConflict?: boolean;
  data?: CoreOptions['data'];
  priority?: number;
  quorum?: number;
  clusterId?: string;
  /** Start time; default now. */
  at?: number;
  /** The hostname it announces, when not its name in the simulation (two processes, one hostname). */
  hostname?: string;
  /** Its own heartbeat_freq (ms) and check_beats, when not the cluster's (a mismatched config). */
  tickMs?: number;
  checkBeats?: number;
  /** Its app drains master work before a handover (drain_timeout, ms): promote requests are held until `drained`. */
  drainMs?: number;
  /** Preemption on, with this preempt_delay (ms). */
  preemptDelayMs?: number;
}

export interface SimClusterOptions {
  seed?: number;
  tickMs?: number;
  checkBeats?: number;
  /** One-way delay of every datagram, ms (before jitter). */
  latencyMs?: number;
  /** Extra random delay, uniform in [0, jitterMs). */
  jitterMs?: number;
  /** Probability that a datagram to one receiver is lost. */
  lossRate?: number;
  /** Round-trip every datagram through the wire codec (on by default: proves the codec too). */
  wire?: boolean;
  /** Keep a readable timeline (costly for big clusters). */
  trace?: boolean;
  /** Core log lines up to this level go into the timeline (default 6: state changes; 10: every packet). */
  traceLevel?: number;
  /** Keep every core event in `events` (on by default; big runs watch them through `observer` instead). */
  keepEvents?: boolean;
  /** `secret_key` of every server: authenticated packets and instance verification (needs `wire`). */
  secret?: string | string[];
  /** `max_servers` of every server. */
  maxServers?: number;
}

/**
 * Faults of the network itself, each a per-datagram probability. All off (0) by default;
 * the scenario runner switches them on for a fault window and off again.
 */
export interface NetworkFaults {
  /** A datagram to one receiver is lost. */
  lossRate: number;
  /** A datagram to one receiver arrives twice; the copy lags by up to `dupDelayMs`. */
  dupRate: number;
  dupDelayMs: number;
  /** A datagram is held back by up to `reorderMaxMs`, so later ones overtake it. */
  reorderRate: number;
  reorderMaxMs: number;
  /** A datagram is delayed by half to all of `spikeMs` (a congested switch, a Wi-Fi retry storm). */
  spikeRate: number;
  spikeMs: number;
}

/**
 * A fault of one direction of one link (from one server to another), on top of the
 * network-wide ones: a flaky port, an asymmetric route, a firewall rule.
 */
export interface LinkFault {
  /** Probability that a datagram is lost on this direction (1: a one-way cut). */
  drop: number;
  /** Extra one-way delay, ms. */
  delayMs: number;
  /** Probability that a datagram arrives twice; the copy lags by up to `dupDelayMs`. */
  dup: number;
  dupDelayMs: number;
}

/** Hooks for an invariant checker; each sees the simulated time in `cluster.now`. */
export interface SimObserver {
  onEvent?(record: SimEventRecord, node: SimNode): void;
  /** A process began (`start`) or ended (`crash`, `shutdown`), or its eligibility was set. */
  onLifecycle?(kind: 'start' | 'crash' | 'shutdown' | 'eligible', node: SimNode): void;
  /** After every step of the simulation (one delivery, one timer, one call). */
  afterStep?(): void;
}

/**
 * A socket's receive queue, first in, first out, as a kernel's is: a datagram that reaches a
 * stalled process, or one still reading what queued during a stall, joins the tail and is
 * read after everything that came before it, whatever happens meanwhile (answers to the
 * woken process's hello, a stall that grows, a new one before the queue is read). One reader
 * per socket takes READ_BATCH datagrams per turn of the event loop, the first turn
 * FIRST_READ_MS after the process wakes.
 */
export interface Backlog {
  /** Datagrams waiting, oldest first from `head` on. */
  queue: Delivery[];
  head: number;
  /** When the reader runs next (Infinity: none scheduled), and how many its turn has read. */
  readAt: number;
  readInTurn: number;
  /** When the last datagram queued so far is read. */
  end: number;
}

export function emptyBacklog(): Backlog {
  return { queue: [], head: 0, readAt: Infinity, readInTurn: 0, end: 0 };
}

/** One process (core instance) of a node, and the last time a datagram of it reached another live server. */
export interface Instance {
  iid: string;
  lastDelivered: number | null;
}

/** A process that has ended: the last time any live server received a datagram from it bounds failover. */
export interface EndedInstance {
  id: string;
  hostname: string;
  instance: Instance;
  at: number;
  how: 'crash' | 'shutdown';
}

export interface SimEventRecord {
  time: number;
  /** The node id (the hostname, except for a second process claiming a hostname already used). */
  host: string;
  event: CoreEvent;
}

export interface SimNode {
  /** Unique per simulated machine; equals `hostname` except for duplicate-hostname processes. */
  id: string;
  hostname: string;
  /** The running (or last) process's core; its driver carries out every step, as in a real server. */
  core: ElectionCore;
  driver: Driver<ElectionCore>;
  alive: boolean;
  /** Added to the simulated wall clock for this node only (a stepped or skewed clock). */
  wallOffset: number;
  /** Timers of this node fire no earlier than this (a stall: CPU starvation, paused VM). */
  stalledUntil: number;
  /** Its socket's receive queue while a stall keeps it from being read (`Backlog`). */
  backlog: Backlog;
  /** Per sender (node id): its instance, when its last heartbeat was read here, and when the first of that instance was. */
  heardFrom: Map<string, { iid: string; at: number; since: number }>;
  /** Per sender (node id): when a datagram of it to this server was last lost, or delayed past the normal latency. */
  troubleFrom: Map<string, number>;
  /** When its latest stall began (-Infinity: never stalled). */
  stalledFrom: number;
  wakeToken: number;
  /** When the pending wake-up fires (Infinity: none pending). */
  wakeAt: number;
  /** The running (or last) process. */
  instance: Instance;
  /** Source address its datagrams arrive from. */
  address: string;
  events: SimEventRecord[];
  options: SimNodeOptions;
  /** Its `secret_key`, derived (null: open format). Change it with `setKeys`. */
  keyring: Keyring | null;
}

/** A datagram on its way to one server. */
export interface Delivery {
  time: number;
  seq: number;
  kind: 'deliver';
  to: string;
  from: string;
  message: Message;
  late: boolean;
  source: Instance;
  address: string;
}

export type Item =
  | Delivery
  /** The reader of a process's socket queue (`Backlog`): that process's socket only. */
  | { time: number; seq: number; kind: 'read'; host: string; instance: Instance }
  | { time: number; seq: number; kind: 'wake'; host: string; token: number }
  | { time: number; seq: number; kind: 'start'; host: string }
  | { time: number; seq: number; kind: 'call'; fn: () => void };

/** The key of one direction of a link in `SimCluster.linkFaults`. */
export function linkKey(from: string, to: string): string {
  return `${from}>${to}`;
}

/** The simulated address of a server: stable, and distinct for the few names tests use. */
export function addressOf(hostname: string): string {
  return `10.0.0.${hashOf(hostname)}`;
}

function hashOf(text: string): number {
  let hash = 0;
  for (let i = 0; i < text.length; i++) hash = (hash * 31 + text.charCodeAt(i)) % 250;
  return hash + 1;
}
