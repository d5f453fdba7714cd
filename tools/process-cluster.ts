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
 * Both share what a cluster of child processes is (`MemberProcesses`): members and their
 * views, exits, the agreement rule, and waiting, which is always "until this is observed, or
 * fail after a deadline" (tools/waiters.ts): nothing here sleeps and hopes.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CHILD_SCRIPT, type ChildCommand, type ChildConfig, type ChildReport, type ChildState, type ChildStats } from './child';
import { DEFAULT_CONFIG } from '../src/config';
import { assertLoopback, assertLoopbackConfig, freeUdpPort } from './loopback';
import { LEASE_CHILD_SCRIPT, type LeaseChildCommand, type LeaseChildConfig, type LeaseChildReport } from './lease-child';
import { LAN_NETNS_ENV } from './netns';
import { preciseNow, Waiters } from './waiters';

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

/** One member process and its view of the election, as its reports tell it. */
export interface MemberProcess {
  host: string;
  child: ChildProcess;
  alive: boolean;
  /** Whether it says it is master. */
  master: boolean;
  /** The master it names ('' for none). */
  masterHostname: string;
  term: number;
}

/**
 * A cluster of child processes that report to us over IPC: what both modes share. A mode
 * forks its children (`adopt`), turns their reports into views (`onReports`), and says what
 * a member's exit means (`onExit`).
 */
abstract class MemberProcesses<Member extends MemberProcess, Report> {
  readonly reports: Report[] = [];
  protected readonly byHost = new Map<string, Member>();
  readonly #waiters = new Waiters({ describe: () => this.describe() });

  /** Resolves when `predicate` holds (re-checked on every batch of reports and every exit); rejects after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
    return this.#waiters.waitFor(predicate, timeoutMs, what);
  }

  /** Every member's view, for a timeout's message. */
  describe(): string {
    const views = [...this.byHost.values()]
      .map((m) => `${m.host}${m.alive ? '' : '(dead)'}:${m.master ? 'M' : 's'}→${m.masterHostname || "''"}@${m.term}`)
      .join(' ');
    return `views: ${views}`;
  }

  live(): string[] {
    return [...this.byHost.values()].filter((m) => m.alive).map((m) => m.host);
  }

  /**
   * The master every live member names, which alone of them says it is master; else null
   * (also with no member, or none naming a master yet).
   */
  agreedMaster(): string | null {
    const live = [...this.byHost.values()].filter((m) => m.alive);
    const name = live[0]?.masterHostname ?? '';
    if (!name || live.some((m) => m.masterHostname !== name)) return null;
    const masters = live.filter((m) => m.master);
    return masters.length === 1 && masters[0]?.host === name ? name : null;
  }

  /** Take a forked child as a member: its reports (one or a batch per message) and its exit. */
  protected adopt(member: Member, exited: (code: number | null) => void): void {
    this.byHost.set(member.host, member);
    member.child.on('message', (message: Report | Report[]) => {
      this.onReports(member, Array.isArray(message) ? message : [message]);
      // Once per message: a waiter sees a step's events all or none.
      this.#waiters.check();
    });
    member.child.once('exit', (code) => {
      member.alive = false;
      member.master = false;
      this.onExit(member);
      this.#waiters.check();
      exited(code);
    });
  }

  /** Something the waits may depend on changed outside a report (a signal sent). */
  protected changed(): void {
    this.#waiters.check();
  }

  protected member(host: string): Member {
    const member = this.byHost.get(host);
    if (!member) throw new Error(`no member ${host}`);
    return member;
  }

  protected abstract onReports(member: Member, reports: Report[]): void;
  protected abstract onExit(member: Member): void;
}

interface ComponentMember extends MemberProcess {
  state: ChildState | null;
  /** When this member's view of the master last changed. */
  learnedAt: number;
  exited: Promise<number | null>;
}

