/** Errors the component reports at run time (config errors live in config.ts). */

export interface ProcessRef {
  /** Instance id: random per process ('' for an original server, which sends none). */
  iid: string;
  address: string;
}

/** Two live processes announce one hostname (emitted as 'error' when someone listens for it). */
export class DuplicateHostnameError extends Error {
  readonly hostname: string;
  /** The process that keeps the name, and the one that never claims master while both run. */
  readonly keeper: ProcessRef;
  readonly yielder: ProcessRef;
  constructor(hostname: string, keeper: ProcessRef, yielder: ProcessRef) {
    super(`Duplicate hostname "${hostname}": live processes at ${keeper.address} and ${yielder.address}; ${yielder.address} (instance ${yielder.iid || 'without id'}) will not be master while both run`);
    this.name = 'DuplicateHostnameError';
    this.hostname = hostname;
    this.keeper = keeper;
    this.yielder = yielder;
  }
}

/**
 * A checkpoint accepted on the master could not be stored in etcd (coordinator mode): the
 * master lost its role, or etcd held another term, before etcd stored it. Emitted as 'error'
 * when someone listens for it; `setCheckpoint()` resolves with `ok: false` either way.
 */
export class CheckpointError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'CheckpointError';
  }
}
