/**
 * A health check with rise and fall counts (keepalived's `vrrp_script`, HAProxy's `check`):
 * the app's function runs every `interval` seconds; `fall` failures in a row make the server
 * unhealthy, `rise` passes in a row healthy again. The component turns that into eligibility
 * (a failing server is not master, a failing master steps down after draining its work).
 *
 * One check at a time: the next starts `interval` after the previous one started, or when it
 * ends if it took longer. A check that has not ended within `timeout` fails, and its signal is
 * aborted. The first result decides at once, without the counts: a server that starts sick is
 * ineligible within one check, and a healthy one does not wait `rise` checks to be eligible.
 */

import type { HealthWord } from '../protocol/messages';
import { MAX_HEALTH_COUNT, MAX_HEALTH_ERROR_CHARS } from '../protocol/limits';

export interface HealthOptions {
  /** Seconds between the starts of two checks. @default 2 */
  interval?: number;
  /** Passes in a row that make a failing server healthy again. @default 2 */
  rise?: number;
  /** Failures in a row that make a healthy server failing. @default 3 */
  fall?: number;
  /** Seconds a check may take; past it, it fails and its signal is aborted. @default the interval */
  timeout?: number;
}

export type HealthCheckFn = (signal: AbortSignal) => unknown;

/** `starting`: no result yet (counted as healthy). */
export type HealthState = 'starting' | 'passing' | 'failing';

/** What the status document, the page, the CLI and the metrics show. */
export interface HealthStatus {
  state: HealthState;
  /** Not failing: the check lets this server be master. */
  healthy: boolean;
  interval: number;
  rise: number;
  fall: number;
  timeout: number;
  /** Passes in a row (0 after a failure), failures in a row (0 after a pass). */
  passes: number;
  failures: number;
  /** Checks run so far. */
  checks: number;
  /** The last check: its outcome, why it failed (''), when it ended (epoch ms) and how long it took (ms). */
  last: { ok: boolean; error: string; at: number; ms: number } | null;
  /** Epoch ms of the last change of state (0: none yet). */
  since: number;
}

export interface HealthTimers {
  /** Monotonic ms. */
  now(): number;
  /** Epoch ms, for display only. */
  wall(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const HEALTH_DEFAULTS = Object.freeze({ interval: 2, rise: 2, fall: 3 });
/** The longest interval or timeout: a day (a longer one is a unit mistake). */
const MAX_SECONDS = 86_400;
const MAX_COUNT = 1000;
/** A failure's message as shown: bounded, one line. */
const MAX_ERROR_CHARS = 200;

const REAL_TIMERS: HealthTimers = {
  now: () => performance.now(),
  wall: () => Date.now(),
  setTimeout: (fn, ms) => {
    const timer = setTimeout(fn, ms);
    timer.unref?.();
    return timer;
  },
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** The options checked and filled in; a bad one throws a TypeError naming it and its value. */
export function healthSettings(options: HealthOptions = {}): Required<HealthOptions> {
  if (options === null || typeof options !== 'object')
    throw new TypeError(`health check options must be an object, got ${String(options)}`);
  const seconds = (key: 'interval' | 'timeout', value: unknown): number => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0.01 || value > MAX_SECONDS) {
      throw new TypeError(`health check option ${key} must be a number of seconds from 0.01 to ${MAX_SECONDS}, got ${describe(value)}`);
    }
    return value;
  };
  const count = (key: 'rise' | 'fall', value: unknown): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_COUNT) {
      throw new TypeError(`health check option ${key} must be an integer from 1 to ${MAX_COUNT}, got ${describe(value)}`);
    }
    return value;
  };
  const interval = seconds('interval', options.interval ?? HEALTH_DEFAULTS.interval);
  return {
    interval,
    rise: count('rise', options.rise ?? HEALTH_DEFAULTS.rise),
    fall: count('fall', options.fall ?? HEALTH_DEFAULTS.fall),
    timeout: seconds('timeout', options.timeout ?? interval),
  };
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : `${String(value)} (${typeof value})`;
}

