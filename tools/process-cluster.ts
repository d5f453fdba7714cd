/**
 * Cluster members as real processes, in one of two modes:
 *  - `ProcessCluster`: whole pixl-server processes with the component (tools/child.ts), in
 *    either election mode by their section: on loopback (one per hostname, all on one port
 *    with address reuse, broadcast 127.255.255.255), for the demo, the socket and etcd-mode
 *    tests and the bench; or, for the LAN tests only, one process per test network namespace
 *    with the default broadcast computation;
 *  - `LeaseProcessCluster`: the lease election alone, behind the component's driver, against a
 *    real etcd (tools/lease-child.ts), so tests signal the election itself and run the fencing
 *    example.
 * Both are a cluster of child processes as tools/member-processes.ts has it (as is the etcd
 * fault suite's, tools/etcd-fault-cluster.ts): members and their views, exits, the agreement
 * rule, and waiting, which is always "until this is observed, or fail after a deadline":
 * nothing here sleeps and hopes.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CHILD_SCRIPT, type ChildCommand, type ChildConfig, type ChildReport, type ChildState, type ChildStats } from './child';
import { DEFAULT_CONFIG } from '../src/config';
import { assertLoopback, assertLoopbackConfig, freeUdpPort } from './loopback';
import { LEASE_CHILD_SCRIPT, type LeaseChildCommand, type LeaseChildConfig, type LeaseChildReport } from './lease-child';
import { MemberProcesses, StagedProcesses, type MemberProcess } from './member-processes';
import { LAN_NETNS_ENV } from './netns';
import { preciseNow } from './waiters';

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

interface ComponentMember extends MemberProcess {
  state: ChildState | null;
  /** When this member's view of the master last changed. */
  learnedAt: number;
}

/** pixl-server processes with the component, in either election mode (by their section). */
export class ProcessCluster extends MemberProcesses<ComponentMember, ChildReport, ChildCommand> {
  readonly logDir: string;
  #options: ProcessClusterOptions;
  #port = 0;
  #commandIds = 0;
  #portReady: Promise<number> | null = null;

  constructor(options: ProcessClusterOptions) {
    super();
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
    const member = this.spawn(host, child, { state: null, learnedAt: 0 });
    await this.waitFor(() => member.state !== null || !member.alive, this.#options.startTimeoutMs ?? 20_000, `${host} to start`);
    if (!member.alive) throw new Error(`${host} exited during startup: ${stderr.trim().slice(-500)}`);
  }

  /** Start every held member at once; resolves when all have completed startup. Returns the release time. */
  async release(hosts: string[]): Promise<number> {
    const at = preciseNow();
    for (const host of hosts) this.command(host, { cmd: 'go' });
    await this.waitFor(
      () => hosts.every((host) => this.reports.some((r) => r.host === host && r.type === 'ready') || !this.member(host).alive),
      20_000,
      `${hosts.join(', ')} to start`,
    );
    return at;
  }

  /** Send a signal; returns the precise time it was sent. */
  kill(host: string, signal: NodeJS.Signals = 'SIGKILL'): number {
    const member = this.member(host);
    const at = preciseNow();
    member.child.kill(signal);
    if (signal === 'SIGKILL') member.alive = false;
    this.changed();
    return at;
  }

  /** Graceful stop (SIGTERM: pixl-server shuts its components down); resolves on exit. */
  async stop(host: string): Promise<number | null> {
    const member = this.member(host);
    if (member.alive) member.child.kill('SIGTERM');
    return member.exited;
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
      [...this.byHost.values()].map(async (member) => {
        if (member.alive) member.child.kill('SIGTERM');
        const timer = setTimeout(() => member.child.kill('SIGKILL'), 5000);
        await member.exited;
        clearTimeout(timer);
      }),
    );
    rmSync(this.logDir, { recursive: true, force: true });
  }

  /** The process id of a member (under a launcher that execs in place, node's). */
  pid(host: string): number | undefined {
    return this.member(host).child.pid;
  }

  state(host: string): ChildState | null {
    return this.member(host).state;
  }

  /** Wait until all live members agree; returns the master and the time agreement was observed. */
  async waitAgreed(timeoutMs: number, expected?: string): Promise<{ master: string; at: number }> {
    const master = await this.agreed(timeoutMs, expected);
    return { master, at: this.#agreementTime() };
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
    for (const member of this.byHost.values()) {
      if (member.alive) latest = Math.max(latest, member.learnedAt);
    }
    return latest;
  }

  protected onReports(member: ComponentMember, reports: ChildReport[]): void {
    for (const report of reports) {
      const previous = member.state;
      if (!previous || previous.masterHostname !== report.state.masterHostname || previous.master !== report.state.master) {
        member.learnedAt = report.t;
      }
      member.state = report.state;
      // Every report carries the whole state, its role included.
      this.noteRole(member, report.state.master, report.state.term);
      member.masterHostname = report.state.masterHostname;
      this.reports.push(report);
    }
  }

  protected onExit(): void {
    // A pixl-server member reports its own 'shutdown'; a killed one says nothing more.
  }
}

export type LeaseMember = MemberProcess;

/** The lease election alone, in processes of its own (no pixl-server), against a real etcd. */
export class LeaseProcessCluster extends StagedProcesses<LeaseMember, LeaseChildReport, LeaseChildCommand> {
  #base: Omit<LeaseChildConfig, 'hostname'>;

  constructor(base: Omit<LeaseChildConfig, 'hostname'>) {
    super();
    this.#base = base;
  }

  /**
   * Fork a server and wait until it runs; with `defer`, until it is loaded and waiting for
   * `start()` (so that servers can start together).
   */
  async add(host: string, extra: Partial<LeaseChildConfig> = {}, defer = false): Promise<LeaseMember> {
    const config: LeaseChildConfig = { ...this.#base, ...extra, hostname: host };
    const member = await this.fork(LEASE_CHILD_SCRIPT, host, config, {});
    if (!defer) await this.start([host]);
    return member;
  }

  protected onReports(member: LeaseMember, reports: LeaseChildReport[]): void {
    for (const report of reports) {
      this.reports.push(report);
      if (report.kind !== 'event') continue;
      const event = report.event;
      if (event.type === 'master') this.noteRole(member, true, event.term);
      else if (event.type === 'slave') this.noteRole(member, false);
      else if (event.type === 'masterchange') {
        member.masterHostname = event.hostname;
      }
      if (report.term > member.term) member.term = report.term;
    }
  }

  async shutdown(host: string): Promise<void> {
    const member = this.byHost.get(host);
    if (!member || !member.alive) return;
    member.child.send({ cmd: 'shutdown' } satisfies LeaseChildCommand);
    await member.exited;
  }

  /**
   * Every mastership as an interval of wall time, per host, from the events: [master, slave
   * or exit). Two intervals of different hosts must never overlap.
   */
  masterships(until: number): Array<{ host: string; term: number; from: number; to: number }> {
    const open = new Map<string, { term: number; from: number }>();
    const out: Array<{ host: string; term: number; from: number; to: number }> = [];
    for (const report of this.reports) {
      if (report.kind === 'down') {
        const started = open.get(report.host);
        if (started) out.push({ host: report.host, ...started, to: report.t });
        open.delete(report.host);
      }
      if (report.kind !== 'event') continue;
      if (report.event.type === 'master') open.set(report.host, { term: report.event.term, from: report.t });
      if (report.event.type === 'slave') {
        const started = open.get(report.host);
        if (started) out.push({ host: report.host, ...started, to: report.t });
        open.delete(report.host);
      }
    }
    for (const [host, started] of open) out.push({ host, ...started, to: until });
    return out;
  }
}
