/** Errors the component reports at run time (config errors live in config.ts). */

export interface ProcessRef {
  /** Instance id: random per process ('' for an original server, which sends none). */
  iid: string;
  address: string;
  /** Its process id, when its heartbeats carry one. */
  pid?: number;
  /** It is this process. */
  self?: boolean;
}

/** Two live processes announce one hostname (emitted as 'error' when someone listens for it). */
export class DuplicateHostnameError extends Error {
  readonly hostname: string;
  /** The process that keeps the name, and the one that never claims master while both run. */
  readonly keeper: ProcessRef;
  readonly yielder: ProcessRef;
  constructor(hostname: string, keeper: ProcessRef, yielder: ProcessRef) {
    const name = (side: ProcessRef): string =>
      `${side.address}${side.pid !== undefined ? ` pid ${side.pid}` : ''} (instance ${side.iid || 'without id'}${side.self ? ', this process' : ''})`;
    super(
      `Duplicate hostname "${hostname}": live processes ${name(keeper)} and ${name(yielder)}; the second will not be master while both run`,
    );
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
