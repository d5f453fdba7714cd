/**
 * Lease-election servers as real processes (tools/lease-child.ts) against a real etcd, for
 * the etcd tests and the bench. Waiting is always "until observed, or fail after a deadline".
 */
import { fork, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { LEASE_CHILD_SCRIPT, type LeaseChildCommand, type LeaseChildConfig, type LeaseChildReport } from './lease-child';

export interface LeaseMember {
  host: string;
  child: ChildProcess;
  alive: boolean;
  exited: Promise<void>;
  /** Its view: master flag and master hostname, from its events. */
  master: boolean;
  masterHostname: string;
  term: number;
}

type Waiter = { predicate: () => boolean; resolve: () => void };

export class LeaseProcessCluster {
  readonly reports: LeaseChildReport[] = [];
  readonly members = new Map<string, LeaseMember>();
  #base: Omit<LeaseChildConfig, 'hostname'>;
  #waiters: Waiter[] = [];

  constructor(base: Omit<LeaseChildConfig, 'hostname'>) {
    this.#base = base;
  }

  /**
   * Fork a server and wait until it runs; with `defer`, until it is loaded and waiting for
   * `start()` (so that servers can start together: loading etcd3 takes a varying while).
   */
  async add(host: string, extra: Partial<LeaseChildConfig> = {}, defer = false): Promise<LeaseMember> {
    const config: LeaseChildConfig = { ...this.#base, ...extra, hostname: host };
    const child = fork(LEASE_CHILD_SCRIPT, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const member: LeaseMember = {
      host,
      child,
      alive: true,
      exited: new Promise((resolve) => child.once('exit', () => resolve())),
      master: false,
      masterHostname: '',
      term: 0,
    };
    this.members.set(host, member);
    child.on('message', (report: LeaseChildReport) => this.#onReport(member, report));
    child.once('exit', () => {
      this.reports.push({ kind: 'down', host, t: performance.timeOrigin + performance.now() });
      member.alive = false;
      member.master = false;
      this.#check();
    });
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

  #onReport(member: LeaseMember, report: LeaseChildReport): void {
    this.reports.push(report);
    if (report.kind === 'event') {
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
    this.#check();
  }

  #check(): void {
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.predicate()) return true;
      waiter.resolve();
      return false;
    });
  }

  waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
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
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; views: ${this.describe()}`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  describe(): string {
    return [...this.members.values()]
      .map((m) => `${m.host}${m.alive ? '' : '(dead)'}:${m.master ? 'M' : 's'}→${m.masterHostname || "''"}`)
      .join(' ');
  }

  /** The master every live member names, which alone says it is master; else null. */
  agreedMaster(): string | null {
    const live = [...this.members.values()].filter((m) => m.alive);
    const name = live[0]?.masterHostname ?? '';
    if (!name || live.some((m) => m.masterHostname !== name)) return null;
    const masters = live.filter((m) => m.master);
    return masters.length === 1 && masters[0]?.host === name ? name : null;
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
    this.members.get(host)?.child.send(command);
  }

  signal(host: string, signal: NodeJS.Signals): void {
    this.members.get(host)?.child.kill(signal);
  }

  async kill(host: string): Promise<void> {
    const member = this.members.get(host);
    if (!member || !member.alive) return;
    member.child.kill('SIGKILL');
    await member.exited;
  }

  async shutdown(host: string): Promise<void> {
    const member = this.members.get(host);
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
    await Promise.all([...this.members.keys()].map((host) => this.kill(host)));
  }
}
