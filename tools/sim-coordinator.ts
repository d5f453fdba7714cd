/**
 * `npm run sim -- --coordinator ...` (or `node dist/tools/sim-coordinator.js ...`): the
 * coordinator (etcd) mode's simulator from the command line: lease-election machines
 * against the simulated linearizable lease store (sim/lease-scenario.ts).
 *
 *   --seeds N [--from S] [--jobs J]   sweep N seeds (every fault kind at N = 2, 3, 5, 7)
 *   --seed S [--trace] [--verbose]    replay one seed with its timeline
 *   --kind K, --nodes N               force the fault kind or the size
 *
 * Nothing here opens a socket.
 */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import {
  LEASE_KINDS,
  LEASE_PROBES,
  LEASE_SIZES,
  leaseScenarioFromSeed,
  runLeaseScenario,
  type LeaseKind,
  type LeaseScenario,
} from '../sim/lease-scenario';

interface Summary {
  seed: number;
  kind: string;
  n: number;
  violation: string | null;
  message: string | null;
  convergenceMs: number | null;
  probe: string;
  probeMs: number | null;
  ttlMs: number;
  wallMs: number;
}

interface Job {
  from: number;
  count: number;
  stride: number;
  offset: number;
  kind?: string;
  nodes?: number;
}

function scenarioFor(seed: number, kind?: string, nodes?: number): LeaseScenario {
  const options: { kind?: LeaseKind; n?: number } = {};
  if (kind !== undefined) {
    if (!(LEASE_KINDS as readonly string[]).includes(kind)) throw new Error(`unknown --kind ${kind}; one of ${LEASE_KINDS.join(', ')}`);
    options.kind = kind as LeaseKind;
  }
  if (nodes !== undefined) options.n = nodes;
  return leaseScenarioFromSeed(seed, options);
}

function summarize(scenario: LeaseScenario): Summary {
  const started = performance.now();
  const result = runLeaseScenario(scenario);
  return {
    seed: scenario.seed,
    kind: scenario.kind,
    n: scenario.hosts.length,
    violation: result.violation?.invariant ?? null,
    message: result.violation?.message ?? null,
    convergenceMs: result.convergenceMs,
    probe: scenario.probe,
    probeMs: result.probeMs,
    ttlMs: scenario.ttlSeconds * 1000,
    wallMs: performance.now() - started,
  };
}

if (!isMainThread && (workerData as { coordinator?: boolean } | null)?.coordinator) {
  const job = (workerData as { job: Job }).job;
  for (let i = job.offset; i < job.count; i += job.stride)
    parentPort?.postMessage(summarize(scenarioFor(job.from + i, job.kind, job.nodes)));
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      coordinator: { type: 'boolean', default: true },
      seed: { type: 'string' },
      seeds: { type: 'string' },
      from: { type: 'string', default: '1' },
      kind: { type: 'string' },
      nodes: { type: 'string' },
      jobs: { type: 'string' },
      trace: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
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
  if (values.seed !== undefined) {
    const scenario = scenarioFor(int('seed', values.seed) as number, values.kind, nodes);
    const result = runLeaseScenario(scenario, { trace: values.trace || values.verbose, traceLevel: values.verbose ? 10 : 5 });
    const { hosts, faults, ...rest } = scenario;
    console.log(JSON.stringify(rest));
    console.log(
      `servers: ${hosts.map((h) => `${h.name}${h.eligible ? '' : '(ineligible)'}${h.priority ? `(priority ${h.priority})` : ''}@${h.startAt.toFixed(1)}`).join(' ')}`,
    );
    for (const fault of faults) console.log(`  ${JSON.stringify(fault)}`);
    if (values.trace || values.verbose) console.log(`\n${result.timeline.join('\n')}\n`);
    if (result.convergenceMs !== null) console.log(`agreed ${result.convergenceMs.toFixed(1)} ms after the faults stopped`);
    if (result.probeMs !== null) console.log(`probe ${scenario.probe}: ${result.probeMs.toFixed(1)} ms`);
    if (result.violation) {
      console.log(`\nVIOLATION of ${result.violation.invariant}: ${result.violation.message}`);
      process.exitCode = 1;
    } else {
      console.log('\nall invariants held');
    }
    return;
  }
  const count = int('seeds', values.seeds) ?? 200;
  const from = int('from', values.from) as number;
  const jobs = Math.max(1, Math.min(int('jobs', values.jobs) ?? availableParallelism(), count));
  const started = performance.now();
  const summaries: Summary[] = [];
  await Promise.all(
    Array.from({ length: jobs }, (_, offset) => {
      const job: Job = { from, count, stride: jobs, offset };
      if (values.kind !== undefined) job.kind = values.kind;
      if (nodes !== undefined) job.nodes = nodes;
      return new Promise<void>((resolve, reject) => {
        const worker = new Worker(__filename, { workerData: { coordinator: true, job } });
        worker.on('message', (summary: Summary) => {
          summaries.push(summary);
          if (summary.violation)
            console.log(`seed ${summary.seed}: ${summary.message}  (replay: npm run sim -- --coordinator --seed ${summary.seed} --trace)`);
        });
        worker.on('error', reject);
        worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
      });
    }),
  );
  printTable(summaries);
  const violations = summaries.filter((s) => s.violation).length;
  const wallS = (performance.now() - started) / 1000;
  console.log(
    `\n${summaries.length} runs (seeds ${from}..${from + count - 1}), ${violations} violations, ${wallS.toFixed(0)} s wall on ${jobs} threads`,
  );
  if (violations > 0) process.exitCode = 1;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

function printTable(summaries: Summary[]): void {
  const fmt = (value: number): string => (Number.isNaN(value) ? '-' : value.toFixed(2));
  console.log('\nCoordinator mode: convergence after the faults stop, in TTLs; violations of any invariant:\n');
  console.log('| fault kind | N | runs | violations | median | p99 | max |');
  console.log('|---|--:|--:|--:|--:|--:|--:|');
  for (const kind of LEASE_KINDS) {
    for (const n of LEASE_SIZES) {
      const rows = summaries.filter((s) => s.kind === kind && s.n === n);
      if (rows.length === 0) continue;
      const conv = rows
        .map((s) => (s.convergenceMs === null ? null : s.convergenceMs / s.ttlMs))
        .filter((v): v is number => v !== null)
        .sort((a, b) => a - b);
      console.log(
        `| ${kind} | ${n} | ${rows.length} | ${rows.filter((s) => s.violation).length} | ${fmt(quantile(conv, 0.5))} | ${fmt(quantile(conv, 0.99))} | ${fmt(conv[conv.length - 1] ?? NaN)} |`,
      );
    }
  }
  console.log('\nProbes of the stable cluster, in ms (crash: in TTLs):\n');
  console.log('| probe | runs | median | p99 | max |');
  console.log('|---|--:|--:|--:|--:|');
  for (const probe of LEASE_PROBES) {
    if (probe === 'none' || probe === 'freeze') continue;
    const values = summaries
      .filter((s) => s.probe === probe && s.probeMs !== null)
      .map((s) => (probe === 'crash' ? (s.probeMs as number) / s.ttlMs : (s.probeMs as number)))
      .sort((a, b) => a - b);
    console.log(
      `| ${probe} | ${values.length} | ${fmt(quantile(values, 0.5))} | ${fmt(quantile(values, 0.99))} | ${fmt(values[values.length - 1] ?? NaN)} |`,
    );
  }
}

if (isMainThread && require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(2);
  });
}