/** A thrown value as one short line. */
function why(err: unknown): string {
  let text: string;
  try {
    text = err instanceof Error ? err.message || err.name : typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
  } catch {
    text = 'an unprintable value';
  }
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS - 1)}…` : text;
}

export class HealthCheck {
  readonly #fn: HealthCheckFn;
  readonly #settings: Required<HealthOptions>;
  readonly #timers: HealthTimers;
  readonly #changed: (status: HealthStatus) => void;
  #state: HealthState = 'starting';
  #passes = 0;
  #failures = 0;
  #checks = 0;
  #last: HealthStatus['last'] = null;
  #since = 0;
  #timer: unknown = null;
  #running: AbortController | null = null;
  #stopped = false;
  /** Told after every result, before `changed`: what other servers see follows each check. */
  onResult: ((status: HealthStatus) => void) | null = null;

  /** `changed` is called when the state changes (never for `starting`). */
  constructor(fn: HealthCheckFn, options: HealthOptions, changed: (status: HealthStatus) => void, timers: HealthTimers = REAL_TIMERS) {
    if (typeof fn !== 'function')
      throw new TypeError(`setHealthCheck() needs a function (or null to remove the check), got ${fn === null ? 'null' : typeof fn}`);
    this.#fn = fn;
    this.#settings = healthSettings(options);
    this.#timers = timers;
    this.#changed = changed;
  }

  get healthy(): boolean {
    return this.#state !== 'failing';
  }

  get status(): HealthStatus {
    return {
      state: this.#state,
      healthy: this.healthy,
      ...this.#settings,
      passes: this.#passes,
      failures: this.#failures,
      checks: this.#checks,
      last: this.#last ? { ...this.#last } : null,
      since: this.#since,
    };
  }

  /** Run the first check now, then every interval. */
  start(): void {
    if (this.#stopped || this.#running || this.#timer !== null) return;
    this.#check();
  }

  /** No more checks; one in flight is aborted and its result ignored. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) this.#timers.clearTimeout(this.#timer);
    this.#timer = null;
    const running = this.#running;
    this.#running = null;
    running?.abort(new Error('the health check was removed'));
  }

  #check(): void {
    this.#timer = null;
    if (this.#stopped) return;
    const controller = new AbortController();
    this.#running = controller;
    const startedAt = this.#timers.now();
    let ended = false;
    const end = (ok: boolean, error: string): void => {
      if (ended) return;
      ended = true;
      if (timeout !== null) this.#timers.clearTimeout(timeout);
      if (this.#running !== controller) return; // stopped meanwhile
      this.#running = null;
      const now = this.#timers.now();
      this.#record(ok, error, now - startedAt);
      if (this.#stopped) return;
      const next = Math.max(0, startedAt + this.#settings.interval * 1000 - now);
      this.#timer = this.#timers.setTimeout(() => this.#check(), next);
    };
    let timeout: unknown = null;
    timeout = this.#timers.setTimeout(() => {
      const message = `no answer within ${this.#settings.timeout} s`;
      try {
        controller.abort(new Error(`health check timed out (${this.#settings.timeout} s)`));
      } catch {
        // Node reports a throwing 'abort' listener by itself; the check has failed either way.
      }
      end(false, message);
    }, this.#settings.timeout * 1000);
    let result: unknown;
    try {
      result = this.#fn(controller.signal);
    } catch (err) {
      end(false, why(err));
      return;
    }
    Promise.resolve(result).then(
      (value) => end(value !== false, value === false ? 'the check returned false' : ''),
      (err: unknown) => end(false, why(err)),
    );
  }

  #record(ok: boolean, error: string, ms: number): void {
    this.#checks++;
    this.#last = { ok, error, at: this.#timers.wall(), ms: Math.round(ms) };
    if (ok) {
      this.#passes++;
      this.#failures = 0;
    } else {
      this.#failures++;
      this.#passes = 0;
    }
    const { rise, fall } = this.#settings;
    let next = this.#state;
    if (this.#state === 'starting') next = ok ? 'passing' : 'failing';
    else if (this.#state === 'passing' && this.#failures >= fall) next = 'failing';
    else if (this.#state === 'failing' && this.#passes >= rise) next = 'passing';
    const changed = next !== this.#state;
    if (changed) {
      this.#state = next;
      this.#since = this.#timers.wall();
    }
    // Before `changed`, whose eligibility change sends a heartbeat at once: it carries this result.
    this.onResult?.(this.status);
    if (changed) this.#changed(this.status);
  }
}

/**
 * The status as our heartbeats carry it (protocol HealthWord): counts capped where the
 * decoder stops, and the reason as one line of printable text (the decoder refuses control
 * and bidirectional-override characters) cut to the wire's length, only while the last check failed.
 */
export function healthWord(status: HealthStatus): HealthWord {
  const word: HealthWord = { s: status.state, rise: status.rise, fall: status.fall };
  if (status.failures > 0) word.f = Math.min(status.failures, MAX_HEALTH_COUNT);
  if (status.passes > 0) word.p = Math.min(status.passes, MAX_HEALTH_COUNT);
  const error = status.last && !status.last.ok ? wireText(status.last.error) : '';
  if (error) word.e = error;
  return word;
}

function wireText(text: string): string {
  const line = text
    .replace(/[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (line.length <= MAX_HEALTH_ERROR_CHARS) return line;
  // By code points, so a surrogate pair is never cut in two.
  let cut = '';
  for (const char of line) {
    if (cut.length + char.length > MAX_HEALTH_ERROR_CHARS - 1) break;
    cut += char;
  }
  return `${cut}…`;
}
