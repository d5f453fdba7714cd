/**
 * How `pixl-server-multi run` hands a command over, measured with real processes on loopback
 * (three wrappers, tools/run-child.js with a grandchild): for a SIGTERM to the master's wrapper,
 * a SIGKILL of it and a SIGSTOP of it, the time from the signal to the end of the old run's last
 * process, to the start of the next master's command, and the gap between the two (never
 * negative: no overlap). Times are the children's own timestamps.
 *
 *   node dist/tools/bench-run.js [--repeat N] [--heartbeat S] [--linger MS]
 */
import { bothStarted, RunWrappers, starts } from './run-wrappers';

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function once(
  signal: 'SIGTERM' | 'SIGKILL' | 'SIGSTOP',
  heartbeat: number,
  linger: number,
): Promise<{ end: number; next: number; gap: number }> {
  const w = new RunWrappers({ heartbeatFreq: heartbeat, childArgs: ['--linger', String(linger)] });
  try {
    for (const host of ['alpha', 'bravo', 'charlie']) await w.start(host);
    await w.waitFor(() => bothStarted(w) && w.commandProcesses().length === 2, 30_000, 'the first run');
    const first = starts(w)[0];
    if (!first) throw new Error('no run');
    const at = w.kill(first.host, signal);
    await w.waitFor(() => starts(w).length === 2, 30_000, 'the next run');
    const next = starts(w)[1];
    const ends = w.lines().filter((l) => l.host === first.host && l.event === 'end');
    if (!next || ends.length !== 2) throw new Error(`unexpected: ${JSON.stringify(w.lines())}`);
    const end = Math.max(...ends.map((l) => l.t));
    return { end: end - at, next: next.t - at, gap: next.t - end };
  } finally {
    await w.close();
  }
}

async function main(): Promise<void> {
  const repeat = option('--repeat', 3);
  const heartbeat = option('--heartbeat', 1);
  const linger = option('--linger', 0);
  console.log(
    `run handoffs: 3 wrappers on loopback, heartbeat_freq ${heartbeat} s, check_beats 3, command cleanup ${linger} ms, ${repeat} runs each (ms; min-max)`,
  );
  console.log('signal   | old run gone after | next command started after | gap (next start - old end)');
  for (const signal of ['SIGTERM', 'SIGKILL', 'SIGSTOP'] as const) {
    const results: Array<{ end: number; next: number; gap: number }> = [];
    for (let i = 0; i < repeat; i++) results.push(await once(signal, heartbeat, linger));
    const span = (key: 'end' | 'next' | 'gap'): string => {
      const values = results.map((r) => r[key]);
      return `${Math.round(Math.min(...values))}-${Math.round(Math.max(...values))}`;
    };
    console.log(`${signal.padEnd(8)} | ${span('end').padEnd(18)} | ${span('next').padEnd(26)} | ${span('gap')}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
