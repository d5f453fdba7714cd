/**
 * What the wrapper and its guardian say to each other over the guardian's IPC channel.
 * The wrapper's messages are also its heartbeat: the guardian counts any of them as a sign
 * of life, and acts on silence and on the channel's end (the kernel closes it when the
 * wrapper dies, however it dies).
 */

/** Wrapper → guardian, first: what to run and the deadlines it must keep on its own. */
export interface StartMessage {
  t: 'start';
  file: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** The stop grace: SIGTERM, then SIGKILL this much later. */
  graceMs: number;
  /** Silence from the wrapper after which the group gets SIGTERM (the wrapper is stalled). */
  silenceMs: number;
  /** Silence after which everything must be dead: SIGKILL at the latest then. */
  deadMs: number;
  /** A program that execs the command with a parent-death signal (`setpriv`), or null. */
  setpriv: string | null;
}

export interface StopMessage {
  t: 'stop';
  /** SIGKILL this long after the SIGTERM (0: at once). */
  graceMs: number;
}

export type ToGuardian = StartMessage | StopMessage | { t: 'ping' };

/** Why a run ended, as the guardian saw it. */
export type GoneReason = 'stopped' | 'exited' | 'spawn-failed' | 'stalled' | 'orphaned' | 'signalled';

export type FromGuardian =
  /** The command runs; `pid` as the guardian sees it (in a pid namespace, the namespace's). */
  | { t: 'started'; pid: number; namespace: boolean }
  /** The command exited (by itself or after a signal); the rest of its group may still run. */
  | { t: 'exited'; code: number | null; signal: string | null }
  /** Nothing of the run is left; the guardian exits next. */
  | { t: 'gone'; reason: GoneReason; error?: string; silentMs?: number };
