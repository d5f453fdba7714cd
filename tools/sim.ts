/**
 * `npm run sim`: the deterministic cluster simulator from the command line.
 *
 *   npm run sim -- --seeds 10000            sweep seeds 1..10000 (every fault kind at N = 2, 3, 5, 16, 100)
 *   npm run sim -- --seed 4711 --trace      replay one seed and print its timeline
 *   npm run sim -- --scenario failing.json  replay a saved scenario (e.g. one shrunk by the property tests)
 *   npm run sim -- --big 1000               one 1000-server cluster: elect, stay stable, report speed
 *
 * Options: --from S (first seed of a sweep), --kind K / --nodes N (force a kind or size),
 * --jobs J (worker threads for a sweep), --stable T (ticks the big run is watched),
 * --verbose (with --trace: every packet in the timeline), --check-routine (every server beside a
 * twin that never takes the routine heartbeat's fast path; the first difference fails the run).
 * Nothing here opens a socket: every packet is simulated.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { CHECK_ROUTINE_ENV } from '../sim/checked-core';
import { KINDS, SIZES, runScenario, scenarioFromSeed, seedShape, type Kind, type RunResult, type Scenario } from '../sim/scenario';

const USAGE = `npm run sim -- [options]   (the deterministic cluster simulator; it opens no socket)

  --seeds N [--from S] [--jobs J]  sweep N seeds from S (default 1): every fault kind at N = 2, 3, 5, 16, 100
  --seed S [--trace] [--verbose]   run one seed; --trace prints its timeline, --verbose every packet too
  --kind K, --nodes N              force the fault kind or the cluster size of --seed / --seeds
  --scenario FILE [--trace]        replay a scenario saved as JSON (e.g. one shrunk by the property tests)
  --big N [--stable T]             one N-server cluster: elect, T stable ticks, a master crash, T more; speed
  --coordinator [--seeds N | --seed S --trace]   the etcd (coordinator) mode against a simulated lease store
  --check-routine                  UDP mode: run every server beside a twin without the routine heartbeat's
                                   fast path (src/core/routine.ts); the first Output that differs fails

fault kinds: ${KINDS.join(', ')}`;

interface Summary {
  seed: number;
  kind: string;
  n: number;
  violation: string | null;
  message: string | null;
  convergenceTicks: number | null;
  probe: string;
  probeValue: number | null;
  simulatedTicks: number;
  wallMs: number;
}

function summarize(result: RunResult): Summary {
  const s = result.scenario;
  return {
    seed: s.seed,
    kind: s.kind,
    n: s.hosts.length,
    violation: result.violation?.invariant ?? null,
    message: result.violation?.message ?? null,
    convergenceTicks: result.convergenceTicks,
    probe: s.probe,
    probeValue: result.probe.value,
    simulatedTicks: result.simulatedMs / s.tickMs,
    wallMs: result.wallMs,
  };
}

function isKind(value: string): value is Kind {
  return (KINDS as readonly string[]).includes(value);
}

function scenarioFor(seed: number, kind?: string, nodes?: number): Scenario {
  const options: { kind?: Kind; n?: number } = {};
  if (kind !== undefined) {
    if (!isKind(kind)) throw new Error(`unknown --kind ${kind}; one of ${KINDS.join(', ')}`);
    options.kind = kind;
  }
  if (nodes !== undefined) options.n = nodes;
  return scenarioFromSeed(seed, options);
}

// ---- worker ----

interface Job {
  from: number;
  count: number;
  stride: number;
  offset: number;
  kind?: string;
  nodes?: number;
}

if (!isMainThread) {
  const job = workerData as Job;
  for (let i = job.offset; i < job.count; i += job.stride) {
    const seed = job.from + i;
    parentPort?.postMessage(summarize(runScenario(scenarioFor(seed, job.kind, job.nodes))));
  }
} else if (process.argv.includes('--coordinator')) {
  // The coordinator (etcd) mode's simulator: its own scenarios, invariants and table.
  import('./sim-coordinator').then(
    (coordinator) => coordinator.main(process.argv.slice(2)),
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(2);
    },
  );
} else {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(2);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      seeds: { type: 'string' },
      from: { type: 'string', default: '1' },
      kind: { type: 'string' },
      nodes: { type: 'string' },
      trace: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      scenario: { type: 'string' },
      jobs: { type: 'string' },
      big: { type: 'string' },
      stable: { type: 'string', default: '30' },
      'check-routine': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  const int = (name: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const parsed = Number(value);
    if (!Number.isSafeInteger(parsed) || parsed < 0) throw new Error(`--${name} must be a non-negative integer, not ${value}`);
    return parsed;
  };
  const nodes = int('nodes', values.nodes);
  // Read where each core is made (sim/checked-core.ts), in this thread and every worker.
  if (values['check-routine']) process.env[CHECK_ROUTINE_ENV] = '1';
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.big !== undefined) return big(int('big', values.big) as number, int('stable', values.stable) as number, values.trace);
  if (values.scenario !== undefined) {
    const scenario = JSON.parse(readFileSync(values.scenario, 'utf8')) as Scenario;
    return single(scenario, values.trace, values.verbose);
  }
  if (values.seed !== undefined)
    return single(scenarioFor(int('seed', values.seed) as number, values.kind, nodes), values.trace, values.verbose);
  const count = int('seeds', values.seeds) ?? 200;
  const from = int('from', values.from) as number;
  const jobs = Math.max(1, Math.min(int('jobs', values.jobs) ?? availableParallelism(), count));
  await sweep(from, count, jobs, values.kind, nodes);
}

function single(scenario: Scenario, trace: boolean, verbose: boolean): void {
  const result = runScenario(scenario, { trace: trace || verbose, traceLevel: verbose ? 10 : 6 });
  const s = scenario;
  console.log(
    `seed ${s.seed}: kind ${s.kind}, ${s.hosts.length} servers, tick ${s.tickMs} ms, check_beats ${s.checkBeats}, latency ${s.latencyMs} ms + jitter ${s.jitterMs} ms, exit_on_conflict ${s.exitOnConflict}, probe ${s.probe}`,
  );
  console.log(
    `servers: ${s.hosts.map((h) => `${h.name}${h.eligible ? '' : '(ineligible)'}${h.locked ? '(locked)' : ''}@${h.startAt}`).join(' ')}`,
  );
  console.log(`faults (ticks): ${s.faults.length === 0 ? 'none' : ''}`);
  for (const fault of s.faults) console.log(`  ${JSON.stringify(fault)}`);
  if (trace || verbose) {
    console.log('\ntimeline:');
    for (const line of result.timeline) console.log(line);
    console.log('');
  }
  console.log(`quiet at ${result.quietAt.toFixed(1)} ms, agreement due by ${result.deadline.toFixed(1)} ms`);
  if (result.convergenceTicks !== null)
    console.log(`agreed on ${result.master || 'no master'} ${result.convergenceTicks.toFixed(3)} ticks after quiet`);
  if (result.probe.value !== null)
    console.log(`probe ${result.probe.probe}: ${result.probe.value.toFixed(3)} ${result.probe.probe === 'crash' ? 'ticks' : 'ms'}`);
  console.log(`${(result.simulatedMs / s.tickMs).toFixed(1)} ticks simulated, ${result.steps} steps, ${result.wallMs.toFixed(0)} ms wall`);
  if (result.violation) {
    console.log(`\nVIOLATION of ${result.violation.invariant}: ${result.violation.message}`);
    if (!trace) {
      console.log(
        s.kind === 'custom'
          ? 'replay with the timeline: npm run sim -- --scenario FILE --trace'
          : `replay with the timeline: npm run sim -- --seed ${s.seed}${s.kind !== seedShape(s.seed).kind ? ` --kind ${s.kind}` : ''}${s.hosts.length !== seedShape(s.seed).n ? ` --nodes ${s.hosts.length}` : ''} --trace`,
      );
    }
    process.exitCode = 1;
  } else {
    console.log('\nall invariants held');
  }
}

async function sweep(from: number, count: number, jobs: number, kind: string | undefined, nodes: number | undefined): Promise<void> {
  const started = performance.now();
  const summaries: Summary[] = [];
  let lastReport = started;
  await Promise.all(
    Array.from({ length: jobs }, (_, offset) => {
      const job: Job = { from, count, stride: jobs, offset };
      if (kind !== undefined) job.kind = kind;
      if (nodes !== undefined) job.nodes = nodes;
      return new Promise<void>((resolve, reject) => {
        const worker = new Worker(__filename, { workerData: job });
        worker.on('message', (summary: Summary) => {
          summaries.push(summary);
          if (summary.violation)
            console.log(`seed ${summary.seed}: ${summary.message}  (replay: npm run sim -- --seed ${summary.seed} --trace)`);
          const now = performance.now();
          if (now - lastReport > 30_000) {
            lastReport = now;
            console.error(`… ${summaries.length}/${count} runs, ${((now - started) / 1000).toFixed(0)} s`);
          }
        });
        worker.on('error', reject);
        worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
      });
    }),
  );
  const wallS = (performance.now() - started) / 1000;
  printTable(summaries);
  const ticks = summaries.reduce((sum, s) => sum + s.simulatedTicks, 0);
  const cpuS = summaries.reduce((sum, s) => sum + s.wallMs, 0) / 1000;
  const violations = summaries.filter((s) => s.violation).length;
  console.log(
    `\n${summaries.length} runs (seeds ${from}..${from + count - 1}), ${violations} violations, ${wallS.toFixed(0)} s wall on ${jobs} threads; ${Math.round(ticks)} ticks simulated, ${Math.round(ticks / cpuS)} ticks per thread-second`,
  );
  if (violations > 0) process.exitCode = 1;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

function printTable(summaries: Summary[]): void {
  const fmt = (value: number): string => (Number.isNaN(value) ? '-' : value.toFixed(2));
  const kinds = [
    ...KINDS.filter((k) => summaries.some((s) => s.kind === k)),
    ...new Set(summaries.map((s) => s.kind).filter((k) => !isKind(k))),
  ];
  const sizes = [...new Set([...SIZES, ...summaries.map((s) => s.n)])]
    .filter((n) => summaries.some((s) => s.n === n))
    .sort((a, b) => a - b);
  console.log('\nConvergence after the last fault (T_quiet), in ticks; violations of any invariant:\n');
  console.log('| fault kind | N | runs | violations | median | p99 | max |');
  console.log('|---|--:|--:|--:|--:|--:|--:|');
  for (const kind of kinds) {
    for (const n of sizes) {
      const rows = summaries.filter((s) => s.kind === kind && s.n === n);
      if (rows.length === 0) continue;
      const conv = rows
        .map((s) => s.convergenceTicks)
        .filter((v): v is number => v !== null)
        .sort((a, b) => a - b);
      const bad = rows.filter((s) => s.violation).length;
      console.log(
        `| ${kind} | ${n} | ${rows.length} | ${bad} | ${fmt(quantile(conv, 0.5))} | ${fmt(quantile(conv, 0.99))} | ${fmt(conv[conv.length - 1] ?? NaN)} |`,
      );
    }
  }
  console.log('\nProbes of the stable cluster (SPEC bound in brackets):\n');
  console.log('| probe | runs | violations | median | p99 | max |');
  console.log('|---|--:|--:|--:|--:|--:|');
  const units: Record<string, string> = {
    graceful: 'ms to agree [100 ms]',
    crash: 'ticks, last heartbeat heard → new master [tock + 1 tick]',
    join: 'ms for the joiner to name the master [1 tick]',
    stepdown: 'ms until all agree on the next in rank [2 one-way delays]',
    promote: 'ms until all agree on the promoted server [3 one-way delays]',
  };
  for (const probe of ['graceful', 'crash', 'join', 'stepdown', 'promote']) {
    const rows = summaries.filter((s) => s.probe === probe && s.probeValue !== null);
    if (rows.length === 0 && (probe === 'stepdown' || probe === 'promote')) continue;
    const values = rows.map((s) => s.probeValue as number).sort((a, b) => a - b);
    const bad = summaries.filter(
      (s) => s.probe === probe && s.violation && /graceful|crash-failover|joiner|handoff/.test(s.violation),
    ).length;
    console.log(
      `| ${probe}: ${units[probe]} | ${rows.length} | ${bad} | ${fmt(quantile(values, 0.5))} | ${fmt(quantile(values, 0.99))} | ${fmt(values[values.length - 1] ?? NaN)} |`,
    );
  }
}

function big(n: number, stableTicks: number, trace: boolean): void {
  const scenario = scenarioFromSeed(1, { kind: 'none', n });
  scenario.hosts.forEach((host) => {
    host.eligible = true;
    host.locked = false;
  });
  scenario.tickMs = 1000;
  scenario.checkBeats = 3;
  scenario.latencyMs = 1;
  scenario.jitterMs = 2;
  scenario.exitOnConflict = false;
  scenario.stableTicks = stableTicks;
  scenario.probe = 'crash';
  console.log(
    `${n} servers, tick 1000 ms, check_beats 3, latency 1 ms + jitter 2 ms, starts spread over ${Math.max(...scenario.hosts.map((h) => h.startAt)).toFixed(2)} ticks; then ${stableTicks} stable ticks, a master crash, ${stableTicks} more`,
  );
  const result = runScenario(scenario, { trace });
  if (trace) for (const line of result.timeline) console.log(line);
  const ticks = result.simulatedMs / scenario.tickMs;
  console.log(
    `agreed on ${result.master || 'nobody'} ${result.convergenceTicks?.toFixed(3) ?? '-'} ticks after the last start (bound: tock + tick = 4 ticks)`,
  );
  if (result.probe.value !== null)
    console.log(`master crash: new master ${result.probe.value.toFixed(3)} ticks after the last heartbeat heard (bound 4 ticks)`);
  console.log(
    `${ticks.toFixed(1)} ticks simulated in ${(result.wallMs / 1000).toFixed(1)} s: ${(ticks / (result.wallMs / 1000)).toFixed(2)} simulated ticks per wall second, ${Math.round(result.steps / (result.wallMs / 1000))} steps/s (${result.steps} steps)`,
  );
  if (result.violation) {
    console.log(`VIOLATION of ${result.violation.invariant}: ${result.violation.message}`);
    process.exitCode = 1;
  } else {
    console.log('all invariants held: one master, agreed by all, no flap, no live server removed');
  }
}
