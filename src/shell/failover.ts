/**
 * When the last failover happened and how long it took, as an operator means it: from the
 * last heartbeat heard from the master that was lost to the moment the next master is known
 * here. That includes the time it took to notice the silence (what clients of a crashed
 * master live through); a handoff or a graceful shutdown takes about nothing.
 *
 * It is kept beside the component, one per component, by whichever of the status routes
 * and the metrics registry asks first; both then report the same failover.
 */
import type { ServerRecord } from '../core/types';

export interface Failover {
  /** Epoch ms when the new master became known here. */
  at: number;
  from: string;
  to: string;
  /** Milliseconds from the lost master's last heartbeat heard here to `at`. */
  ms: number;
}

export interface FailoverSource {
  readonly masterHostname: string;
  readonly servers: Record<string, ServerRecord>;
  on(event: string, listener: (...args: any[]) => void): unknown;
}

export class FailoverClock {
  #last: Failover | null = null;
  #master: string;
  /** The master that was lost while none is known yet, and when it was last heard. */
  #lost: { hostname: string; heardAt: number } | null = null;

  constructor(source: FailoverSource) {
    this.#master = source.masterHostname;
    source.on('deleteserver', (record: ServerRecord) => {
      // Removed for its silence before (or as) the master change is announced: its last heartbeat is on the record.
      if (record.hostname === this.#master && !this.#lost) this.#lost = { hostname: record.hostname, heardAt: record.now * 1000 };
    });
    source.on('masterchange', (hostname: string, previous: string) => {
      const now = Date.now();
      if (previous && !this.#lost) {
        const record = source.servers[previous];
        this.#lost = { hostname: previous, heardAt: record ? record.now * 1000 : now };
      }
      if (hostname && this.#lost) {
        this.#last = { at: now, from: this.#lost.hostname, to: hostname, ms: Math.max(0, Math.round(now - this.#lost.heardAt)) };
        this.#lost = null;
      }
      this.#master = hostname;
    });
  }

  /** The last failover seen since the clock started, or null. */
  get last(): Failover | null {
    return this.#last;
  }
}

const clocks = new WeakMap<object, FailoverClock>();

/** The component's clock, started on first use. */
export function failoverClock(source: FailoverSource): FailoverClock {
  let clock = clocks.get(source);
  if (!clock) {
    clock = new FailoverClock(source);
    clocks.set(source, clock);
  }
  return clock;
}
