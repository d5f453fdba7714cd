/**
 * One run of the wrapped command, seen from the wrapper: the guardian process that runs it
 * (see guardian.ts), the signs of life the wrapper sends it, the stop, and a last resort for
 * a guardian that does not finish a stop in time (frozen, or killed on its own): the wrapper
 * then kills the group (or the namespace) itself.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FromGuardian, GoneReason, StartMessage, ToGuardian } from './protocol';

/** How a run ended. `guardian-died`: the guardian ended without reporting (killed on its own). */
export interface RunEnd {
  reason: GoneReason | 'guardian-died';
  /** The command's exit code or signal, when it exited (null when it never started). */
  code: number | null;
  signal: string | null;
  error?: string;
  /** For `stalled`: how long the wrapper was silent when the guardian acted. */
  silentMs?: number;
  startedAt: number;
  endedAt: number;
}

const SIGNAL_NUMBERS: Record<string, number> = os.constants.signals as unknown as Record<string, number>;

/** A shell-style exit status for how the command ended. */
export function exitStatus(end: Pick<RunEnd, 'code' | 'signal'>): number {
  if (end.code !== null) return end.code;
  if (end.signal) return 128 + (SIGNAL_NUMBERS[end.signal] ?? 0);
  return 1;
}

/**
 * The wrapper's environment for the command and the hooks, minus an IPC channel the wrapper
 * itself may have been given (a command that is a node program would try to use it).
 */
export function commandEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  delete env.NODE_CHANNEL_FD;
  delete env.NODE_CHANNEL_SERIALIZATION_MODE;
  return env;
}

export interface Isolation {
  /** `unshare` arguments that put the guardian at the head of a new pid namespace, or null. */
  unshare: string[] | null;
  /** `setpriv`, for a parent-death signal on the command when there is no namespace, or null. */
  setpriv: string | null;
}

const UNSHARE_ARGS = ['--pid', '--fork', '--kill-child', '--mount', '--propagation', 'slave', '--mount-proc'];

function findProgram(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    if (!dir) continue;
    const file = path.join(dir, name);
    if (existsSync(file)) return file;
  }
  return null;
}

/**
 * What this host allows, probed once by running the very commands a run would use.
 * `pidNamespace`: 'on' requires one, 'auto' uses one where it works, 'off' never.
 */
export function probeIsolation(pidNamespace: 'auto' | 'on' | 'off'): Isolation & { why: string } {
  const truePath = findProgram('true') ?? '/bin/true';
  let unshare: string[] | null = null;
  let why = 'pid namespace off (--pid-namespace off)';
  if (pidNamespace !== 'off') {
    const program = findProgram('unshare');
    if (!program) {
      why = 'no unshare program (Debian: util-linux)';
    } else {
      const probe = spawnSync(program, [...UNSHARE_ARGS, truePath], {
        stdio: ['ignore', 'ignore', 'pipe'],
        encoding: 'utf8',
        timeout: 10_000,
      });
      if (probe.status === 0) {
        unshare = [program, ...UNSHARE_ARGS];
        why = 'a pid namespace per run';
      } else {
        why = `no pid namespace: ${(probe.stderr || probe.error?.message || `unshare exited with ${probe.status}`).trim()} (it needs root, CAP_SYS_ADMIN)`;
      }
    }
  }
  let setpriv: string | null = null;
  if (!unshare) {
    const program = findProgram('setpriv');
    if (program && spawnSync(program, ['--pdeathsig', 'KILL', '--', truePath], { stdio: 'ignore', timeout: 10_000 }).status === 0)
      setpriv = program;
  }
  return { unshare, setpriv, why };
}

export interface ChildRunOptions {
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  graceMs: number;
  silenceMs: number;
  deadMs: number;
  pingMs: number;
  isolation: Isolation;
  log: (level: number, message: string) => void;
  /** The command exited (the run may still be ending: what is left of its group). */
  onExit?: (code: number | null, signal: string | null) => void;
}

const GUARDIAN = path.join(__dirname, 'guardian.js');
/** After a stop's grace, how long the guardian gets to confirm before the wrapper kills itself. */
const STOP_SLACK_MS = 2000;

export class ChildRun {
  readonly startedAt = performance.now();
  /** The command's pid as the guardian sees it (the namespace's own pid in a namespace). */
  pid = 0;
  /** The command's pid on this host, when it could be found. */
  hostPid = 0;
  readonly over: Promise<RunEnd>;
  stopping = false;
  #options: ChildRunOptions;
  #process: ChildProcess;
  #guardianHostPid = 0;
  #exit: { code: number | null; signal: string | null } | null = null;
  #gone: Extract<FromGuardian, { t: 'gone' }> | null = null;
  #ping: NodeJS.Timeout;
  #lastPing = performance.now();
  #lastStop = Infinity;
  #fallback: NodeJS.Timeout | null = null;
  #resolve!: (end: RunEnd) => void;

