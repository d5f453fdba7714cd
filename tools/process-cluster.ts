/**
 * A cluster of real pixl-server processes on loopback (one per hostname, all on one
 * port with address reuse, broadcast 127.255.255.255), for the demo, the socket tests
 * and the bench; or, for the LAN tests only, one process per test network namespace
 * with the default broadcast computation. Waiting is always "until this is observed,
 * or fail after a deadline": nothing here sleeps and hopes.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CHILD_SCRIPT, preciseNow, type ChildCommand, type ChildConfig, type ChildReport, type ChildState, type ChildStats } from './child';
import { DEFAULT_CONFIG } from '../src/config';
import { assertLoopback, assertLoopbackConfig, freeUdpPort } from './loopback';
import { LAN_NETNS_ENV } from './netns';

export interface ProcessClusterOptions {
  heartbeatFreq: number;
  checkBeats: number;
  broadcastIp?: string;
  port?: number;
  debugLevel?: number;
  /** Extra MultiServer config for every member. */
  multi?: Record<string, unknown>;
  /** A command the members run under, e.g. `['ip', 'netns', 'exec', name]` (see netns.ts). */
  launcher?: string[];
  /**
   * LAN tests only: the test network namespace of each host. Members then run through
   * `ip netns exec`, with no broadcast_ip (each child proves it is inside its namespace).
   */
  netnsOf?: (host: string) => string;
  /** Members run pixl-server without MultiServer (a resource-use baseline; they never agree). */
  bare?: boolean;
  /** How long a member may take to load and start (default 20 s; a member under valgrind needs minutes). */
  startTimeoutMs?: number;
  /** Members run the floor component instead of MultiServer (the bench's idle yardstick; they never agree). */
  floor?: boolean;
  /** Master work on every member (tools/work.ts). */
  work?: ChildConfig['work'];
}

interface Member {
  host: string;
  child: ChildProcess;
  state: ChildState | null;
  /** When this member's view of the master last changed. */
  learnedAt: number;
  exited: Promise<number | null>;
  alive: boolean;
}

type Waiter = { predicate: () => boolean; resolve: () => void };

export class ProcessCluster {
  readonly reports: ChildReport[] = [];
  readonly logDir: string;
  #options: ProcessClusterOptions;
  #port = 0;
  #commandIds = 0;
  #portReady: Promise<number> | null = null;
  #members = new Map<string, Member>();
  #waiters: Waiter[] = [];

  constructor(options: ProcessClusterOptions) {
    if (options.netnsOf) {
      if (options.broadcastIp !== undefined || options.multi?.broadcast_ip !== undefined) {
        throw new Error('a namespace cluster uses the default broadcast computation: set no broadcast_ip');
      }
      if (options.launcher) throw new Error('a namespace cluster launches its members itself: set no launcher');
      this.#options = { ...options };
    } else {
      const broadcastIp = options.broadcastIp ?? '127.255.255.255';
      assertLoopback(broadcastIp);
      this.#options = { ...options, broadcastIp };
    }
    this.logDir = mkdtempSync(path.join(os.tmpdir(), 'psm-cluster-'));
  }

  get port(): number {
    return this.#port;
  }

  get tickMs(): number {
    return this.#options.heartbeatFreq * 1000;
  }

  get tockMs(): number {
    return this.tickMs * this.#options.checkBeats;
  }

