/**
 * What an ElectionCore is made with.
 */
import type { HealthWord, JsonObject } from '../protocol/messages';
import type { CoreTiming } from './timing';

export interface CoreOptions extends CoreTiming {
  hostname: string;
  ip: string;
  /** Random per process (hex); see HeartbeatMessage.iid. */
  instanceId: string;
  /** This process's id, sent in heartbeats so a duplicate-hostname report can name each process. */
  pid?: number;
  eligible?: boolean;
  data?: JsonObject;
  /** Our health check, as our heartbeats carry it (absent: none). */
  health?: HealthWord;
  exitOnConflict?: boolean;
  /** Most servers the table will hold; heartbeats from further new hostnames are dropped. */
  maxServers?: number;
  /** Higher wins an election, then hostname order. @default 0 */
  priority?: number;
  /** Eligible servers (self included) that must be visible for anyone to be master. 0: off. */
  quorum?: number;
  /** Namespace: packets of other clusters on the same port are ignored. '': the default cluster. */
  clusterId?: string;
  /**
   * Authenticated cluster (a secret is configured): every message carries iid and seq, and a
   * new instance is admitted only once it has echoed one of our hellos. Off: the original's
   * open protocol, where any well-formed packet is believed.
   */
  verifyInstances?: boolean;
  /**
   * The app drains its master work before a handover (`drain_timeout`, ms): a promote request
   * from another server is held (a `drain` event) until `drained()`, or this long and a tock.
   * Unset: a promote request is handed over at once.
   */
  drainMs?: number;
  /**
   * Preemption (elector/preempt.ts): ranking first among the live eligible servers, ask the master
   * for the role once it has been followed this long (ms). Unset: off (the original's rule).
   */
  preemptDelayMs?: number;
  /**
   * The routine heartbeat's fast path (routine.ts). Off only for the simulator's check, whose
   * twin of every server steps each heartbeat through the full rules. @default true
   */
  routine?: boolean;
}

export const DEFAULT_MAX_SERVERS = 1000;
