/**
 * The guardian of one run of the wrapped command: a small process between the wrapper and
 * the command, so that the command never outlives the wrapper's mastership, whatever
 * happens to the wrapper. It starts the command in a new session (its own process group)
 * and ends the run on the first of:
 *  - a stop from the wrapper (the role is lost or handed over): SIGTERM, SIGKILL after the grace;
 *  - the end of the IPC channel (the wrapper died, even by SIGKILL: the kernel closes it);
 *  - silence from the wrapper (frozen by SIGSTOP, a paused VM, a blocked event loop) longer
 *    than `silenceMs`: SIGTERM, then SIGKILL by `deadMs` after the last sign of life, which
 *    the wrapper sets below the time other servers wait before electing another master;
 *  - the command's own exit: what it left behind in its group gets the same treatment.
 * It reports `gone` only once nothing of the run is left, then exits.
 *
 * In a pid namespace (the wrapper starts it through `unshare --pid --fork --kill-child`) the
 * guardian is the namespace's init: it signals every process of the namespace, including
 * those that left the process group (setsid, a daemon's double fork), and when it dies for
 * any reason the kernel kills whatever is left. Without one, it signals the process group.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { FromGuardian, GoneReason, StartMessage, ToGuardian } from './protocol';

/** How often the guardian looks for what is left of a group being stopped. */
const POLL_MS = 20;

/** Only the init of a pid namespace we were started in may signal "every process" (kill(-1)). */
const inNamespace = process.pid === 1;

let start: StartMessage | null = null;
let child: ChildProcess | null = null;
let pgid = 0;
let lastSign = performance.now();
let ending: { reason: GoneReason; killAt: number; error?: string; silentMs?: number } | null = null;
let killTimer: NodeJS.Timeout | null = null;
let killed = false;

function report(message: FromGuardian, then?: () => void): void {
  if (!process.connected || !process.send) {
    then?.();
    return;
  }
  try {
    process.send(message, undefined, {}, () => then?.());
  } catch {
    then?.();
  }
}

function signalRun(signal: NodeJS.Signals): void {
  try {
    if (inNamespace) process.kill(-1, signal);
    else if (pgid > 0) process.kill(-pgid, signal);
  } catch {
    // ESRCH: nothing left to signal
  }
}

/** Whether anything of the run can still run (zombies cannot). */
function runLeft(): boolean {
  if (inNamespace) {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || entry === '1') continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
        if (state !== 'Z' && state !== 'X') return true;
      } catch {
        // exited meanwhile
      }
    }
    return false;
  }
  if (pgid <= 0) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function scheduleKill(): void {
  if (!ending) return;
  if (killTimer) clearTimeout(killTimer);
  killTimer = setTimeout(
    () => {
      killed = true;
      signalRun('SIGKILL');
    },
    Math.max(0, ending.killAt - performance.now()),
  );
}

/** End the run: SIGTERM now, SIGKILL at `killAt` (an earlier request moves it earlier). */
function end(reason: GoneReason, killAt: number, extra: { error?: string; silentMs?: number } = {}): void {
  if (ending) {
    if (killAt < ending.killAt) {
      ending.killAt = killAt;
      scheduleKill();
    }
    return;
  }
  ending = { reason, killAt, ...extra };
  signalRun('SIGTERM');
  scheduleKill();
  const poll = (): void => {
    // The command itself must have been reaped too, so its exit status is reported first.
    if ((child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) || runLeft()) {
      setTimeout(poll, POLL_MS);
      return;
    }
    if (!killed && killTimer) clearTimeout(killTimer);
    const { reason: why, error, silentMs } = ending as NonNullable<typeof ending>;
    report({ t: 'gone', reason: why, ...(error === undefined ? {} : { error }), ...(silentMs === undefined ? {} : { silentMs }) }, () =>
      process.exit(0),
    );
  };
  poll();
}

function launch(message: StartMessage): void {
  start = message;
  const [file, args] = message.setpriv
    ? [message.setpriv, ['--pdeathsig', 'KILL', '--', message.file, ...message.args]]
    : [message.file, message.args];
  try {
    child = spawn(file, args, { cwd: message.cwd, env: message.env, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  } catch (err) {
    end('spawn-failed', performance.now(), { error: (err as Error).message });
    return;
  }
  child.once('error', (err) => {
    // A spawn that failed has no pid; one that ran and then failed to be signalled is still ours.
    if (child?.pid === undefined) end('spawn-failed', performance.now(), { error: err.message });
  });
  child.once('exit', (code, signal) => {
    report({ t: 'exited', code, signal });
    end('exited', performance.now() + message.graceMs);
  });
  if (child.pid !== undefined) {
    pgid = child.pid;
    report({ t: 'started', pid: child.pid, namespace: inNamespace });
  }
  const watch = setInterval(
    () => {
      const silent = performance.now() - lastSign;
      if (silent > message.silenceMs) end('stalled', lastSign + message.deadMs, { silentMs: Math.round(silent) });
    },
    Math.max(5, Math.min(250, message.silenceMs / 4)),
  );
  watch.unref();
}

process.on('message', (raw: ToGuardian) => {
  lastSign = performance.now();
  if (!raw || typeof raw !== 'object') return;
  if (raw.t === 'start' && !start) launch(raw);
  else if (raw.t === 'stop') end('stopped', performance.now() + Math.max(0, raw.graceMs));
});

process.on('disconnect', () => {
  // The wrapper is gone: keep the grace, but never past the deadline its last sign of life set.
  const grace = start?.graceMs ?? 0;
  const deadline = start ? lastSign + start.deadMs : performance.now();
  end('orphaned', Math.min(performance.now() + grace, deadline));
});

for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(signal, () => end('signalled', performance.now() + (start?.graceMs ?? 0)));
}

if (!process.send) {
  process.stderr.write('pixl-server-multi guardian: started without an IPC channel; it runs only under `pixl-server-multi run`\n');
  process.exit(2);
}