  /**
   * Start a member; resolves once its pixl-server startup has completed. With `hold`,
   * resolves once the process is loaded and waiting: `release()` then starts the held
   * members together, so process start-up time does not turn a cold start into joins.
   * With `web` (a WebServer section, on 127.0.0.1 only) the member also runs pixl-server-web.
   */
  async start(host: string, multi: Record<string, unknown> = {}, hold = false, web?: Record<string, unknown>): Promise<void> {
    // Members started concurrently must share one port: allocate it once. Each
    // namespace has its own ports: the default comm_port is free there.
    this.#portReady ??= this.#options.port
      ? Promise.resolve(this.#options.port)
      : this.#options.netnsOf
        ? Promise.resolve(DEFAULT_CONFIG.comm_port)
        : freeUdpPort();
    this.#port = await this.#portReady;
    const config: ChildConfig = {
      hostname: host,
      port: this.#port,
      heartbeatFreq: this.#options.heartbeatFreq,
      checkBeats: this.#options.checkBeats,
      logDir: this.logDir,
      debugLevel: this.#options.debugLevel ?? 6,
      multi: { ...this.#options.multi, ...multi },
      hold,
    };
    if (this.#options.bare) config.bare = true;
    if (this.#options.floor) config.floor = true;
    if (this.#options.work) config.work = this.#options.work;
    if (web) config.web = web;
    // Only a namespace cluster may hand the opt-in to a child; never let it leak from our env.
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env[LAN_NETNS_ENV];
    let launcher = this.#options.launcher ?? [];
    if (this.#options.netnsOf) {
      const netns = this.#options.netnsOf(host);
      launcher = ['ip', 'netns', 'exec', netns];
      env[LAN_NETNS_ENV] = netns;
    } else {
      config.broadcastIp = this.#options.broadcastIp;
      assertLoopbackConfig({ broadcast_ip: config.broadcastIp, ...config.multi });
    }
    const [execPath, ...launcherArgs] = launcher;
    const child = fork(CHILD_SCRIPT, [], {
      env: { ...env, PSM_CHILD: JSON.stringify(config) },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      // The launcher execs node in place (as `ip netns exec` does), so the pid, signals and IPC are node's.
      ...(execPath ? { execPath, execArgv: [...launcherArgs, process.execPath] } : {}),
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const member: Member = {
      host,
      child,
      state: null,
      learnedAt: 0,
      alive: true,
      exited: new Promise((resolve) =>
        child.once('exit', (code) => {
          member.alive = false;
          this.#check();
          resolve(code);
        }),
      ),
    };
    this.#members.set(host, member);
    child.on('message', (reports: ChildReport[]) => {
      for (const report of reports) {
        const previous = member.state;
        if (!previous || previous.masterHostname !== report.state.masterHostname || previous.master !== report.state.master) {
          member.learnedAt = report.t;
        }
        member.state = report.state;
        this.reports.push(report);
      }
      // Once per batch: a waiter sees a step's events all or none.
      this.#check();
    });
    await this.waitFor(() => member.state !== null || !member.alive, this.#options.startTimeoutMs ?? 20_000, `${host} to start`);
    if (!member.alive) throw new Error(`${host} exited during startup: ${stderr.trim().slice(-500)}`);
  }

  /** Start every held member at once; resolves when all have completed startup. Returns the release time. */
  async release(hosts: string[]): Promise<number> {
    const at = preciseNow();
    for (const host of hosts) this.command(host, { cmd: 'go' });
    await this.waitFor(
      () => hosts.every((host) => this.reports.some((r) => r.host === host && r.type === 'ready') || !this.#member(host).alive),
      20_000,
      `${hosts.join(', ')} to start`,
    );
    return at;
  }

  /** Send a signal; returns the precise time it was sent. */
  kill(host: string, signal: NodeJS.Signals = 'SIGKILL'): number {
    const member = this.#member(host);
    const at = preciseNow();
    member.child.kill(signal);
    if (signal === 'SIGKILL') member.alive = false;
    this.#check();
    return at;
  }

  /** Graceful stop (SIGTERM: pixl-server shuts its components down); resolves on exit. */
  async stop(host: string): Promise<number | null> {
    const member = this.#member(host);
    if (member.alive) member.child.kill('SIGTERM');
    return member.exited;
  }

  command(host: string, command: ChildCommand): void {
    this.#member(host).child.send(command);
  }

  /** Resource use and packet counters of a live member, as it reports them now. */
  async stats(host: string, timeoutMs = 5000): Promise<{ t: number; stats: ChildStats }> {
    const id = `s${++this.#commandIds}`;
    const match = (r: ChildReport): boolean => r.host === host && r.type === 'stats' && r.detail === id;
    this.command(host, { cmd: 'stats', id });
    await this.waitFor(() => this.reports.some(match), timeoutMs, `stats from ${host}`);
    const report = this.reports.find(match) as ChildReport;
    return { t: report.t, stats: report.stats as ChildStats };
  }

  /** `multi.send()` on a live member; resolves with the time it returned (throws with its error). */
  async send(host: string, target: string, type: string, payload: unknown, timeoutMs = 5000): Promise<number> {
    const id = `m${++this.#commandIds}`;
    const match = (r: ChildReport): boolean => r.host === host && r.type === 'sent' && r.detail === id;
    this.command(host, { cmd: 'send', id, target, type, payload });
    await this.waitFor(() => this.reports.some(match), timeoutMs, `${host} to send ${type}`);
    const report = this.reports.find(match) as ChildReport;
    if (report.error !== undefined) throw new Error(`${host}: send failed: ${report.error}`);
    return report.t;
  }

  /**
   * `multi.request()` on a live member (every member echoes `{ by, got }`); resolves with the
   * reply, when it was asked (here) and when the reply arrived (there): precise times, comparable across processes.
   */
  async request(
    host: string,
    target: string,
    type: string,
    payload: unknown,
    timeoutMs = 3000,
  ): Promise<{ answer: unknown; askedAt: number; answeredAt: number }> {
    const id = `r${++this.#commandIds}`;
    const match = (r: ChildReport): boolean => r.host === host && r.type === 'answered' && r.detail === id;
    const askedAt = preciseNow();
    this.command(host, { cmd: 'request', id, target, type, payload, timeoutMs });
    await this.waitFor(() => this.reports.some(match), timeoutMs + 5000, `${host}'s request ${type} to ${target}`);
    const report = this.reports.find(match) as ChildReport;
    if (report.error !== undefined) throw new Error(`${host}: request to ${target} failed: ${report.error}`);
    return { answer: report.answer, askedAt, answeredAt: report.t };
  }

  /** Receive-side faults on `host` (see the child's 'link' command); resolves once they apply. */
  async link(host: string, drop: string[], delay: Record<string, number> = {}, timeoutMs = 5000): Promise<void> {
    const before = this.reports.filter((r) => r.host === host && r.type === 'linked').length;
    this.command(host, { cmd: 'link', drop, delay });
    await this.waitFor(
      () => this.reports.filter((r) => r.host === host && r.type === 'linked').length > before,
      timeoutMs,
      `${host} to apply its link faults`,
    );
  }

  /** Cut `a` and `b` off from each other (both ways), or heal them (`cut` false); faults on other links of theirs are replaced. */
  async cut(a: string, b: string, cut = true): Promise<void> {
    await Promise.all([this.link(a, cut ? [b] : []), this.link(b, cut ? [a] : [])]);
  }

  /** A config reload of the MultiServer section on `host`; resolves once applied. */
  async reload(host: string, multi: Record<string, unknown>, timeoutMs = 5000): Promise<number> {
    if (!this.#options.netnsOf) assertLoopbackConfig({ broadcast_ip: this.#options.broadcastIp, ...this.#options.multi, ...multi });
    const before = this.reports.filter((r) => r.host === host && r.type === 'reloaded').length;
    this.command(host, { cmd: 'reload', multi });
    await this.waitFor(
      () => this.reports.filter((r) => r.host === host && r.type === 'reloaded').length > before,
      timeoutMs,
      `${host} to reload`,
    );
    return (this.reports.filter((r) => r.host === host && r.type === 'reloaded').at(-1) as ChildReport).t;
  }

  async stopAll(): Promise<void> {
    await Promise.all(
      [...this.#members.values()].map(async (member) => {
        if (member.alive) member.child.kill('SIGTERM');
        const timer = setTimeout(() => member.child.kill('SIGKILL'), 5000);
        await member.exited;
        clearTimeout(timer);
      }),
    );
    rmSync(this.logDir, { recursive: true, force: true });
  }

  live(): string[] {
    return [...this.#members.values()].filter((m) => m.alive).map((m) => m.host);
  }

  /** The process id of a member (under a launcher that execs in place, node's). */
  pid(host: string): number | undefined {
    return this.#member(host).child.pid;
  }

  state(host: string): ChildState | null {
    return this.#member(host).state;
  }

  /** The master every live member names, when exactly one of them is master; else null. */
  agreedMaster(): string | null {
    const live = [...this.#members.values()].filter((m) => m.alive);
    if (live.length === 0) return null;
    const name = live[0]?.state?.masterHostname;
    if (!name) return null;
    let masters = 0;
    for (const member of live) {
      if (member.state?.masterHostname !== name) return null;
      if (member.state.master) masters++;
    }
    return masters === 1 && this.#members.get(name)?.alive ? name : null;
  }

  /** Resolves when `predicate` holds (re-checked on every report); rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        predicate,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Wait until all live members agree; returns the master and the time agreement was observed. */
  async waitAgreed(timeoutMs: number, expected?: string): Promise<{ master: string; at: number }> {
    const ok = (): boolean => {
      const master = this.agreedMaster();
      return master !== null && (expected === undefined || master === expected);
    };
    await this.waitFor(ok, timeoutMs, expected ? `agreement on ${expected}` : 'agreement on a master');
    return { master: this.agreedMaster() as string, at: this.#agreementTime() };
  }

  /**
   * The most members that reported themselves master at the same moment since `since`
   * (epoch ms), replaying every report in time order. Each report carries the member's
   * whole state, so a role change cannot slip between two reports.
   */
  maxConcurrentMasters(since = 0): number {
    const isMaster = new Map<string, boolean>();
    let max = 0;
    for (const report of [...this.reports].sort((x, y) => x.t - y.t)) {
      isMaster.set(report.host, report.state.master && report.type !== 'shutdown');
      if (report.t < since) continue;
      let count = 0;
      for (const value of isMaster.values()) if (value) count++;
      max = Math.max(max, count);
    }
    return max;
  }

  /** When the last live member came to its present view of the master. */
  #agreementTime(): number {
    let latest = 0;
    for (const member of this.#members.values()) {
      if (member.alive) latest = Math.max(latest, member.learnedAt);
    }
    return latest;
  }

  #member(host: string): Member {
    const member = this.#members.get(host);
    if (!member) throw new Error(`no member ${host}`);
    return member;
  }

  #check(): void {
    for (const waiter of [...this.#waiters]) {
      if (waiter.predicate()) {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        waiter.resolve();
      }
    }
  }
}
