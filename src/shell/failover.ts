/**
 * The last failover seen here, as the status page, the status JSON and the metrics show
 * it. The driver times it (from the lost master's last heartbeat heard here to knowing the
 * next master); this is only the shape the shell reads.
 */
export interface Failover {
  /** Epoch ms when the new master became known here. */
  at: number;
  from: string;
  to: string;
  /** Milliseconds from the lost master's last heartbeat (or shutdown notice) heard here to `at`. */
  ms: number;
}

export interface FailoverSource {
  readonly lastFailover: Failover | null;
}

/** What the status and metrics code read: the last failover, or null. */
export interface FailoverClock {
  readonly last: Failover | null;
}

export function failoverClock(source: FailoverSource): FailoverClock {
  return {
    get last(): Failover | null {
      return source.lastFailover;
    },
  };
}
