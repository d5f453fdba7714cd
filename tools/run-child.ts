/**
 * The command the `run` tests wrap: it appends what it does, with precise timestamps, as
 * JSON lines to a shared file, and starts a grandchild that does the same, so the tests can
 * tell which server's processes ran when, and check by pid which still run.
 *
 *   node run-child.js <log file> [--grandchild same|setsid|none] [--linger ms]
 *                     [--exit-after ms] [--exit-code n] [--ignore-term]
 *
 * On SIGTERM it writes `term`, lingers (cleanup that takes time), writes `end` and exits 0;
 * with --ignore-term it writes `term` and goes on (only SIGKILL ends it). The grandchild
 * lingers the same way, so an `end` line means that process was really gone after it.
 */
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export interface RunChildLine {
  t: number;
  event: 'start' | 'term' | 'end' | 'exit';
  role: 'child' | 'grandchild';
  host: string;
  term: number;
  /** The pid as this process sees it (its pid namespace's, when it runs in one). */
  pid: number;
  ppid: number;
  code?: number;
}

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function main(): void {
  const args = process.argv.slice(2);
  const file = args[0];
  if (!file) throw new Error('usage: run-child.js <log file> [options]');
  const role: RunChildLine['role'] = args.includes('--is-grandchild') ? 'grandchild' : 'child';
  const linger = Number(flag(args, '--linger') ?? '0');
  const write = (event: RunChildLine['event'], extra: Partial<RunChildLine> = {}): void => {
    const line: RunChildLine = {
      t: performance.timeOrigin + performance.now(),
      event,
      role,
      host: process.env.MULTI_HOSTNAME ?? '',
      term: Number(process.env.MULTI_TERM ?? '0'),
      pid: process.pid,
      ppid: process.ppid,
      ...extra,
    };
    appendFileSync(file, JSON.stringify(line) + '\n');
  };
  // The handler first: a `start` line means this process handles SIGTERM from then on.
  process.on('SIGTERM', () => {
    write('term');
    if (args.includes('--ignore-term')) return;
    setTimeout(() => {
      write('end');
      process.exit(0);
    }, linger);
  });
  write('start');
  const exitAfter = (): void => {
    const after = flag(args, '--exit-after');
    if (after === undefined || role !== 'child') return;
    setTimeout(() => {
      const code = Number(flag(args, '--exit-code') ?? '0');
      write('exit', { code });
      process.exit(code);
    }, Number(after));
  };
  if (role === 'grandchild') {
    process.stdout.write('ready\n');
  }
  const grandchild = flag(args, '--grandchild') ?? 'same';
  if (role === 'child' && grandchild !== 'none') {
    // A grandchild in the same process group, or one that left it (setsid), as daemons do.
    const child = spawn(
      process.execPath,
      [__filename, file, '--is-grandchild', '--linger', String(linger), ...(args.includes('--ignore-term') ? ['--ignore-term'] : [])],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
        detached: grandchild === 'setsid',
      },
    );
    // The clock of --exit-after starts once the grandchild handles SIGTERM too.
    child.stdout?.once('data', () => {
      child.stdout?.destroy();
      exitAfter();
    });
    child.unref();
  } else {
    exitAfter();
  }
  setInterval(() => undefined, 60_000);
}

main();
