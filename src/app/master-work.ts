/**
 * What the component does around the election for work that must not overlap: the calls of
 * `exclusive()`, the drain before every handover made on purpose, the health check and the
 * eligibility it implies. The component calls in at its hooks (role events, stepDown, a promote
 * request the election holds for us, shutdown, `eligible`); this module never touches the
 * election itself, only through the host.
 *
 * Every voluntary handover goes the same way: close the gate (no new call), drain (the calls
 * running end, or `drain_timeout` passes and they are aborted), then hand over. Handovers
 * against our will (the `slave` event without one) abort the running calls at once.
 */
import { ExclusiveWork, type DrainOutcome, type ExclusiveOptions, type ExclusiveResult, type WorkTimers } from './exclusive';
import { HealthCheck, healthWord, type HealthCheckFn, type HealthOptions, type HealthStatus, type HealthTimers } from './health';
import type { HealthWord } from '../protocol/messages';

export interface MasterWorkHost {
  /** This server is master now (reads the etcd deadline too). */
  isMaster(): boolean;
  term(): number;
  /** `drain_timeout`, ms. */
  drainTimeoutMs(): number;
  /** What the app set `eligible` to. */
  appEligible(): boolean;
  /** Tell the election this server's eligibility (the app's, and the health check's). */
  applyEligible(eligible: boolean): void;
  /** Tell the election the health check's state, which our heartbeats carry (null: no check). */
  applyHealth?(health: HealthWord | null): void;
  log(level: number, message: string): void;
}

export class MasterWork {
  readonly work: ExclusiveWork;
  readonly #host: MasterWorkHost;
  readonly #healthTimers: HealthTimers | undefined;
  #health: HealthCheck | null = null;
  /** The server is leaving: no call is admitted again. */
  #leaving = false;
  /** Handovers waiting for the drain, by reason (for the log and the status). */
  #pending = new Set<string>();

  constructor(host: MasterWorkHost, timers?: { work?: WorkTimers; health?: HealthTimers }) {
    this.#host = host;
    this.work = new ExclusiveWork(timers?.work);
    this.#healthTimers = timers?.health;
  }

  // ---- exclusive() ---------------------------------------------------------------------

