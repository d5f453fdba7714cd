/**
 * Our contact with the store, as an operator needs to hear of it: one failed op is routine
 * (a member restarting, a leader election), so each is logged at a debug level only; a
 * failure that lasts longer than a TTL (mastership is at stake) is logged at level 1 with
 * its reason (credentials refused, TLS, which members cannot be reached), then at most once
 * a minute with a count, and its end once. The log lines never carry a secret: the reasons
 * are the adapter's (endpoint URLs, which hold no credentials, and etcd's error text).
 */
import type { StoreErrorKind } from '../protocol/store';
import type { LeaseStep } from './step';

/** How often a failure that goes on is logged again. */
export const REPEAT_MS = 60_000;

const ADVICE: Record<StoreErrorKind, string> = {
  auth: 'authentication refused (check coordinator.username and coordinator.password)',
  tls: 'TLS failed (check coordinator.ca_file, cert_file and key_file, and that the hosts are https://)',
  unreachable: 'no connection',
  'no-leader': 'etcd has no leader (a quorum of its members may be down)',
  timeout: 'no answer in time',
  other: 'failed',
};
const ORDER: StoreErrorKind[] = ['auth', 'tls', 'unreachable', 'no-leader', 'timeout', 'other'];

export class StoreContact {
  readonly #step: LeaseStep;
  /** Monotonic ms of the first failure since the last success; null while in contact. */
  #failingSince: number | null = null;
  /** When the failure was last logged at level 1; null: not yet. */
  #reportedAt: number | null = null;
  #failures = 0;
  #totalFailures = 0;
  /** Per kind of failure since the last report: endpoints and the last message. */
  #reasons = new Map<StoreErrorKind, { endpoints: Set<string>; message: string }>();

  constructor(step: LeaseStep) {
    this.#step = step;
  }

  get failingSince(): number | null {
    return this.#failingSince;
  }

  /** An op failed; the machine retries it. */
  failed(error: { error: string; kind?: StoreErrorKind; endpoint?: string }, what: string, now: number): void {
    this.#failingSince ??= now;
    this.#failures++;
    this.#totalFailures++;
    const kind = error.kind ?? 'other';
    let reason = this.#reasons.get(kind);
    if (!reason) this.#reasons.set(kind, (reason = { endpoints: new Set(), message: '' }));
    if (error.endpoint && reason.endpoints.size < 32) reason.endpoints.add(error.endpoint);
    reason.message = error.error.slice(0, 200);
    this.#step.log(
      6,
      `Coordinator: ${what} failed (${error.error.slice(0, 200)}${error.endpoint ? ` at ${error.endpoint}` : ''}); retrying`,
    );
  }

  /** The store answered an op: in contact (again). */
  succeeded(now: number): void {
    if (this.#failingSince === null) return;
    if (this.#reportedAt !== null)
      this.#step.log(
        1,
        `Coordinator: in contact with etcd again after ${seconds(now - this.#failingSince)} s (${this.#totalFailures} failed requests)`,
      );
    this.#failingSince = null;
    this.#reportedAt = null;
    this.#failures = 0;
    this.#totalFailures = 0;
    this.#reasons.clear();
  }

  /** Log the failure if it has lasted a TTL, and again once a minute while it lasts. */
  check(now: number, ttlMs: number): void {
    const since = this.#failingSince;
    if (since === null || now < this.#dueAt(ttlMs)) return;
    const first = this.#reportedAt === null;
    this.#reportedAt = now;
    const why = this.#describe();
    if (first) {
      this.#step.log(1, `Coordinator: no working contact with etcd for ${seconds(now - since)} s (TTL ${seconds(ttlMs)} s): ${why}`);
    } else {
      this.#step.log(
        1,
        `Coordinator: still no working contact with etcd after ${seconds(now - since)} s; ${this.#failures} failed requests in the last minute: ${why}`,
      );
    }
    this.#failures = 0;
    this.#reasons.clear();
  }

  wakeAt(ttlMs: number): number {
    return this.#failingSince === null ? Infinity : this.#dueAt(ttlMs);
  }

  #dueAt(ttlMs: number): number {
    const since = this.#failingSince as number;
    return this.#reportedAt === null ? since + ttlMs : this.#reportedAt + REPEAT_MS;
  }

  #describe(): string {
    const parts: string[] = [];
    for (const kind of ORDER) {
      const reason = this.#reasons.get(kind);
      if (!reason) continue;
      const where = reason.endpoints.size > 0 ? ` with ${[...reason.endpoints].sort().join(', ')}` : '';
      parts.push(`${ADVICE[kind]}${where}: ${reason.message}`);
    }
    return parts.length > 0 ? parts.join('; ') : 'no answer';
  }
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}
