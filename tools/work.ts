/**
 * Master work in a test member (tools/child.ts): a scheduler that calls `exclusive()` every
 * `everyMs` on every server, each call a job of `jobMs` that appends `start` and `end` lines
 * (and `abort`, when its signal is aborted: the job goes on, as careless work does) with
 * precise timestamps to a file the test reads. So a test tells from the file alone whether
 * the next master's first job started after the last one of the master before it ended.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type MultiServer = require('../src/index');

export interface WorkConfig {
  /** The shared file of JSON lines. */
  file: string;
  everyMs: number;
  jobMs: number;
  /** exclusive()'s drain option. @default 'wait' */
  drain?: 'wait' | 'abort';
  /** With a health check whose result the test sets (command `healthy`). */
  health?: { interval: number; rise: number; fall: number };
}

export interface WorkLine {
  /** Epoch ms with sub-ms resolution, comparable across processes on one machine. */
  t: number;
  host: string;
  event: 'start' | 'end' | 'abort';
  term: number;
  /** The job's number on its server. */
  id: number;
  /** For `abort`: the signal's kind (role-lost, handover, drain-timeout). */
  kind?: string;
}

function now(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * Start the scheduler (and the health check); returns how to set the check's result.
 * `changed` is called when the check's state changes (looked at every 20 ms).
 */
export function startWork(
  multi: MultiServer,
  host: string,
  config: WorkConfig,
  changed: () => void = () => undefined,
): { setHealthy(healthy: boolean): void } {
  let jobs = 0;
  const write = (line: Omit<WorkLine, 't' | 'host'>): void =>
    appendFileSync(config.file, JSON.stringify({ t: now(), host, ...line }) + '\n');
  const job = (signal: AbortSignal, term: number): Promise<void> => {
    const id = ++jobs;
    write({ event: 'start', term, id });
    signal.addEventListener('abort', () =>
      write({ event: 'abort', term, id, kind: (signal.reason as { kind?: string } | undefined)?.kind ?? '?' }),
    );
    return new Promise((resolve) =>
      setTimeout(() => {
        write({ event: 'end', term, id });
        resolve();
      }, config.jobMs),
    );
  };
  const timer = setInterval(() => {
    void multi.exclusive(job, { drain: config.drain ?? 'wait' });
  }, config.everyMs);
  timer.unref();
  let healthy = true;
  if (config.health) {
    multi.setHealthCheck(() => healthy, config.health);
    let seen = multi.health?.state;
    setInterval(() => {
      if (multi.health?.state === seen) return;
      seen = multi.health?.state;
      changed();
    }, 20).unref();
  }
  return {
    setHealthy: (value) => {
      healthy = value;
    },
  };
}

/** Every line written so far. */
export function readWork(file: string): WorkLine[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as WorkLine);
}

/** One run of the master role in the work: a host's jobs under one term. */
export interface WorkRun {
  host: string;
  term: number;
  firstStart: number;
  lastEnd: number;
  /**
   * When the last of its jobs settled: ended, or had its signal aborted, whichever came first
   * (Infinity while one runs). A job aborted `role-lost` may run on (this work ignores its
   * signal), but its writes are fenced by the term from then on: a later run may start after
   * the abort (docs/SPEC.md §9.6).
   */
  lastSettled: number;
  aborts: number;
}

/**
 * Runs of the master role as the work shows them, in time order: each host's jobs from its
 * first start to its last end, per term. Two consecutive runs overlap when the second's first
 * start comes before the first's last settled job.
 */
export function workRuns(lines: WorkLine[]): WorkRun[] {
  const runs = new Map<string, WorkRun>();
  const settled = new Map<string, number>();
  for (const line of lines) {
    const key = `${line.host}/${line.term}`;
    let run = runs.get(key);
    if (!run)
      runs.set(
        key,
        (run = { host: line.host, term: line.term, firstStart: Infinity, lastEnd: -Infinity, lastSettled: -Infinity, aborts: 0 }),
      );
    if (line.event === 'start') run.firstStart = Math.min(run.firstStart, line.t);
    if (line.event === 'end') run.lastEnd = Math.max(run.lastEnd, line.t);
    if (line.event === 'abort') run.aborts++;
    // A job still running has not settled (Infinity): no later run may have started.
    const job = `${key}/${line.id}`;
    settled.set(job, Math.min(settled.get(job) ?? Infinity, line.event === 'start' ? Infinity : line.t));
  }
  for (const [job, t] of settled) {
    const run = runs.get(job.slice(0, job.lastIndexOf('/')))!;
    run.lastSettled = Math.max(run.lastSettled, t);
  }
  return [...runs.values()].sort((a, b) => a.firstStart - b.firstStart);
}
