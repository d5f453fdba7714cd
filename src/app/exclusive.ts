/**
 * Master work that drains: the calls `exclusive(fn)` admitted, and the gate in front of them.
 *
 * The component owns the election; this module owns the work. It admits a call only while the
 * component says this server is master and the gate is open, runs it with an AbortSignal, and
 * counts it until it settles. A handover (stepDown, a promote request, a graceful shutdown, a
 * failing health check) closes the gate and drains: it waits until every admitted call has
 * settled, up to the drain timeout, then aborts what is left and lets the handover go on. So
 * the next master's first call starts after this one's last call ended, unless one overran
 * the timeout (then only its signal and the term fence stand between them).
 *
 * A role lost against our will (a conflict, a stall, quorum, the etcd deadline) aborts every
 * running call at once: another master may already run. No clock is read here except through
 * the injected timers, so the rules are tested without waiting.
 */

/** Why a call was not run. */
export type ExclusiveRefusal = 'not-master' | 'handing-over' | 'shutting-down' | 'not-running';

/** What `exclusive(fn)` resolves with: the work's value when it ran, the reason when it did not. */
export type ExclusiveResult<T> = { ran: true; value: T; term: number } | { ran: false; reason: ExclusiveRefusal; detail: string };

/** What a drain does to a call: wait for it to end (the default), or abort its signal at once and then wait. */
export type DrainMode = 'wait' | 'abort';

export interface ExclusiveOptions {
  /**
   * `wait` (default): a handover waits for the call to end by itself (up to the drain timeout).
   * `abort`: a handover aborts its signal at once, then waits for it to end: for work that runs
   * until told to stop (a consumer loop, a child process).
   */
  drain?: DrainMode;
}

/**
 * Why a call's signal was aborted: `role-lost` (this server stopped being master against its
 * will: another master may already run), `handover` (a drain began and the call asked to be
 * told: `drain: 'abort'`), `drain-timeout` (a drain waited `drain_timeout` for it).
 */
export type AbortKind = 'role-lost' | 'handover' | 'drain-timeout';

/** The `reason` of an aborted signal: `kind` says why. */
export class ExclusiveAbortError extends Error {
  readonly kind: AbortKind;
  constructor(kind: AbortKind, message: string) {
    super(message);
    this.name = 'ExclusiveAbortError';
    this.kind = kind;
  }
}

/** The outcome of one drain. */
export interface DrainOutcome {
  /** Milliseconds from its start to the last call settled, or to the timeout. */
  ms: number;
  /** Calls running when it began. */
  calls: number;
  /** Calls still running at the timeout (each was aborted). */
  timedOut: number;
}

export interface WorkTimers {
  /** Monotonic milliseconds. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface WorkStats {
  /** Calls admitted (the work ran). */
  runs: number;
  /** Calls refused (not master, or handing over). */
  refused: number;
  /** Calls whose signal was aborted, by why. */
  aborted: Record<AbortKind, number>;
  /** Drains completed, and the last one's length (ms) and calls. */
  drains: number;
  lastDrainMs: number;
  /** Drains that hit `drain_timeout` with work still running. */
  drainTimeouts: number;
}

interface Call {
  controller: AbortController;
  mode: DrainMode;
  startedAt: number;
  term: number;
}

interface Drain {
  startedAt: number;
  calls: number;
  timer: unknown;
  done: Promise<DrainOutcome>;
  resolve: (outcome: DrainOutcome) => void;
}

