/**
 * The etcd fault suite's servers (tools/etcd-child.ts, one process each, on 127.0.0.x) and
 * the checks every fault must pass, read from their reports:
 *  - no two masters at once (intervals from `master` to `slave` or exit, per host);
 *  - terms unique and increasing (a server taking back its own term after a lapse of its
 *    lease, with no other master in between, is the same tenure);
 *  - fenced writes: in etcd's own order (the revision of each accepted write), their terms
 *    never go down: no write of a deposed master is accepted after its successor's;
 *  - no acknowledged checkpoint lost: every master resumes from at least the newest
 *    checkpoint etcd acknowledged before it became master.
 * Waiting is always "until observed, or fail after a deadline".
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ETCD_CHILD_SCRIPT, type EtcdChildCommand, type EtcdChildConfig, type EtcdChildReport } from './etcd-child';
import { assertLoopback, freeUdpPort } from './loopback';
import { preciseNow, Waiters } from './waiters';

export interface FaultMember {
  host: string;
  child: ChildProcess;
  alive: boolean;
  exited: Promise<void>;
  /** It reported `master` or `slave` (a server's first `slave` may come a report after the `masterchange` that names its master). */
  roleKnown: boolean;
  master: boolean;
  masterHostname: string;
  term: number;
  port: number;
  iid: string;
}

export { preciseNow };

export class EtcdFaultCluster {
  readonly reports: EtcdChildReport[] = [];
  readonly members = new Map<string, FaultMember>();
  readonly logDir = mkdtempSync(path.join(os.tmpdir(), 'psm-etcd-faults-'));
  #base: Omit<EtcdChildConfig, 'hostname' | 'bindIp' | 'port' | 'logDir'>;
  readonly #waiters = new Waiters({ describe: () => `views: ${this.describe()}` });
  #signals: Array<{ host: string; signal: NodeJS.Signals; t: number }> = [];
  /** When etcd's history was rewritten (restore, wipe): revisions before and after are not comparable. */
  #rewrites: number[] = [];

  constructor(base: Omit<EtcdChildConfig, 'hostname' | 'bindIp' | 'port' | 'logDir'>) {
    this.#base = base;
  }

