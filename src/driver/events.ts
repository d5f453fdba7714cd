/**
 * The events a MultiServer emits, on the component and on the parent server, as a typed
 * map: `on('master', (term, checkpoint) => …)` is checked, and an unknown name is not.
 */
import type { JsonValue } from '../protocol/messages';
import type { ServerRecord } from '../elector/types';

/** Replies to a request: call once with the answer payload. */
export type Reply = (payload: JsonValue) => void;

/** The outcome of stepDown() or promote(). */
export interface HandoffResult {
  ok: boolean;
  reason: string;
}

/**
 * The outcome of setCheckpoint(): with the etcd mode, `ok` once etcd stored it (or a later
 * checkpoint of the same master), false when it could not be (the master lost its role
 * first, or etcd holds another term); with UDP heartbeats, `ok` once it is sent.
 */
export interface CheckpointResult {
  ok: boolean;
  reason: string;
}

export interface MultiServerEvents {
  /** This server became master: the new term (fencing token) and the last checkpoint, if any. */
  master: [term: number, checkpoint: JsonValue | null];
  /**
   * This server's own role became slave: the first master it follows since it started, or it
   * gave the role up. Not when the master it follows changes (that is `masterchange`), as in
   * the original.
   */
  slave: [];
  /** A server joined the table. */
  addserver: [server: ServerRecord];
  /** A server left the table (shutdown notice, or silent for a tock). */
  deleteserver: [server: ServerRecord];
  /** `masterHostname` changed ('' while there is none): at most once per step of the election. */
  masterchange: [hostname: string, previous: string];
  /** The live eligible servers changed: keys split with masterFor() move. */
  assignment: [members: string[]];
  /** An application message from another server (`reply` is set for a request). */
  message: [type: string, payload: JsonValue, from: string, reply: Reply | undefined];
  stepdown: [result: HandoffResult];
  promote: [result: HandoffResult];
  /** Only emitted when someone listens: a DuplicateHostnameError. */
  error: [err: Error];
}

export type EventName = keyof MultiServerEvents;

/** Emits one typed event (the shell: on the component and on the server). */
export type Emit = <E extends EventName>(name: E, ...args: MultiServerEvents[E]) => void;
