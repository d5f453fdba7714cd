/**
 * Clusters of `pixl-server-multi run` wrappers for the tests (run.cluster.test.ts,
 * run.guardian.test.ts): each file closes what it started when it ends.
 */
import { after } from 'node:test';
import { bothStarted, RunWrappers } from '../../tools/run-wrappers';
import type { RunChildLine } from '../../tools/run-child';

export const TICK_S = 1;
/** Generous: a loaded machine runs these too. */
export const DEADLINE_MS = 20_000;
export const HOSTS = ['alpha', 'bravo', 'charlie'];

const open: RunWrappers[] = [];
after(async () => {
  await Promise.all(open.map((w) => w.close()));
});

export function wrappers(options: ConstructorParameters<typeof RunWrappers>[0]): RunWrappers {
  const w = new RunWrappers(options);
  open.push(w);
  return w;
}

/** Close every wrapper set started so far (before an etcd cluster they use goes away). */
export async function closeAll(): Promise<void> {
  await Promise.all(open.splice(0).map((w) => w.close()));
}

/** Start three wrappers and wait until exactly one command (and its grandchild) runs. */
export async function cluster(args: string[] = [], childArgs: string[] = []): Promise<{ w: RunWrappers; master: string; term: number }> {
  const w = wrappers({ heartbeatFreq: TICK_S, args, childArgs: ['--linger', '300', ...childArgs] });
  for (const host of HOSTS) await w.start(host);
  await w.waitFor(() => bothStarted(w) && w.commandProcesses().length === 2, DEADLINE_MS, 'one command and its grandchild');
  const start = w.lines().find((l) => l.event === 'start' && l.role === 'child') as RunChildLine;
  return { w, master: start.host, term: start.term };
}
