/**
 * `pixl-server-multi run` wrappers as real processes on loopback, for the tests: each runs
 * tools/run-child.js, which logs to one shared file. The processes of a test are found on
 * this host by a token in their environment (the wrapper's, inherited by the guardian, the
 * command and its descendants, whatever pid namespace they run in), so the tests check by
 * pid which still exist. Waiting is "until observed, or fail after a deadline".
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertLoopbackConfig, freeUdpPort } from './loopback';
import type { RunChildLine } from './run-child';
import { preciseNow, Waiters } from './waiters';

export const CLI = path.join(__dirname, '..', 'src', 'cli.js');
export const RUN_CHILD = path.join(__dirname, 'run-child.js');
const TOKEN_VAR = 'PSM_RUN_TEST_TOKEN';

export interface WrapperOptions {
  heartbeatFreq: number;
  checkBeats?: number;
  /** Extra `run` flags for every wrapper. */
  args?: string[];
  /** Arguments for run-child.js after the log file. */
  childArgs?: string[];
}

export interface Wrapper {
  host: string;
  process: ChildProcess;
  /** stderr lines, each with the precise time it was read. */
  log: Array<{ t: number; line: string }>;
  exited: Promise<{ code: number | null; signal: string | null }>;
  alive: boolean;
}

export interface RunProcess {
  pid: number;
  host: string;
  role: 'child' | 'grandchild' | 'guardian' | 'other';
  /** Field 22 of /proc/<pid>/stat: with the pid, names one process for good. */
  startTime: string;
}

export const now = preciseNow;

export class RunWrappers {
  readonly dir: string;
  readonly file: string;
  readonly token = `psm-run-${process.pid}-${randomBytes(4).toString('hex')}`;
  port = 0;
  /** Flags for every wrapper started from now on. */
  readonly args: string[];
  readonly #options: WrapperOptions;
  readonly #wrappers = new Map<string, Wrapper>();
  readonly #waiters = new Waiters({ describe: () => this.describe(), separator: '\n', pollMs: 20 });