  exclusive<T>(fn: (signal: AbortSignal, term: number) => T | PromiseLike<T>, options?: ExclusiveOptions): Promise<ExclusiveResult<T>> {
    // Read the role first: with etcd, reading it past the deadline steps down (and aborts) now.
    const master = this.#host.isMaster();
    return this.work.run(master, this.#host.term(), fn, options);
  }

  /** What the status document shows. */
  get state(): { running: number; draining: boolean; handingOver: string; oldestMs: number | null; drainingMs: number | null } {
    const now = performance.now();
    const oldest = this.work.oldestStartedAt;
    const since = this.work.drainingSince;
    return {
      running: this.work.running,
      draining: since !== null,
      handingOver: this.work.closedBecause,
      oldestMs: oldest === null ? null : Math.round(now - oldest),
      drainingMs: since === null ? null : Math.round(now - since),
    };
  }

  // ---- role events -----------------------------------------------------------------------

  /** We became master: a new term, calls admitted again. */
  onMaster(): void {
    if (!this.#leaving) this.work.open();
  }

  /**
   * Our role became slave. After a handover of ours every call has ended or been aborted; any
   * other way (a conflict lost, a stall, quorum, the etcd deadline) another master may run now.
   */
  onSlave(): void {
    if (this.work.running > 0)
      this.#host.log(2, `No longer master with ${this.work.running} exclusive call(s) running: aborting their signals`);
    this.work.roleLost();
  }

  /** A handover did not happen and we are still master: admit calls again. */
  handoverFailed(): void {
    if (this.#host.isMaster() && this.#host.appEligible() && (this.#health?.healthy ?? true)) this.work.open();
  }

  // ---- handovers on purpose --------------------------------------------------------------

  /**
   * Close the gate, drain if this server is master with calls running, then `then()`. Without
   * calls running `then()` runs at once, so a handover with no work takes no longer than before.
   */
  handOver<R>(reason: string, then: () => R): R | Promise<R> {
    this.work.close(reason);
    if (!this.#host.isMaster() || this.work.running === 0) return then();
    return this.#drain(reason).then(() => then());
  }

  async #drain(reason: string): Promise<DrainOutcome> {
    this.#pending.add(reason);
    const timeoutMs = this.#host.drainTimeoutMs();
    if (this.#pending.size === 1) {
      this.#host.log(
        3,
        `Draining before handing the master role over (${reason}): waiting for ${this.work.running} exclusive call(s), at most ${Math.round(timeoutMs)} ms`,
      );
    }
    const outcome = await this.work.drain(timeoutMs);
    if (this.#pending.delete(reason) && this.#pending.size === 0) {
      if (outcome.timedOut > 0)
        this.#host.log(
          1,
          `Drain timed out after ${Math.round(outcome.ms)} ms: ${outcome.timedOut} exclusive call(s) still running were aborted; handing over now (fence their writes with the term)`,
        );
      else this.#host.log(3, `Drained ${outcome.calls} exclusive call(s) in ${Math.round(outcome.ms)} ms: handing over`);
    }
    return outcome;
  }

  /**
   * The server is leaving: no call admitted again. A master with calls running drains: the
   * promise resolves when it may go; null when it may go now.
   */
  leave(): Promise<unknown> | null {
    const first = !this.#leaving;
    this.#leaving = true;
    this.#health?.stop();
    this.work.shutDown('the server is shutting down');
    if (!first || !this.#host.isMaster() || this.work.running === 0) return null;
    return this.#drain('shutting down');
  }

  // ---- eligibility and health ------------------------------------------------------------

  /** The eligibility the election gets: the app's, and a passing (or no) health check. */
  get eligible(): boolean {
    return this.#host.appEligible() && (this.#health?.healthy ?? true);
  }

  /** The app set `eligible`, or the health check changed: a master made ineligible drains first. */
  eligibilityChanged(reason: string): void {
    const eligible = this.eligible;
    if (eligible || !this.#host.isMaster()) {
      this.#host.applyEligible(eligible);
      return;
    }
    void this.handOver(reason, () => {
      // The health may have recovered (or the app changed its mind) during the drain.
      const now = this.eligible;
      this.#host.applyEligible(now);
      if (now) this.handoverFailed();
    });
  }

  get health(): HealthStatus | null {
    return this.#health?.status ?? null;
  }

  /** The health check's state as our heartbeats carry it (null: no check). */
  get healthWord(): HealthWord | null {
    const status = this.health;
    return status ? healthWord(status) : null;
  }

  /** Replace the health check (null: none, healthy). */
  setHealthCheck(fn: HealthCheckFn | null, options: HealthOptions = {}): void {
    // Built first: bad options throw before the running check is touched.
    const next: HealthCheck | null =
      fn === null ? null : new HealthCheck(fn, options, (status) => this.#healthChanged(next, status), this.#healthTimers);
    const before = this.#health?.healthy ?? true;
    this.#health?.stop();
    this.#health = next;
    if (next) {
      next.onResult = (status) => {
        if (next === this.#health) this.#host.applyHealth?.(healthWord(status));
      };
    }
    this.#host.applyHealth?.(this.healthWord);
    if (next && !this.#leaving) next.start();
    // A failing check removed, or replaced by one that has no result yet (counted as healthy):
    // eligible again now. A new check's first pass would not say so: it is no change of state.
    if (!before) {
      this.#host.log(
        2,
        `Health check ${next ? 'replaced' : 'removed'}: this server is eligible again (if \`eligible\` allows)${next ? ' until the new check fails' : ''}`,
      );
      this.eligibilityChanged(next ? 'health check replaced' : 'health check removed');
    }
  }

  #healthChanged(check: HealthCheck | null, status: HealthStatus): void {
    if (check !== this.#health || this.#leaving) return;
    const last = status.last;
    if (!status.healthy) {
      const detail = last?.error ? `: ${last.error}` : '';
      this.#host.log(
        1,
        `Health check failing (${status.checks === 1 ? 'its first check' : `${status.failures} in a row`})${detail}; this server is not eligible to be master until it passes ${status.rise} in a row`,
      );
      this.eligibilityChanged('the health check is failing');
    } else if (status.checks > 1 || status.state !== 'passing') {
      this.#host.log(
        2,
        `Health check passing again (${status.passes} in a row): this server is eligible${this.#host.appEligible() ? '' : ' as far as the check goes (`eligible` is false)'}`,
      );
      this.eligibilityChanged('the health check passes');
    }
  }
}
