/**
 * `pixl-server-multi run`: a pixl-server with the MultiServer component, in this process,
 * that runs a command only while it is the master. Built on the component's public API
 * (events, `master`, `term`, `stats`, `servers`, `stepDown()`), like any app.
 *
 * Order is the point:
 *  - the command starts on `master`, with MULTI_TERM, MULTI_MASTER and MULTI_HOSTNAME;
 *  - on `slave` (a conflict lost, a stall, quorum or the etcd lease lost) it is stopped at
 *    once, with a short grace (another master may already run);
 *  - leaving (SIGTERM, SIGINT, SIGHUP) and a step-down stop it first, with the full grace,
 *    and only then is the role handed over: two runs never overlap;
 *  - whatever becomes of this process, the guardian (guardian.ts) ends the run before
 *    another server may claim.
 *
 * The command runs as the component's master work (`exclusive()`, with `drain: 'abort'`): every
 * handover made on purpose, whoever starts it (stepDown, a promote request from another
 * server, a preempting one, a failing `--health-cmd`, `eligible = false`), aborts it first;
 * the wrapper then stops it with the full grace, and the component hands the role over only
 * once it is gone (its `drain_timeout` is at least the grace and 5 s). `handOver(reason)` is
 * the wrapper's own way to give the role up (`--on-exit step-down`).
 *
 * This file is the order above; the rest is in modules of their own: the pixl-server it runs
 * in (server.ts), its signals (signals.ts), one run of the command (child.ts) and its guardian
 * (guardian.ts), the hooks (hooks.ts), the health command (health.ts), the conflict watch that
 * runs on-master again (conflicts.ts), the timings derived from the section (timing.ts).
 */
import type PixlServer = require('pixl-server');
import type MultiServer = require('../component');
import { ChildRun, commandEnv, exitStatus, probeIsolation, type Isolation, type RunEnd } from './child';
import { ConflictWatch } from './conflicts';
import { HookRunner, type HookEvent } from './hooks';
import { runHealthCommand } from './health';
import type { RunOptions } from './options';
import { loadModules, RunError, startServer } from './server';
import { escalateSignals } from './signals';
import { backoffMs, runTiming, type RunTiming } from './timing';

export { exitStatus, RunError };

export class Runner {
  readonly options: RunOptions;
  readonly timing: RunTiming;
  #server!: PixlServer;
  #multi!: MultiServer;
  #isolation!: Isolation & { why: string };
  #hooks!: HookRunner;
  #run: ChildRun | null = null;
  #leaving = false;
  #handingOver = false;
  #failures = 0;
  #restartTimer: NodeJS.Timeout | null = null;
  #exitCode = 0;
  #conflicts: ConflictWatch | null = null;
  #done!: (code: number) => void;
  readonly finished: Promise<number>;