  constructor(options: ChildRunOptions) {
    this.#options = options;
    this.over = new Promise((resolve) => (this.#resolve = resolve));
    const { unshare } = options.isolation;
    const [file, args] = unshare
      ? [unshare[0] as string, [...unshare.slice(1), process.execPath, GUARDIAN]]
      : [process.execPath, [GUARDIAN]];
    // Its own session: a terminal's Ctrl-C or Ctrl-Z reaches the wrapper, which decides.
    this.#process = spawn(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true, env: guardianEnv() });
    this.#process.on('message', (message: FromGuardian) => this.#onMessage(message));
    this.#process.on('error', (err) => options.log(1, `The guardian could not be started: ${err.message}`));
    this.#process.on('exit', () => void this.#onGuardianExit());
    const start: StartMessage = {
      t: 'start',
      file: options.file,
      args: options.args,
      env: options.env,
      cwd: options.cwd,
      graceMs: options.graceMs,
      silenceMs: options.silenceMs,
      deadMs: options.deadMs,
      setpriv: unshare ? null : options.isolation.setpriv,
    };
    this.#send(start);
    this.#ping = setInterval(() => this.#beat(), options.pingMs);
  }

  /** SIGTERM the run now, SIGKILL after `graceMs`; resolves `over` once nothing of it is left. */
  stop(graceMs: number): void {
    this.stopping = true;
    const now = performance.now();
    if (now + graceMs >= this.#lastStop) return;
    this.#lastStop = now + graceMs;
    this.#send({ t: 'stop', graceMs });
    if (this.#fallback) clearTimeout(this.#fallback);
    this.#fallback = setTimeout(() => this.#killAll('the guardian did not finish the stop in time'), graceMs + STOP_SLACK_MS);
  }

  get exited(): { code: number | null; signal: string | null } | null {
    return this.#exit;
  }

  #beat(): void {
    const now = performance.now();
    const late = now - this.#lastPing - this.#options.pingMs;
    if (late > this.#options.silenceMs / 2)
      this.#options.log(
        2,
        `This process was unresponsive for ${Math.round(late + this.#options.pingMs)} ms (the guardian acts after ${Math.round(this.#options.silenceMs)} ms)`,
      );
    this.#lastPing = now;
    this.#send({ t: 'ping' });
  }

  #send(message: ToGuardian): void {
    if (!this.#process.connected) return;
    try {
      this.#process.send(message);
    } catch {
      // the guardian is gone; its exit event says so
    }
  }

  #onMessage(message: FromGuardian): void {
    if (!message || typeof message !== 'object') return;
    if (message.t === 'started') {
      this.pid = message.pid;
      this.hostPid = message.namespace ? this.#findHostPids() : message.pid;
      this.#options.log(
        3,
        `Started the command: pid ${this.hostPid || '?'}${message.namespace ? ` (${message.pid} in its pid namespace)` : ''}`,
      );
    } else if (message.t === 'exited') {
      this.#exit = { code: message.code, signal: message.signal };
      this.#options.onExit?.(message.code, message.signal);
    } else if (message.t === 'gone') {
      this.#gone = message;
    }
  }

  /** The guardian's and the command's pids on this host (/proc/<pid>/task/<pid>/children). */
  #findHostPids(): number {
    const childrenOf = (pid: number): number[] => {
      try {
        return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      } catch {
        return [];
      }
    };
    const unshare = this.#process.pid ?? 0;
    this.#guardianHostPid = childrenOf(unshare)[0] ?? 0;
    return this.#guardianHostPid ? (childrenOf(this.#guardianHostPid)[0] ?? 0) : 0;
  }

  /** Kill everything of the run from here: the guardian may be frozen, or dead. */
  #killAll(why: string): void {
    this.#options.log(
      1,
      `Killing the command's ${this.#options.isolation.unshare ? 'pid namespace' : 'process group'} from the wrapper: ${why}`,
    );
    const kill = (pid: number): void => {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    if (this.#options.isolation.unshare) {
      // Killing the namespace's init kills the namespace; unshare exits once it is empty.
      kill(this.#guardianHostPid || this.#findGuardian());
      if (!this.#guardianHostPid) kill(this.#process.pid ?? 0);
    } else {
      kill(this.#process.pid ?? 0);
      if (this.pid) kill(-this.pid);
    }
  }

  #findGuardian(): number {
    this.#findHostPids();
    return this.#guardianHostPid;
  }

  async #onGuardianExit(): Promise<void> {
    clearInterval(this.#ping);
    if (this.#fallback) clearTimeout(this.#fallback);
    let reason: RunEnd['reason'] = this.#gone?.reason ?? 'guardian-died';
    if (!this.#gone) {
      this.#options.log(1, 'The guardian ended without finishing the run');
      this.#killAll('the guardian is gone');
      // Without a namespace the group outlives the guardian: wait until it is empty.
      if (!this.#options.isolation.unshare && this.pid) await waitGone(-this.pid);
    }
    if (reason === 'guardian-died' && this.#exit === null && !this.pid) reason = 'spawn-failed';
    this.#resolve({
      reason,
      code: this.#exit?.code ?? null,
      signal: this.#exit?.signal ?? null,
      ...(this.#gone?.error === undefined ? {} : { error: this.#gone.error }),
      ...(this.#gone?.silentMs === undefined ? {} : { silentMs: this.#gone.silentMs }),
      startedAt: this.startedAt,
      endedAt: performance.now(),
    });
  }
}

/** The wrapper's environment minus what would tie the guardian to the wrapper's own parent. */
function guardianEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_CHANNEL_FD;
  delete env.NODE_CHANNEL_SERIALIZATION_MODE;
  delete env.NODE_OPTIONS;
  return env;
}

async function waitGone(target: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    try {
      process.kill(target, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
