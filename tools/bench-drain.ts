/**
 * `npm run bench:drain`: what the drain of master work costs a handoff (SPEC 9.6). Three
 * pixl-server processes on loopback (broadcast 127.255.255.255), each running a scheduler
 * through exclusive() (tools/work.ts) or none; the master is asked to stepDown() at a random
 * moment. Reported, per repetition:
 *
 *  - handoff: from the stepdown command to its stepDown() resolving, and to every server
 *    agreeing on the next master;
 *  - with work: how much of that was the job still running (its end minus the command), and
 *    the gap from the old master's last job end to the new master's first job start (what the
 *    drain adds beyond the job itself, and the guarantee: never negative).
 *
 *   npm run bench:drain [-- --reps 10 --job-ms 300 --heartbeat 0.25]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { ProcessCluster } from './process-cluster';
import { readWork, workRuns } from './work';
import { toolArgs } from './tool-args';

const USAGE = 'usage: npm run bench:drain -- [--reps N>=1] [--job-ms MS>=1] [--heartbeat S>=0.05]';
const HOSTS = ['alpha', 'bravo', 'charlie'];
const WAIT_MS = 30_000;

function now(): number {
  return performance.timeOrigin + performance.now();
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Sample {
  resolvedMs: number;
  agreedMs: number;
  /** With work: the job's remaining time at the command, and the gap from its end to the next master's first job. */
  jobLeftMs?: number;
  gapMs?: number;
}

async function repetition(withWork: boolean, jobMs: number, tick: number, dir: string, rep: number): Promise<Sample> {
  const file = path.join(dir, `work-${withWork ? 'on' : 'off'}-${rep}.jsonl`);
  // Without work the scheduler still runs, but as a no-op: it never starts a job (jobs every day).
  const c = new ProcessCluster({
    heartbeatFreq: tick,
    checkBeats: 3,
    work: withWork ? { file, everyMs: 40, jobMs } : { file, everyMs: 86_400_000, jobMs: 1 },
  });
  try {
    await Promise.all(HOSTS.map((host) => c.start(host, {}, true)));
    await c.release(HOSTS);
    const { master } = await c.waitAgreed(WAIT_MS);
    // Past the joiners' listening tock, as a stable cluster is; then a random phase of the jobs.
    await delay(3 * tick * 1000 + tick * 1000 + Math.random() * jobMs);
    const heir = HOSTS.filter((h) => h !== master).sort()[0] as string;
    const sentAt = now();
    c.command(master, { cmd: 'stepdown' });
    await c.waitFor(
      () => c.reports.some((r) => r.host === master && r.type === 'steppeddown' && r.t >= sentAt),
      WAIT_MS,
      `${master} to step down`,
    );
    const stepped = c.reports.find((r) => r.host === master && r.type === 'steppeddown' && r.t >= sentAt)!;
    if (stepped.detail !== undefined) throw new Error(`stepDown failed: ${stepped.detail}`);
    const agreed = await c.waitAgreed(WAIT_MS, heir);
    const sample: Sample = { resolvedMs: stepped.t - sentAt, agreedMs: agreed.at - sentAt };
    if (withWork) {
      // The file is no report of the cluster's: poll it.
      const deadline = Date.now() + WAIT_MS;
      while (!readWork(file).some((l) => l.host === heir && l.event === 'start')) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${heir} to start a job`);
        await delay(20);
      }
      const runs = workRuns(readWork(file));
      const old = runs.find((r) => r.host === master);
      const next = runs.find((r) => r.host === heir);
      if (!old || !next) throw new Error(`no runs for ${master} and ${heir}: ${JSON.stringify(runs)}`);
      sample.jobLeftMs = Math.max(0, old.lastEnd - sentAt);
      sample.gapMs = next.firstStart - old.lastEnd;
    }
    return sample;
  } finally {
    await c.stopAll();
  }
}

function stats(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return `median ${at(0.5).toFixed(1)}, min ${(sorted[0] as number).toFixed(1)}, max ${(sorted[sorted.length - 1] as number).toFixed(1)}`;
}

async function main(): Promise<number> {
  const { values } = toolArgs(USAGE, () =>
    parseArgs({ options: { reps: { type: 'string' }, 'job-ms': { type: 'string' }, heartbeat: { type: 'string' } } }),
  );
  const reps = Number(values.reps ?? 8);
  const jobMs = Number(values['job-ms'] ?? 300);
  const tick = Number(values.heartbeat ?? 0.25);
  if (!Number.isInteger(reps) || reps < 1 || !(jobMs >= 1) || !(tick >= 0.05)) {
    console.error(USAGE);
    return 2;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'psm-bench-drain-'));
  try {
    console.log(
      `pixl-server-multi bench:drain: 3 processes on loopback, heartbeat_freq ${tick} s, check_beats 3, stepDown() of the master at a random moment; ${reps} repetitions each; load average ${os.loadavg()[0]?.toFixed(2)}`,
    );
    const off: Sample[] = [];
    const on: Sample[] = [];
    for (let rep = 0; rep < reps; rep++) {
      off.push(await repetition(false, jobMs, tick, dir, rep));
      on.push(await repetition(true, jobMs, tick, dir, rep));
    }
    console.log(
      `without work:          stepDown() resolved ms: ${stats(off.map((s) => s.resolvedMs))}; all agreed ms: ${stats(off.map((s) => s.agreedMs))}`,
    );
    console.log(
      `with ${jobMs} ms jobs:     stepDown() resolved ms: ${stats(on.map((s) => s.resolvedMs))}; all agreed ms: ${stats(on.map((s) => s.agreedMs))}`,
    );
    console.log(`  of which the job still running ms: ${stats(on.map((s) => s.jobLeftMs as number))}`);
    console.log(
      `  old master's last job end -> new master's first job start ms: ${stats(on.map((s) => s.gapMs as number))} (never negative: ${on.every((s) => (s.gapMs as number) > 0)})`,
    );
    console.log(`  handoff beyond the job (agreed - job left) ms: ${stats(on.map((s) => s.agreedMs - (s.jobLeftMs as number)))}`);
    console.log(`load average at the end: ${os.loadavg()[0]?.toFixed(2)}`);
    return on.every((s) => (s.gapMs as number) > 0) ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
