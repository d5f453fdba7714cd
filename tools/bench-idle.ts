/**
 * `npm run bench:idle`: what one idle server costs, in instructions, a figure that does not
 * move with the machine's load. CPU percentages (`npm run bench`) depend on what else runs:
 * on a shared machine two runs of the same code differ by more than the changes worth making.
 * Instructions executed are repeatable to a fraction of a percent, so they judge a change.
 *
 * Three clusters on loopback, each of `--nodes` pixl-server processes on a port of its own:
 * this package, the floor component (tools/floor-component.ts: one JSON heartbeat a tick,
 * every datagram parsed, one timer) and pixl-server alone. In each, one member runs under
 * valgrind's callgrind with instrumentation off until the cluster has settled; then every
 * instruction it executes (user space, all threads: JIT code, the garbage collector, libuv)
 * is counted over the same window. The kernel's share (the syscalls of a datagram or a timer)
 * is not counted; `strace -c -p` shows the same number of them for our servers and the floor.
 *
 * Each figure is split three ways: the JIT compilers, the garbage collector, and the rest, the
 * code running. The first two come in bursts (V8 optimizes a function after enough calls, which
 * at a few packets a second takes minutes; a major GC comes now and then), so one window may
 * hold one and the next not; the running code is what the per-packet path costs, window after
 * window.
 *
 *   npm run bench:idle [-- --seconds 20 --warmup 5 --heartbeat 0.5 --nodes 3 --keep DIR]
 *
 * --warmup: seconds between the cluster settling and the window (default 5).
 *
 * Needs valgrind (Debian: `apt-get install valgrind`). Takes about a minute and a half more
 * than `--seconds`, most of it the measured processes loading under valgrind.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { toolArgs } from './tool-args';

const USAGE = 'usage: npm run bench:idle -- [--seconds S>0] [--heartbeat T>=0.05] [--nodes 2..7] [--warmup S] [--keep DIR]';
import { ProcessCluster } from './process-cluster';
import { freeUdpPort } from './loopback';

const HOSTNAMES = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf'];
/** Loading pixl-server and this package under valgrind is slow: minutes on a busy machine. */
const VALGRIND_START_MS = 600_000;

type Kind = 'ours' | 'floor' | 'bare';

interface Measured {
  kind: Kind;
  label: string;
  instructions: number;
  seconds: number;
  /** Of those, the JIT compilers' (bytecode, baseline, optimizing) and the garbage collector's. */
  compiling: number;
  collecting: number;
}

/** Where a function's instructions go: compiling code, collecting garbage, or running the program. */
const COMPILING =
  /v8::internal::(compiler|baseline|interpreter|maglev|wasm)::|v8::internal::(Compiler|Parser|Scanner|AstValueFactory|Zone|AccountingAllocator|BytecodeGenerator|OptimizedCompilationJob|TurbofanCompilationJob|CodeGenerator|Assembler|RegisterAllocator|InstructionSelector)\b|v8::internal::\w*Compil/;
const COLLECTING =
  /Scaveng|MarkCompact|ConcurrentMarking|MarkingVisitor|MarkingState|Sweeper|IncrementalMarking|MarkingBarrier|heap::base::|cppgc::|Evacuat|RememberedSet|SlotSet|IterateObjectCache|GlobalHandles|MemoryReducer|ArrayBufferSweeper|v8::internal::Heap::(CollectGarbage|PerformGarbageCollection|Scavenge|MarkCompact|GarbageCollection)/;

/** The window's dump, split: instructions in the JIT compilers and in the garbage collector. */
function split(file: string): { compiling: number; collecting: number } {
  const out = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', file], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 120_000,
  });
  let compiling = 0;
  let collecting = 0;
  for (const line of out.split('\n')) {
    const match = /^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (!match || (match[2] as string).includes('PROGRAM TOTALS')) continue;
    const count = Number((match[1] as string).replace(/,/g, ''));
    const name = match[2] as string;
    if (COMPILING.test(name)) compiling += count;
    else if (COLLECTING.test(name)) collecting += count;
  }
  return { compiling, collecting };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function valgrindMissing(): string | null {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
    execFileSync('callgrind_control', ['--version'], { stdio: 'ignore' });
    return null;
  } catch {
    return 'valgrind is not installed (Debian: apt-get install valgrind)';
  }
}