  constructor(options: WrapperOptions) {
    this.#options = options;
    this.args = [...(options.args ?? [])];
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'psm-run-'));
    this.file = path.join(this.dir, 'children.jsonl');
  }

  async start(host: string, options: { args?: string[]; childArgs?: string[]; command?: string[] } = {}): Promise<Wrapper> {
    if (!this.port) this.port = await freeUdpPort();
    const broadcast = '127.255.255.255';
    const flags = [...this.args, ...(options.args ?? [])];
    // The network rule, on the section the wrapper will run with: the file's keys, then flags.
    const flag = (name: string): string | undefined => {
      const i = flags.lastIndexOf(name);
      return i >= 0 ? flags[i + 1] : undefined;
    };
    const config = flag('--config');
    const section: Record<string, unknown> = {
      broadcast_ip: broadcast,
      ...(config ? (JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>) : {}),
    };
    const bindIp = flag('--bind-ip');
    if (bindIp !== undefined) section.bind_ip = bindIp;
    if (flags.includes('--etcd')) throw new Error('RunWrappers: give etcd hosts in a --config file, where the loopback check sees them');
    assertLoopbackConfig(section);
    const args = [
      CLI,
      'run',
      '--hostname',
      host,
      '--ip',
      '127.0.0.1',
      '--port',
      String(this.port),
      '--broadcast-ip',
      broadcast,
      '--heartbeat-freq',
      String(this.#options.heartbeatFreq),
      '--check-beats',
      String(this.#options.checkBeats ?? 3),
      ...flags,
      '--',
      ...(options.command ?? [process.execPath, RUN_CHILD, this.file, ...(this.#options.childArgs ?? []), ...(options.childArgs ?? [])]),
    ];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, [TOKEN_VAR]: this.token } });
    const wrapper: Wrapper = {
      host,
      process: child,
      log: [],
      alive: true,
      exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    };
    void wrapper.exited.then(() => (wrapper.alive = false));
    let partial = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      const t = now();
      for (const line of lines) wrapper.log.push({ t, line });
    });
    child.stdout?.resume();
    this.#wrappers.set(host, wrapper);
    return wrapper;
  }

  wrapper(host: string): Wrapper {
    const wrapper = this.#wrappers.get(host);
    if (!wrapper) throw new Error(`no wrapper ${host}`);
    return wrapper;
  }

  kill(host: string, signal: NodeJS.Signals): number {
    const t = now();
    this.wrapper(host).process.kill(signal);
    return t;
  }

  /** Every line the children wrote so far. */
  lines(): RunChildLine[] {
    if (!existsSync(this.file)) return [];
    return readFileSync(this.file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as RunChildLine);
  }

  /** Whether a wrapper's stderr has a line matching `pattern` (after `since`). */
  logged(host: string, pattern: RegExp, since = 0): boolean {
    return this.wrapper(host).log.some((entry) => entry.t >= since && pattern.test(entry.line));
  }

  /** The processes of this test on this host, by the token in their environment. */
  processes(): RunProcess[] {
    const found: RunProcess[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let environ: string;
      let cmdline: string;
      let stat: string;
      try {
        environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
        cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
        stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue;
      }
      const vars = environ.split('\0');
      if (!vars.includes(`${TOKEN_VAR}=${this.token}`)) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') continue;
      const host = vars.find((v) => v.startsWith('MULTI_HOSTNAME='))?.slice('MULTI_HOSTNAME='.length) ?? '';
      const argv = cmdline.split('\0');
      // A wrapper's own command line names run-child.js too (after `--`): the script is argv[1] only for the command.
      const role: RunProcess['role'] = argv[1]?.endsWith('run-child.js')
        ? argv.includes('--is-grandchild')
          ? 'grandchild'
          : 'child'
        : argv.some((a) => a.endsWith('guardian.js'))
          ? 'guardian'
          : 'other';
      found.push({ pid: Number(entry), host, role, startTime: fields[19] ?? '' });
    }
    return found;
  }

  /** The wrapped command's processes (child and grandchildren) that run now. */
  commandProcesses(): RunProcess[] {
    return this.processes().filter((p) => p.role === 'child' || p.role === 'grandchild');
  }

  static exists(p: RunProcess): boolean {
    try {
      const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return fields[19] === p.startTime && fields[0] !== 'Z';
    } catch {
      return false;
    }
  }

  /**
   * Resolves with the time `predicate` was seen to hold; rejects after `timeoutMs`. Polled
   * (every 20 ms): the children's file and /proc change without a report.
   */
  async waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<number> {
    await this.#waiters.waitFor(predicate, timeoutMs, what);
    return now();
  }

  describe(): string {
    const logs = [...this.#wrappers.values()].map(
      (w) =>
        `--- ${w.host} (${w.alive ? 'alive' : 'exited'}):\n${w.log
          .slice(-25)
          .map((e) => e.line)
          .join('\n')}`,
    );
    return `children: ${JSON.stringify(this.lines().slice(-20))}\nprocesses: ${JSON.stringify(this.processes())}\n${logs.join('\n')}`;
  }

  /** Stop everything (SIGCONT first: a frozen wrapper cannot die of SIGTERM), then wait until no process of the test is left. */
  async close(): Promise<void> {
    for (const wrapper of this.#wrappers.values()) {
      if (!wrapper.alive) continue;
      wrapper.process.kill('SIGCONT');
      wrapper.process.kill('SIGKILL');
    }
    await Promise.all([...this.#wrappers.values()].map((w) => w.exited));
    try {
      await this.waitFor(() => this.processes().length === 0, 10_000, 'the guardians to end every run');
    } finally {
      for (const p of this.processes()) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** Whether this host lets the wrapper put a run in a pid namespace (the probe `run` makes itself). */
export const pidNamespacesPermitted =
  spawnSync('unshare', ['--pid', '--fork', '--kill-child', '--mount', '--propagation', 'slave', '--mount-proc', 'true']).status === 0;

/** The `start` lines of commands (not grandchildren), of one host or all. */
export function starts(w: RunWrappers, host?: string): RunChildLine[] {
  return w.lines().filter((l) => l.event === 'start' && l.role === 'child' && (host === undefined || l.host === host));
}

/** `count` commands and as many grandchildren have started (each handles SIGTERM from its start line on). */
export function bothStarted(w: RunWrappers, count = 1): boolean {
  const lines = w.lines().filter((l) => l.event === 'start');
  return lines.filter((l) => l.role === 'child').length === count && lines.filter((l) => l.role === 'grandchild').length === count;
}

export function hostsOf(processes: RunProcess[]): string[] {
  return [...new Set(processes.map((p) => p.host))];
}