  constructor(options: RunOptions) {
    this.options = options;
    this.timing = runTiming(options.settings);
    this.finished = new Promise((resolve) => (this.#done = resolve));
  }

  /** Start the server; `finished` resolves with the exit code once it has left. */
  start(): void {
    const modules = loadModules();
    const options = this.options;
    this.#isolation = probeIsolation(options.pidNamespace);
    if (options.pidNamespace === 'on' && !this.#isolation.unshare) throw new RunError(`--pid-namespace on: ${this.#isolation.why}`);
    this.#server = startServer(modules, options, { attach: (server) => this.#attach(server), leave: () => this.#leave() });
  }

  #log(level: number, message: string): void {
    this.#server.logger.set('component', 'MultiRun');
    this.#server.logger.debug(level, message);
  }

  #error(code: string, message: string): void {
    this.#server.logger.set('component', 'MultiRun');
    this.#server.logger.error(code, message);
  }

  #attach(server: PixlServer): void {
    // Before startServer returns, when pixl-server starts its components at once.
    this.#server = server;
    this.#multi = server.MultiServer as unknown as MultiServer;
    this.#conflicts = new ConflictWatch(this.#multi, () => {
      this.#log(2, `A master conflict ended with this server master (term ${this.#multi.term}): running on-master again`);
      this.#hook('master', 'conflict-won');
    });
    const options = this.options;
    for (const warning of (options as RunOptions & { warnings?: string[] }).warnings ?? []) this.#error('config', warning);
    this.#hooks = new HookRunner(
      options.hooks,
      options.hookTimeoutMs,
      (level, message) => (level <= 1 ? this.#error('hook', message) : this.#log(level, message)),
      commandEnv(),
    );
    this.#log(
      2,
      `Running \`${options.command.join(' ')}\` while master; isolation: ${this.#isolation.unshare ? 'a pid namespace per run' : `its process group only (${this.#isolation.why})${this.#isolation.setpriv ? ', SIGKILL to the command if its guardian dies' : ''}`}; ` +
        `failover budget ${Math.round(this.timing.budgetMs)} ms: if this process goes silent, the command gets SIGTERM after ${Math.round(this.timing.silenceMs)} ms and SIGKILL by ${Math.round(this.timing.deadMs)} ms`,
    );
    const health = options.health;
    if (health) {
      const env = commandEnv();
      this.#multi.setHealthCheck((signal) => runHealthCommand(health.command, { ...env, ...this.#env() }, signal), health);
      this.#log(
        2,
        `Health check \`${health.command}\` every ${health.interval} s (ineligible after ${health.fall} failures in a row, eligible again after ${health.rise} passes)`,
      );
    }
    this.#multi.on('master', (term) => this.#onMaster(term));
    this.#multi.on('slave', () => this.#onSlave());
    escalateSignals(server, {
      leave: (signal) => {
        this.#log(2, `Caught ${signal}: stopping the command, then leaving the cluster`);
        if (!this.#server.shut) this.#server.shutdown();
      },
      hurry: (signal) => {
        this.#log(1, `Caught ${signal} again: killing the command now`);
        this.#run?.stop(0);
      },
      exit: (signal) => {
        this.#error('signal', `Caught ${signal} a third time: exiting now (the guardian still ends the command)`);
        process.exit(1);
      },
    });
    server.once('shutdown', () => this.#done(this.#exitCode));
    // Whatever the component decided before we listened (a master heard at once).
    if (this.#multi.master) this.#onMaster(this.#multi.term);
    else if (this.#multi.slave) this.#onSlave();
  }

  // ---- role events -------------------------------------------------------------------

  #env(event?: HookEvent, reason?: string): Record<string, string> {
    const env: Record<string, string> = {
      MULTI_TERM: String(this.#multi.term),
      MULTI_MASTER: this.#multi.masterHostname,
      MULTI_HOSTNAME: this.options.hostname,
    };
    if (event) env.MULTI_EVENT = event;
    if (reason) env.MULTI_REASON = reason;
    return env;
  }

  #hook(event: HookEvent, reason: string, extra: Record<string, string> = {}): void {
    this.#hooks.enqueue({ event, env: { ...this.#env(event, reason), ...extra } });
  }

  #onMaster(term: number): void {
    this.#log(3, `Master (term ${term}): starting the command`);
    if (this.options.hooks.master) this.#conflicts?.start(Math.max(50, Math.min(1000, (this.options.settings.heartbeat_freq * 1000) / 2)));
    this.#hook('master', 'elected');
    this.#ensureRunning();
  }

  #onSlave(): void {
    this.#conflicts?.stop();
    this.#cancelRestart();
    // Leaving tells the hook itself, once the command is stopped.
    if (!this.#leaving) this.#hook('slave', this.#handingOver ? 'handed-over' : this.#multi.masterHostname ? 'follows' : 'no-master');
    const run = this.#run;
    if (run && !run.stopping) {
      const grace = this.options.lossGraceMs ?? Math.min(this.options.graceMs, this.timing.lossGraceMs);
      this.#log(
        2,
        `Lost the master role while the command runs: SIGTERM to it, SIGKILL in ${Math.round(grace)} ms${this.#multi.masterHostname ? ` (the master is now ${this.#multi.masterHostname})` : ''}`,
      );
      run.stop(grace);
    }
  }

  // ---- the command -------------------------------------------------------------------

  #ensureRunning(): void {
    if (this.#leaving || this.#handingOver || this.#run || this.#restartTimer || !this.#multi.master) return;
    // As master work: admitted only while master and not handing over; a handover aborts the
    // signal (stop with the full grace: the next master waits), the role lost aborts it too.
    void this.#multi
      .exclusive(
        (signal) => {
          const run = this.#startRun();
          signal.addEventListener('abort', () => this.#onAbort(run, signal.reason as { kind?: string } | undefined), { once: true });
          return run.over;
        },
        { drain: 'abort' },
      )
      .then((result) => {
        if (result.ran) return;
        this.#log(3, `Not starting the command: ${result.detail}`);
        // A handover in progress may not happen (nobody took over, the check recovered): look again.
        if (result.reason === 'handing-over')
          this.#scheduleRestart(Math.max(50, (this.options.settings.heartbeat_freq * 1000) / 2), 'if the handover does not happen');
      });
  }

  #onAbort(run: ChildRun, reason: { kind?: string } | undefined): void {
    if (run.stopping && reason?.kind !== 'drain-timeout') return;
    switch (reason?.kind) {
      case 'handover':
        this.#cancelRestart();
        this.#log(
          2,
          `Handing the master role over: stopping the command first (SIGTERM, SIGKILL in ${Math.round(this.options.graceMs)} ms)`,
        );
        run.stop(this.options.graceMs);
        break;
      case 'drain-timeout':
        // Only if the grace outlasts drain_timeout (it cannot here: raised to cover it).
        run.stop(0);
        break;
      default: {
        // The role lost against our will: the `slave` listener says so too, and stops it the same way.
        const grace = this.options.lossGraceMs ?? Math.min(this.options.graceMs, this.timing.lossGraceMs);
        this.#log(2, `Lost the master role while the command runs: SIGTERM to it, SIGKILL in ${Math.round(grace)} ms`);
        run.stop(grace);
      }
    }
  }

  #startRun(): ChildRun {
    const [file, ...args] = this.options.command as [string, ...string[]];
    const env = commandEnv();
    Object.assign(env, this.#env());
    env.MULTI_MASTER = this.options.hostname;
    const run = new ChildRun({
      file,
      args,
      env,
      cwd: process.cwd(),
      graceMs: this.options.graceMs,
      silenceMs: this.timing.silenceMs,
      deadMs: this.timing.deadMs,
      pingMs: this.timing.pingMs,
      isolation: this.#isolation,
      log: (level, message) => (level <= 1 ? this.#error('command', message) : this.#log(level, message)),
      onExit: (code, signal) => {
        if (!run.stopping) this.#log(2, `The command exited by itself: ${signal ? `signal ${signal}` : `exit code ${code}`}`);
      },
    });
    this.#run = run;
    void run.over.then((end) => this.#onRunOver(run, end));
    return run;
  }

  #onRunOver(run: ChildRun, end: RunEnd): void {
    if (this.#run === run) this.#run = null;
    const lasted = end.endedAt - end.startedAt;
    const status = end.signal ? `signal ${end.signal}` : end.code === null ? 'no exit status' : `exit code ${end.code}`;
    if (end.reason === 'stopped' || end.reason === 'signalled' || (run.stopping && end.reason === 'exited')) {
      this.#log(
        3,
        `The command is stopped (${status}), its ${this.#isolation.unshare ? 'pid namespace' : 'process group'} empty, after ${Math.round(lasted)} ms`,
      );
      this.#ensureRunning();
      return;
    }
    if (this.#leaving) return;
    const faultEnv: Record<string, string> = {};
    if (end.code !== null) faultEnv.MULTI_EXIT_CODE = String(end.code);
    if (end.signal) faultEnv.MULTI_EXIT_SIGNAL = end.signal;
    if (end.reason === 'stalled' || end.reason === 'guardian-died' || end.reason === 'orphaned') {
      // Not the command's doing: run it again once this server has had a tick to find out
      // whether it is still master (a stall past the failover budget makes it step down).
      this.#error(
        'command',
        end.reason === 'stalled'
          ? `The guardian ended the command: this process was silent for ${end.silentMs ?? '?'} ms`
          : `The command's guardian ended unexpectedly (${end.reason})`,
      );
      this.#hook('fault', end.reason, faultEnv);
      this.#scheduleRestart(
        Math.max(this.options.settings.heartbeat_freq * 1000, this.options.restartDelayMs),
        'after the guardian stopped it',
      );
      return;
    }
    // It exited (or could not start) by itself.
    if (end.reason === 'spawn-failed') this.#error('command', `The command could not be started: ${end.error ?? status}`);
    this.#hook('fault', end.reason === 'spawn-failed' ? 'spawn-failed' : 'exited', faultEnv);
    if (lasted >= this.options.restartDelayMaxMs) this.#failures = 0;
    this.#failures++;
    const delay = backoffMs(this.#failures, this.options.restartDelayMs, this.options.restartDelayMaxMs);
    switch (this.options.onExit) {
      case 'restart':
        this.#scheduleRestart(delay, `(exit ${this.#failures} in a row)`);
        break;
      case 'step-down':
        void this.handOver(`the command ended (${status})`).then((ok) => {
          if (!ok) this.#scheduleRestart(delay, 'since the role could not be handed over');
        });
        break;
      case 'exit':
        this.#exitCode = end.reason === 'spawn-failed' ? 127 : exitStatus(end);
        this.#log(2, `--on-exit exit: leaving the cluster, then exiting with ${this.#exitCode}`);
        if (!this.#server.shut) this.#server.shutdown();
        break;
    }
  }

  #scheduleRestart(delayMs: number, why: string): void {
    this.#cancelRestart();
    if (this.#leaving || !this.#multi.master) return;
    this.#log(3, `Restarting the command in ${Math.round(delayMs)} ms ${why}`);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = null;
      this.#ensureRunning();
    }, delayMs);
  }

  #cancelRestart(): void {
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    this.#restartTimer = null;
  }

  /** Stop the command (full grace), wait until nothing of it is left. */
  async #stopRun(): Promise<void> {
    this.#cancelRestart();
    const run = this.#run;
    if (!run) return;
    run.stop(this.options.graceMs);
    await run.over;
  }

  /**
   * Give the role up on purpose: stop the command first (nothing of it left), then hand the
   * role to the next server. Resolves with whether the handover happened.
   */
  async handOver(reason: string): Promise<boolean> {
    if (this.#handingOver || this.#leaving || !this.#multi.master) return false;
    this.#handingOver = true;
    try {
      this.#log(2, `Handing the master role over: ${reason}`);
      this.#cancelRestart();
      // stepDown() drains first: the command is stopped (full grace) before the role goes.
      await this.#multi.stepDown();
      return true;
    } catch (err) {
      this.#log(2, `Could not hand the role over: ${(err as Error).message}`);
      return false;
    } finally {
      this.#handingOver = false;
    }
  }

  /** pixl-server is shutting down (we go first): stop the command, tell the hooks, then go. */
  async #leave(): Promise<void> {
    this.#leaving = true;
    this.#conflicts?.stop();
    const wasMaster = this.#multi?.master === true || this.#run !== null;
    await this.#stopRun();
    if (wasMaster && this.#hooks?.has('slave')) {
      // A hook that holds something for the master (an address, say) lets go of it before
      // the next master is elected.
      this.#hook('slave', 'leaving');
    }
    await this.#hooks?.idle(this.options.hookTimeoutMs + 3000);
    this.#log(2, 'The command is stopped: leaving the cluster');
  }
}

/** Run until the wrapper has left; resolves with the exit code. */
export async function runWrapper(options: RunOptions): Promise<number> {
  const runner = new Runner(options);
  runner.start();
  const code = await runner.finished;
  return code;
}