/** The instruction count callgrind has collected so far in process `pid`. */
function collected(pid: number): number {
  const out = execFileSync('callgrind_control', ['-e', 'Ir', String(pid)], {
    encoding: 'utf8',
    timeout: 60_000,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  // One line per thread when threads are counted apart ("Th 1  14,196,072"): their sum.
  const threads = [...out.matchAll(/^\s*Th\s+\d+\s+([\d,]+)\s*$/gm)];
  if (threads.length === 0) throw new Error(`callgrind_control -e printed no total for ${pid}:\n${out}`);
  return threads.reduce((sum, match) => sum + Number((match[1] as string).replace(/,/g, '')), 0);
}

function instrument(pid: number, on: boolean): void {
  execFileSync('callgrind_control', ['-i', on ? 'on' : 'off', String(pid)], { stdio: 'ignore', timeout: 60_000 });
}

/** The pid of the measured member: the one child of `cluster` (its launcher execs in place). */
function pidOf(cluster: ProcessCluster, host: string): number {
  const pid = cluster.pid(host);
  if (pid === undefined) throw new Error(`${host} has no pid`);
  return pid;
}

async function main(): Promise<void> {
  const { values } = toolArgs(USAGE, () =>
    parseArgs({
      options: {
        seconds: { type: 'string', default: '20' },
        heartbeat: { type: 'string', default: '0.5' },
        nodes: { type: 'string', default: '3' },
        warmup: { type: 'string', default: '5' },
        keep: { type: 'string' },
      },
      strict: true,
    }),
  );
  const seconds = Number(values.seconds);
  const heartbeat = Number(values.heartbeat);
  const nodes = Number(values.nodes);
  const warmup = Number(values.warmup);
  if (!(seconds > 0) || !(heartbeat >= 0.05) || !(Number.isInteger(nodes) && nodes >= 2 && nodes <= HOSTNAMES.length)) {
    throw new Error(USAGE);
  }
  const missing = valgrindMissing();
  if (missing) throw new Error(missing);
  const outDir = values.keep ?? mkdtempSync(path.join(os.tmpdir(), 'psm-callgrind-'));
  mkdirSync(outDir, { recursive: true });
  const hosts = HOSTNAMES.slice(0, nodes);
  const measuredHost = hosts[nodes - 1] as string;
  const kinds: Array<{ kind: Kind; label: string }> = [
    { kind: 'ours', label: 'pixl-server-multi' },
    { kind: 'floor', label: 'floor component' },
    { kind: 'bare', label: 'pixl-server alone' },
  ];
  const clusters: ProcessCluster[] = [];
  const measured = new Map<Kind, { cluster: ProcessCluster; pid: number }>();
  try {
    console.log(
      `idle cost in instructions: ${nodes} servers per cluster, heartbeat_freq ${heartbeat} s, one member of each under callgrind, ${seconds} s window`,
    );
    console.log(
      `machine: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} CPUs, node ${process.version}, load average ${os.loadavg()[0]?.toFixed(2)}`,
    );
    await Promise.all(
      kinds.map(async ({ kind }) => {
        const port = await freeUdpPort();
        const base = { heartbeatFreq: heartbeat, checkBeats: 3, port, bare: kind === 'bare', floor: kind === 'floor' };
        const plain = new ProcessCluster(base);
        const traced = new ProcessCluster({
          ...base,
          startTimeoutMs: VALGRIND_START_MS,
          launcher: [
            'valgrind',
            '--tool=callgrind',
            '--instr-atstart=no',
            `--callgrind-out-file=${path.join(outDir, `callgrind.${kind}.%p`)}`,
          ],
        });
        clusters.push(plain, traced);
        await Promise.all([...hosts.slice(0, -1).map((host) => plain.start(host)), traced.start(measuredHost)]);
        measured.set(kind, { cluster: traced, pid: pidOf(traced, measuredHost) });
      }),
    );
    // Settled: our measured member lists the whole cluster and names a master; then --warmup
    // seconds more (the floor is checked to have heard every member after the window).
    const ours = measured.get('ours')?.cluster as ProcessCluster;
    await ours.waitFor(
      () => ours.state(measuredHost)?.servers.length === nodes && ours.state(measuredHost)?.masterHostname !== '',
      60_000,
      `${measuredHost} to see the whole cluster`,
    );
    await delay(warmup * 1000);
    // callgrind_control takes a moment per process: each one's window is timed on its own.
    const before = new Map<Kind, { count: number; at: number }>();
    for (const [kind, { pid }] of measured) {
      instrument(pid, true);
      before.set(kind, { count: collected(pid), at: performance.now() });
    }
    await delay(seconds * 1000);
    const results: Measured[] = [];
    for (const { kind, label } of kinds) {
      const { pid } = measured.get(kind) as { pid: number };
      const start = before.get(kind) as { count: number; at: number };
      const instructions = collected(pid) - start.count;
      const seconds = (performance.now() - start.at) / 1000;
      instrument(pid, false);
      // The window's counts, function by function (instrumentation was off before it).
      execFileSync('callgrind_control', ['--dump=window', String(pid)], { stdio: 'ignore', timeout: 120_000 });
      const { compiling, collecting } = split(path.join(outDir, `callgrind.${kind}.${pid}.1`));
      results.push({ kind, label, instructions, seconds, compiling, collecting });
    }
    // The floor reports no events: ask for its table now. It must have heard every member.
    const floorCluster = measured.get('floor')?.cluster as ProcessCluster;
    const asked = floorCluster.reports.length;
    floorCluster.command(measuredHost, { cmd: 'state' });
    await floorCluster.waitFor(() => floorCluster.reports.length > asked, 60_000, `the floor's ${measuredHost} to report`);
    const floorServers = floorCluster.state(measuredHost)?.servers.length ?? 0;
    if (floorServers !== nodes)
      throw new Error(`the floor's ${measuredHost} heard ${floorServers} of ${nodes} servers: not a like-for-like window`);
    const perSecond = (m: Measured): number => m.instructions / m.seconds;
    const running = (m: Measured): number => (m.instructions - m.compiling - m.collecting) / m.seconds;
    const n = (value: number): string => Math.round(value).toLocaleString('en-US');
    const [oursM, floorM, bareM] = results as [Measured, Measured, Measured];
    console.log('');
    console.log('instructions a second, one idle server   all   compiling   collecting   running code   per tick   over pixl-server alone');
    for (const m of results) {
      const cells = [
        n(perSecond(m)).padStart(10),
        n(m.compiling / m.seconds).padStart(11),
        n(m.collecting / m.seconds).padStart(12),
        n(running(m)).padStart(14),
        n(running(m) * heartbeat).padStart(10),
      ];
      console.log(`${m.label.padEnd(33)} ${cells.join(' ')}   ${m.kind === 'bare' ? '' : n(running(m) - running(bareM)).padStart(12)}`);
    }
    console.log(
      `\nrunning code, over the floor: ${n(running(oursM) - running(floorM))} instructions/s; ` +
        `all instructions, over the floor: ${n(perSecond(oursM) - perSecond(floorM))}. ` +
        '(Compiling and collecting come in bursts: the JIT optimizes functions after minutes of calls, a major GC now and then; compare them over several runs.)',
    );
    if (values.keep) console.log(`callgrind files in ${outDir} (callgrind_annotate)`);
  } finally {
    await Promise.all(clusters.map((cluster) => cluster.stopAll()));
    if (!values.keep) rmSync(outDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`bench:idle failed: ${(err as Error).message}`);
    process.exit(2);
  });
}
