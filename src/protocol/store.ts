/**
 * The store contract: what the lease-election machine asks of a coordination store (etcd,
 * or the simulator's model of it) and what it takes back. Plain data, like the messages of
 * the UDP protocol: the machine never touches a client, and the driver routes these ops
 * without knowing which elector made them.
 *
 * Every op but `watch` and `unwatch` gets exactly one result, success or `error` (the
 * adapter fails an op after its `timeoutMs`; a reply arriving later is dropped). An op that
 * failed may still have been carried out by the store: the machine is written for that.
 */

/** One key as the store holds it. Revisions are the store's, so they are the same for every reader. */
export interface KeyValue {
  key: string;
  value: string;
  /** Revision at which this key was created (0 in a delete event). */
  createRevision: number;
  /** Revision of the last change (for a delete event: the deletion). */
  modRevision: number;
  /** Lease the key is attached to, as a decimal string; '0' for none. */
  lease: string;
}

export type StoreOp =
  /** Create a lease of `ttlSeconds` (the store may grant a longer one). */
  | { type: 'grant'; id: number; ttlSeconds: number; timeoutMs: number }
  /** Refresh a lease once. */
  | { type: 'keepAlive'; id: number; lease: string; timeoutMs: number }
  /** End a lease now: every key attached to it is deleted (one revision). */
  | { type: 'revoke'; id: number; lease: string; timeoutMs: number }
  /** Plain put, attached to `lease` ('0': none). */
  | { type: 'put'; id: number; key: string; value: string; lease: string; timeoutMs: number }
  /**
   * The election: one transaction "if `key` does not exist and `guard.key` was last changed
   * at `guard.modRevision` (0: it does not exist), then put `key` under `lease`, put each of
   * `alsoPut` and delete `alsoDelete`; otherwise read `key` and `guard.key`". The guard makes
   * the new term (written to `guard.key` by every campaign) above every term granted before.
   */
  | {
      type: 'campaign';
      id: number;
      key: string;
      value: string;
      lease: string;
      alsoPut: Array<{ key: string; value: string; lease: string }>;
      alsoDelete?: string;
      guard: { key: string; modRevision: number };
      timeoutMs: number;
    }
  /**
   * Fenced write: "if `fenceKey` holds exactly `fenceValue` (or, with `fenceModRevision`
   * instead, was last changed at that revision, 0: does not exist), then delete each of
   * `deleteKeys` and put each of `puts`". Resigning is `{ fenceKey: term, fenceValue: our
   * term, deleteKeys: [master, term], puts: [handoff] }`; a checkpoint is `{ …, puts:
   * [checkpoint] }`; raising `last-term` back after a restore is guarded by its revision.
   */
  | {
      type: 'fenced';
      id: number;
      fenceKey: string;
      fenceValue?: string;
      fenceModRevision?: number;
      deleteKeys?: string[];
      puts?: Array<{ key: string; value: string; lease: string }>;
      timeoutMs: number;
    }
  /** Read every key under `prefix`, with the store's revision at that read. */
  | { type: 'sync'; id: number; prefix: string; timeoutMs: number }
  /**
   * Report every change under `prefix` from `fromRevision` on, in revision order, until
   * unwatched or lost (also lost when not established within `timeoutMs`).
   */
  | { type: 'watch'; id: number; prefix: string; fromRevision: number; timeoutMs: number }
  | { type: 'unwatch'; id: number };

export type StoreResult =
  | { type: 'grant'; lease: string; ttlSeconds: number }
  /** `ttlSeconds` 0: the store does not know the lease (it expired or was revoked). */
  | { type: 'keepAlive'; ttlSeconds: number }
  | { type: 'revoke' }
  | { type: 'put'; revision: number }
  /**
   * `won`: the key is ours. Lost: `holder` is the key as it stood (null if absent or unknown)
   * and `guard` the guard key as it stood (null if absent): the guard changed when no one holds the key.
   */
  | { type: 'campaign'; won: boolean; revision: number; holder: KeyValue | null; guard: KeyValue | null }
  | { type: 'fenced'; succeeded: boolean; revision: number }
  | { type: 'sync'; revision: number; kvs: KeyValue[] }
  /**
   * The op failed or timed out; it may or may not have taken effect. `kind` and `endpoint`
   * (the member that failed, when one did) say why, for the operator.
   */
  | { type: 'error'; error: string; kind?: StoreErrorKind; endpoint?: string };

/**
 * Why an op failed: credentials refused (`auth`), the TLS handshake failed (`tls`), no
 * connection (`unreachable`), etcd without a leader or losing the proposal (`no-leader`), no
 * answer in time (`timeout`), anything else (`other`).
 */
export type StoreErrorKind = 'auth' | 'tls' | 'unreachable' | 'no-leader' | 'timeout' | 'other';

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
}

/** The events of one watch response, in revision order. */
export interface WatchBatch {
  events: WatchEvent[];
}