/** setTimeout's limit: a longer delay would fire at once. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

const REAL_TIMERS: WorkTimers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms);
    // A drain in progress must not keep a process alive that is otherwise done.
    timer.unref?.();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export class ExclusiveWork {
  readonly #timers: WorkTimers;
  readonly #running = new Set<Call>();
  /** Why the gate is closed (null: open). */
  #closed: string | null = null;
  #shuttingDown = false;
  #drain: Drain | null = null;
  readonly stats: WorkStats = {
    runs: 0,
    refused: 0,
    aborted: { 'role-lost': 0, handover: 0, 'drain-timeout': 0 },
    drains: 0,
    lastDrainMs: 0,
    drainTimeouts: 0,
  };

  constructor(timers: WorkTimers = REAL_TIMERS) {
    this.#timers = timers;
  }

  /** Calls admitted that have not settled yet (aborted ones included, until they end). */
  get running(): number {
    return this.#running.size;
  }

  /** Why new calls are refused while this server is master ('' when they are not). */
  get closedBecause(): string {
    return this.#closed ?? '';
  }

  /** Monotonic ms since when a drain runs (null: none). */
  get drainingSince(): number | null {
    return this.#drain?.startedAt ?? null;
  }

  /** When the oldest running call started (monotonic ms), or null. */
  get oldestStartedAt(): number | null {
    let oldest: number | null = null;
    for (const call of this.#running) if (oldest === null || call.startedAt < oldest) oldest = call.startedAt;
    return oldest;
  }

  /**
   * Run `fn` now if `master` (and the gate is open), counting it until it settles. `fn` is
   * called synchronously, so nothing can change the role between the check and the start.
   * A throw or a rejection of `fn` rejects the returned promise (the call is over either way).
   */
  run<T>(
    master: boolean,
    term: number,
    fn: (signal: AbortSignal, term: number) => T | PromiseLike<T>,
    options: ExclusiveOptions = {},
  ): Promise<ExclusiveResult<T>> {
    if (typeof fn !== 'function')
      return Promise.reject(new TypeError(`exclusive() needs a function, got ${fn === null ? 'null' : typeof fn}`));
    const mode = options.drain ?? 'wait';
    if (mode !== 'wait' && mode !== 'abort')
      return Promise.reject(
        new TypeError(`exclusive() option drain must be "wait" or "abort", got ${JSON.stringify(mode) ?? String(mode)}`),
      );
    const refusal = this.#refusal(master);
    if (refusal) {
      this.stats.refused++;
      return Promise.resolve(refusal);
    }
    const call: Call = { controller: new AbortController(), mode, startedAt: this.#timers.now(), term };
    this.#running.add(call);
    this.stats.runs++;
    let result: T | PromiseLike<T>;
    try {
      result = fn(call.controller.signal, term);
    } catch (err) {
      this.#settled(call);
      return Promise.reject(err);
    }
    return Promise.resolve(result).then(
      (value) => {
        this.#settled(call);
        return { ran: true as const, value, term };
      },
      (err: unknown) => {
        this.#settled(call);
        throw err;
      },
    );
  }

  #refusal(master: boolean): { ran: false; reason: ExclusiveRefusal; detail: string } | null {
    if (this.#shuttingDown) return { ran: false, reason: 'shutting-down', detail: 'the server is shutting down' };
    if (!master) return { ran: false, reason: 'not-master', detail: 'this server is not master' };
    if (this.#closed !== null) return { ran: false, reason: 'handing-over', detail: this.#closed };
    return null;
  }

  /** Admit no new call (`reason` says why, to whoever is refused). */
  close(reason: string): void {
    this.#closed = reason;
  }

  /** Admit calls again (a new term began, or a handover did not happen and we are still master). */
  open(): void {
    if (this.#shuttingDown) return;
    this.#closed = null;
  }

  /** The server is leaving: the gate never opens again. */
  shutDown(reason: string): void {
    this.#shuttingDown = true;
    this.#closed = reason;
  }

  /**
   * Wait until every running call has settled, or `timeoutMs` has passed (then abort each
   * still running, and resolve without waiting for them). Close the gate first. Calls that
   * asked for it (`drain: 'abort'`) are aborted at once. A drain already running is joined:
   * one handover waits once, however many reasons it has.
   */
  drain(timeoutMs: number): Promise<DrainOutcome> {
    if (this.#drain) return this.#drain.done;
    const startedAt = this.#timers.now();
    const calls = this.#running.size;
    let resolve!: (outcome: DrainOutcome) => void;
    const done = new Promise<DrainOutcome>((r) => (resolve = r));
    const drain: Drain = { startedAt, calls, timer: null, done, resolve };
    this.#drain = drain;
    for (const call of this.#running) {
      if (call.mode === 'abort') this.#abort(call, 'handover', 'a handover began: end the work (the next master starts once it has)');
    }
    if (this.#running.size === 0) {
      this.#finish(drain, 0);
      return done;
    }
    const ms = Math.max(0, Math.min(MAX_TIMEOUT_MS, timeoutMs));
    drain.timer = this.#timers.setTimeout(() => {
      if (this.#drain !== drain) return;
      const left = [...this.#running];
      for (const call of left)
        this.#abort(
          call,
          'drain-timeout',
          `the handover waited drain_timeout (${Math.round(ms)} ms) for this work: another master may start now`,
        );
      this.stats.drainTimeouts++;
      this.#finish(drain, left.length);
    }, ms);
    return done;
  }

  /** This server is no longer master against its will: abort every running call. */
  roleLost(why = 'this server is no longer master'): void {
    for (const call of this.#running) this.#abort(call, 'role-lost', `${why}: another master may already run`);
  }

  #abort(call: Call, kind: AbortKind, message: string): void {
    if (call.controller.signal.aborted) return;
    this.stats.aborted[kind]++;
    try {
      call.controller.abort(new ExclusiveAbortError(kind, message));
    } catch {
      // An 'abort' listener of the app threw: its bug, and the signal is aborted all the same.
    }
  }

  #settled(call: Call): void {
    if (!this.#running.delete(call)) return;
    const drain = this.#drain;
    if (drain && this.#running.size === 0) this.#finish(drain, 0);
  }

  #finish(drain: Drain, timedOut: number): void {
    if (this.#drain !== drain) return;
    this.#drain = null;
    if (drain.timer !== null) this.#timers.clearTimeout(drain.timer);
    const ms = this.#timers.now() - drain.startedAt;
    this.stats.drains++;
    this.stats.lastDrainMs = ms;
    drain.resolve({ ms, calls: drain.calls, timedOut });
  }
}