/** pixl-server processes with the component, in either election mode (by their section). */
export class ProcessCluster extends MemberProcesses<ComponentMember, ChildReport> {
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
    let exited: (code: number | null) => void = () => undefined;
    const member: ComponentMember = {
      host,
      child,
      state: null,
      learnedAt: 0,
      alive: true,
      master: false,
      masterHostname: '',
      term: 0,
      exited: new Promise((resolve) => (exited = resolve)),
    };
    this.adopt(member, exited);
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

  command(host: string, command: ChildCommand): void {
    this.member(host).child.send(command);
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
      member.master = report.state.master;
      member.masterHostname = report.state.masterHostname;
      member.term = report.state.term;
      this.reports.push(report);
    }
  }

  protected onExit(): void {
    // A pixl-server member reports its own 'shutdown'; a killed one says nothing more.
  }
}

export interface LeaseMember extends MemberProcess {
  exited: Promise<void>;
}

/** The lease election alone, in processes of its own (no pixl-server), against a real etcd. */
export class LeaseProcessCluster extends MemberProcesses<LeaseMember, LeaseChildReport> {
  #base: Omit<LeaseChildConfig, 'hostname'>;

  constructor(base: Omit<LeaseChildConfig, 'hostname'>) {
    super();
    this.#base = base;
  }

  get members(): ReadonlyMap<string, LeaseMember> {
    return this.byHost;
  }

  /**
   * Fork a server and wait until it runs; with `defer`, until it is loaded and waiting for
   * `start()` (so that servers can start together: loading etcd3 takes a varying while).
   */
  async add(host: string, extra: Partial<LeaseChildConfig> = {}, defer = false): Promise<LeaseMember> {
    const config: LeaseChildConfig = { ...this.#base, ...extra, hostname: host };
    const child = fork(LEASE_CHILD_SCRIPT, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let exited: () => void = () => undefined;
    const member: LeaseMember = {
      host,
      child,
      alive: true,
      exited: new Promise((resolve) => (exited = resolve)),
      master: false,
      masterHostname: '',
      term: 0,
    };
    this.adopt(member, () => exited());
    await this.waitFor(() => this.reports.some((r) => r.kind === 'loaded' && r.host === host), 15_000, `${host} loaded`);
    if (!defer) await this.start([host]);
    return member;
  }

  /** Start servers added with `defer`, all at once. */
  async start(hosts: string[]): Promise<void> {
    for (const host of hosts) this.command(host, { cmd: 'start' });
    await this.waitFor(
      () => hosts.every((host) => this.reports.some((r) => r.kind === 'ready' && r.host === host)),
      5000,
      `${hosts.join(', ')} started`,
    );
  }

  protected onReports(member: LeaseMember, reports: LeaseChildReport[]): void {
    for (const report of reports) {
      this.reports.push(report);
      if (report.kind !== 'event') continue;
      const event = report.event;
      if (event.type === 'master') {
        member.master = true;
        member.term = event.term;
      } else if (event.type === 'slave') {
        member.master = false;
      } else if (event.type === 'masterchange') {
        member.masterHostname = event.hostname;
      }
      if (report.term > member.term) member.term = report.term;
    }
  }

  protected onExit(member: LeaseMember): void {
    this.reports.push({ kind: 'down', host: member.host, t: preciseNow() });
  }

  async agreed(timeoutMs: number, want?: string): Promise<string> {
    await this.waitFor(
      () => this.agreedMaster() !== null && (want === undefined || this.agreedMaster() === want),
      timeoutMs,
      `agreement${want ? ` on ${want}` : ''}`,
    );
    return this.agreedMaster() as string;
  }

  command(host: string, command: LeaseChildCommand): void {
    this.byHost.get(host)?.child.send(command);
  }

  signal(host: string, signal: NodeJS.Signals): void {
    this.byHost.get(host)?.child.kill(signal);
  }

  async kill(host: string): Promise<void> {
    const member = this.byHost.get(host);
    if (!member || !member.alive) return;
    member.child.kill('SIGKILL');
    await member.exited;
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

  async close(): Promise<void> {
    await Promise.all([...this.byHost.keys()].map((host) => this.kill(host)));
  }
}