  /** Fork servers (each on its own 127.0.0.x, all on one free port) and start them together. */
  async start(hosts: string[]): Promise<void> {
    const port = await freeUdpPort();
    await Promise.all(
      hosts.map(async (host, i) => {
        const bindIp = `127.0.0.${i + 2}`;
        assertLoopback(bindIp);
        const config: EtcdChildConfig = { ...this.#base, hostname: host, bindIp, port, logDir: this.logDir };
        const child = fork(ETCD_CHILD_SCRIPT, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        const member: FaultMember = {
          host,
          child,
          alive: true,
          exited: new Promise((resolve) => child.once('exit', () => resolve())),
          roleKnown: false,
          master: false,
          masterHostname: '',
          term: 0,
          port: 0,
          iid: '',
        };
        this.members.set(host, member);
        child.on('message', (report: EtcdChildReport) => this.#onReport(member, report));
        child.once('exit', () => {
          member.alive = false;
          member.master = false;
          this.reports.push({ kind: 'down', host, t: preciseNow() });
          this.#check();
        });
        await this.waitFor(() => this.reports.some((r) => r.kind === 'loaded' && r.host === host), 20_000, `${host} loaded`);
      }),
    );
    for (const host of hosts) this.command(host, { cmd: 'start' });
    await this.waitFor(() => hosts.every((host) => (this.members.get(host)?.iid ?? '') !== ''), 20_000, 'every server started');
  }

  #onReport(member: FaultMember, report: EtcdChildReport): void {
    this.reports.push(report);
    switch (report.kind) {
      case 'master':
        member.roleKnown = true;
        member.master = true;
        member.term = report.term;
        break;
      case 'slave':
        member.roleKnown = true;
        member.master = false;
        break;
      case 'masterchange':
        member.masterHostname = report.master;
        member.term = report.term;
        break;
      case 'info':
        member.port = report.port;
        member.iid = report.iid;
        break;
      default:
        break;
    }
    this.#check();
  }

  #check(): void {
    this.#waiters.check();
  }

  waitFor(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return this.#waiters.waitFor(predicate, timeoutMs, what);
  }

  describe(): string {
    return [...this.members.values()]
      .map((m) => `${m.host}${m.alive ? '' : '(dead)'}:${m.master ? 'M' : 's'}→${m.masterHostname || "''"}@${m.term}`)
      .join(' ');
  }

  /**
   * The master every live server names, which alone says it is master, with one term; else null.
   * Every live server must have reported its role too: a test that reads what follows the
   * agreement must not find the `slave` event that completed it.
   */
  agreedMaster(): string | null {
    const live = [...this.members.values()].filter((m) => m.alive);
    const name = live[0]?.masterHostname ?? '';
    if (!name || live.some((m) => m.masterHostname !== name || !m.roleKnown)) return null;
    const masters = live.filter((m) => m.master);
    if (masters.length !== 1 || masters[0]?.host !== name) return null;
    const term = masters[0].term;
    return live.every((m) => m.term === term) ? name : null;
  }

  async agreed(timeoutMs: number, want?: string): Promise<string> {
    await this.waitFor(
      () => this.agreedMaster() !== null && (want === undefined || this.agreedMaster() === want),
      timeoutMs,
      `agreement${want ? ` on ${want}` : ''}`,
    );
    return this.agreedMaster() as string;
  }

  command(host: string, command: EtcdChildCommand): void {
    const member = this.members.get(host);
    if (member?.alive) member.child.send(command);
  }

  /** SIGSTOP / SIGCONT, recorded: a stopped process does nothing, so its mastership ends there for the checks. */
  signal(host: string, signal: NodeJS.Signals): void {
    this.#signals.push({ host, signal, t: preciseNow() });
    this.members.get(host)?.child.kill(signal);
  }

  /** etcd is about to be restored or wiped: its revisions start again (the stopped members answer nothing until then). */
  rewriting(): void {
    this.#rewrites.push(preciseNow());
  }

  /** Role events (master, slave, masterchange) of live servers since `since`. */
  /**
   * Role events received after the first `received` reports: what followed an action taken
   * when that many had arrived. Not by timestamp: the event that completed an agreement is often
   * a fraction of a millisecond before the next action, closer than two processes' clocks agree.
   */
  roleEventsAfter(received: number): EtcdChildReport[] {
    return this.reports.slice(received).filter((r) => r.kind === 'master' || r.kind === 'slave' || r.kind === 'masterchange');
  }

  roleEvents(since: number): EtcdChildReport[] {
    return this.reports.filter((r) => (r.kind === 'master' || r.kind === 'slave' || r.kind === 'masterchange') && r.t >= since);
  }

  /** The checks every fault must pass, over the whole history so far. Throws with what broke. */
  verify(): { masters: number; writes: number; accepted: number; checkpoints: number } {
    const problems: string[] = [];
    const events = [...this.reports].sort((a, b) => a.t - b.t);
    // No two masters at once.
    const open = new Map<string, number>();
    const spans: Array<{ host: string; from: number; to: number }> = [];
    for (const report of events) {
      if (report.kind === 'master') open.set(report.host, open.get(report.host) ?? report.t);
      if (report.kind === 'slave' || report.kind === 'down') {
        const from = open.get(report.host);
        if (from !== undefined) spans.push({ host: report.host, from, to: report.t });
        open.delete(report.host);
      }
    }
    const end = preciseNow();
    for (const [host, from] of open) spans.push({ host, from, to: end });
    // A process stopped (SIGSTOP) acts on nothing: its mastership ends when it stops. When it
    // resumes, the first thing it reports must be `slave` (it was past its lease's deadline).
    for (const stop of this.#signals.filter((s) => s.signal === 'SIGSTOP')) {
      for (const span of spans) if (span.host === stop.host && span.from <= stop.t && stop.t < span.to) span.to = stop.t;
      const resumed = this.#signals.find((s) => s.host === stop.host && s.signal === 'SIGCONT' && s.t >= stop.t);
      const wasMaster = spans.some((span) => span.host === stop.host && span.to === stop.t);
      if (!resumed || !wasMaster) continue;
      // A write or checkpoint sent before the stop and answered after it was etcd's to fence, and
      // the revision order below judges it; what counts here is one the process began after resuming.
      const first = events.find(
        (r) =>
          r.host === stop.host &&
          r.t >= resumed.t &&
          (r.kind === 'master' || r.kind === 'slave' || ((r.kind === 'write' || r.kind === 'checkpoint') && r.ok && r.t0 >= resumed.t)),
      );
      if (first && first.kind !== 'slave') problems.push(`${stop.host} resumed from SIGSTOP and reported ${first.kind} before slave`);
    }
    for (const a of spans)
      for (const b of spans)
        if (a.host < b.host && a.from < b.to && b.from < a.to)
          problems.push(`masters overlap: ${a.host} ${fmt(a)} and ${b.host} ${fmt(b)}`);
    // Terms unique and increasing.
    let highest = 0;
    let holder = '';
    let lastMaster = '';
    const masters = events.filter((r): r is Extract<EtcdChildReport, { kind: 'master' }> => r.kind === 'master');
    for (const report of masters) {
      const resumed = report.term === highest && report.host === holder && lastMaster === report.host;
      if (report.term < highest || (report.term === highest && !resumed))
        problems.push(`${report.host} became master with term ${report.term}, not above ${highest} (${holder})`);
      if (report.term >= highest) {
        highest = report.term;
        holder = report.host;
      }
      lastMaster = report.host;
    }
    // Fenced writes, in etcd's order: terms never go down.
    const writes = this.reports.filter((r): r is Extract<EtcdChildReport, { kind: 'write' }> => r.kind === 'write');
    const accepted = writes.filter((w) => w.ok);
    const epochOf = (t: number): number => this.#rewrites.filter((at) => at <= t).length;
    for (let epoch = 0; epoch <= this.#rewrites.length; epoch++) {
      const inEpoch = accepted.filter((w) => epochOf(w.t) === epoch).sort((a, b) => a.revision - b.revision);
      for (let i = 1; i < inEpoch.length; i++) {
        const before = inEpoch[i - 1] as (typeof inEpoch)[number];
        const after = inEpoch[i] as (typeof inEpoch)[number];
        if (after.term < before.term && after.revision > before.revision)
          problems.push(
            `a write of term ${after.term} (${after.host}) was accepted at revision ${after.revision}, after one of term ${before.term} at ${before.revision}`,
          );
      }
    }
    // No acknowledged checkpoint lost.
    const acked = this.reports.filter((r): r is Extract<EtcdChildReport, { kind: 'checkpoint' }> => r.kind === 'checkpoint' && r.ok);
    for (const report of masters) {
      const newest = Math.max(0, ...acked.filter((a) => a.t < report.t).map((a) => a.n));
      const got = (report.checkpoint as { n?: number } | null)?.n ?? 0;
      if (got < newest)
        problems.push(`${report.host} became master (term ${report.term}) with checkpoint ${got}, but ${newest} was acknowledged before`);
    }
    if (problems.length > 0) throw new Error(problems.slice(0, 10).join('\n'));
    return { masters: masters.length, writes: writes.length, accepted: accepted.length, checkpoints: acked.length };
  }

  async close(): Promise<void> {
    for (const member of this.members.values()) if (member.alive) member.child.kill('SIGKILL');
    await Promise.all([...this.members.values()].map((m) => m.exited));
    rmSync(this.logDir, { recursive: true, force: true });
  }
}

function fmt(span: { from: number; to: number }): string {
  return `[${(span.from % 100_000).toFixed(0)}, ${(span.to % 100_000).toFixed(0)})`;
}
