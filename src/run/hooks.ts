/**
 * The `--on-master`, `--on-slave` and `--on-fault` commands. They run one at a time, in the
 * order of the events that caused them, each through `/bin/sh -c` in a session of its own,
 * with the wrapper's stdout and stderr. The election never waits for them: a hook that runs
 * past its timeout gets SIGTERM (its whole group), SIGKILL 2 s later, and the next one runs.
 * A hook that fails is logged with its exit status, nothing more.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

export type HookEvent = 'master' | 'slave' | 'fault';

export interface Hook {
  event: HookEvent;
  env: Record<string, string>;
}

/** Hooks waiting to run; beyond it the oldest waiting one is dropped (a flapping role). */
export const MAX_PENDING_HOOKS = 32;
const KILL_AFTER_TERM_MS = 2000;

export class HookRunner {
  readonly #commands: Partial<Record<HookEvent, string>>;
  readonly #timeoutMs: number;
  readonly #log: (level: number, message: string) => void;
  readonly #baseEnv: NodeJS.ProcessEnv;
  #queue: Hook[] = [];
  #running = false;
  #idle: Array<() => void> = [];
  #dropped = 0;

  constructor(
    commands: Partial<Record<HookEvent, string>>,
    timeoutMs: number,
    log: (level: number, message: string) => void,
    baseEnv: NodeJS.ProcessEnv,
  ) {
    this.#commands = commands;
    this.#timeoutMs = timeoutMs;
    this.#log = log;
    this.#baseEnv = baseEnv;
  }

  has(event: HookEvent): boolean {
    return this.#commands[event] !== undefined;
  }

  enqueue(hook: Hook): void {
    if (!this.has(hook.event)) return;
    if (this.#queue.length >= MAX_PENDING_HOOKS) {
      const dropped = this.#queue.shift() as Hook;
      // One line per burst, not per hook: a flapping role must not flood the log.
      if (this.#dropped++ === 0)
        this.#log(
          1,
          `Hook queue full (${MAX_PENDING_HOOKS} waiting behind a slow hook): dropping the oldest (on-${dropped.event}, ${dropped.env.MULTI_REASON ?? ''})`,
        );
    }
    this.#queue.push(hook);
    this.#next();
  }

  /** Resolves when no hook runs or waits (or after `limitMs`). */
  idle(limitMs: number): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, limitMs);
      this.#idle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #next(): void {
    if (this.#running) return;
    const hook = this.#queue.shift();
    if (!hook) {
      if (this.#dropped > 1) this.#log(1, `Hook queue: ${this.#dropped} hooks were dropped in all`);
      this.#dropped = 0;
      for (const resolve of this.#idle.splice(0)) resolve();
      return;
    }
    this.#running = true;
    const command = this.#commands[hook.event] as string;
    const started = performance.now();
    const child = spawn('/bin/sh', ['-c', command], {
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
      env: { ...this.#baseEnv, ...hook.env },
    });
    const signalGroup = (signal: NodeJS.Signals): void => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // gone
      }
    };
    let killTimer: NodeJS.Timeout | null = null;
    const timeout = setTimeout(() => {
      this.#log(
        1,
        `Hook on-${hook.event} still running after ${this.#timeoutMs / 1000} s: SIGTERM to its process group (SIGKILL in ${KILL_AFTER_TERM_MS / 1000} s)`,
      );
      signalGroup('SIGTERM');
      killTimer = setTimeout(() => signalGroup('SIGKILL'), KILL_AFTER_TERM_MS);
    }, this.#timeoutMs);
    let done = false;
    const finish = (outcome: string, failed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timeout);
      if (killTimer) clearTimeout(killTimer);
      this.#log(
        failed ? 1 : 3,
        `Hook on-${hook.event} (${hook.env.MULTI_REASON ?? ''}) ${outcome} after ${Math.round(performance.now() - started)} ms`,
      );
      this.#running = false;
      this.#next();
    };
    child.once('error', (err) => finish(`could not run: ${err.message}`, true));
    child.once('exit', (code, signal) =>
      finish(signal ? `was killed by ${signal}` : code === 0 ? 'succeeded' : `failed with exit code ${code}`, code !== 0),
    );
  }
}
