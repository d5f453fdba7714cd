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
   * The election: one transaction "if `key` does not exist, put it under `lease` (and
   * delete `alsoDelete`); otherwise read it".
   */
  | { type: 'campaign'; id: number; key: string; value: string; lease: string; alsoDelete?: string; timeoutMs: number }
  /**
   * Fenced write: "if `fenceKey` exists with create revision `term`, then delete
   * `deleteKey` (if given) and put `put` (if given)". Resigning is
   * `{ fenceKey: master, term, deleteKey: master, put: handoff }`; a checkpoint is
   * `{ fenceKey: master, term, put: checkpoint }`.
   */
  | {
      type: 'fenced';
      id: number;
      fenceKey: string;
      term: number;
      deleteKey?: string;
      put?: { key: string; value: string; lease: string };
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
  /** `won`: the key is ours. `holder`: the key as it stood when we lost (null if unknown). */
  | { type: 'campaign'; won: boolean; revision: number; holder: KeyValue | null }
  | { type: 'fenced'; succeeded: boolean; revision: number }
  | { type: 'sync'; revision: number; kvs: KeyValue[] }
  /** The op failed or timed out; it may or may not have taken effect. */
  | { type: 'error'; error: string };

export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
}

/** The events of one watch response, in revision order. */
export interface WatchBatch {
  events: WatchEvent[];
}
