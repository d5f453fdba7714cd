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
 * Spawning, reports, waits and the agreement rule are every process cluster's
 * (tools/member-processes.ts): failures are judged by the reports received after a fault.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ETCD_CHILD_SCRIPT, type EtcdChildCommand, type EtcdChildConfig, type EtcdChildReport } from './etcd-child';
import { assertLoopback, freeUdpPort } from './loopback';
import { StagedProcesses, type MemberProcess } from './member-processes';
import { preciseNow } from './waiters';

export interface FaultMember extends MemberProcess {
  port: number;
  iid: string;
}

export { preciseNow };

/** Agreement also needs one term on every live server (tools/member-processes.ts has the rest of the rule). */
export class EtcdFaultCluster extends StagedProcesses<FaultMember, EtcdChildReport, EtcdChildCommand> {
  readonly logDir = mkdtempSync(path.join(os.tmpdir(), 'psm-etcd-faults-'));
  #base: Omit<EtcdChildConfig, 'hostname' | 'bindIp' | 'port' | 'logDir'>;
  /** When etcd's history was rewritten (restore, wipe): revisions before and after are not comparable. */
  #rewrites: number[] = [];

  constructor(base: Omit<EtcdChildConfig, 'hostname' | 'bindIp' | 'port' | 'logDir'>) {
    super({ oneTerm: true });
    this.#base = base;
  }

  /** Fork servers (each on its own 127.0.0.x, all on one free port) and start them together. */
  override async start(hosts: string[]): Promise<void> {
    const port = await freeUdpPort();
    await Promise.all(
      hosts.map((host, i) => {
        const bindIp = `127.0.0.${i + 2}`;
        assertLoopback(bindIp);
        const config: EtcdChildConfig = { ...this.#base, hostname: host, bindIp, port, logDir: this.logDir };
        return this.fork(ETCD_CHILD_SCRIPT, host, config, { port: 0, iid: '' });
      }),
    );
    await super.start(hosts, 20_000);
    await this.waitFor(() => hosts.every((host) => (this.members.get(host)?.iid ?? '') !== ''), 20_000, 'every server started');
  }

  protected onReports(member: FaultMember, reports: EtcdChildReport[]): void {
    for (const report of reports) {
      this.reports.push(report);
      switch (report.kind) {
        case 'master':
          this.noteRole(member, true, report.term);
          break;
        case 'slave':
          this.noteRole(member, false);
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
    }
  }

  /** etcd is about to be restored or wiped: its revisions start again (the stopped members answer nothing until then). */
  rewriting(): void {
    this.#rewrites.push(preciseNow());
  }

  /**
   * Role events received after the first `received` reports: what followed an action taken
   * when that many had arrived. Not by timestamp: the event that completed an agreement is often
   * a fraction of a millisecond before the next action, closer than two processes' clocks agree.
   */
  roleEventsAfter(received: number): EtcdChildReport[] {
    return this.reports.slice(received).filter((r) => r.kind === 'master' || r.kind === 'slave' || r.kind === 'masterchange');
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
    for (const stop of this.signals.filter((s) => s.signal === 'SIGSTOP')) {
      for (const span of spans) if (span.host === stop.host && span.from <= stop.t && stop.t < span.to) span.to = stop.t;
      const resumed = this.signals.find((s) => s.host === stop.host && s.signal === 'SIGCONT' && s.t >= stop.t);
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

  override async close(): Promise<void> {
    await super.close();
    rmSync(this.logDir, { recursive: true, force: true });
  }
}

function fmt(span: { from: number; to: number }): string {
  return `[${(span.from % 100_000).toFixed(0)}, ${(span.to % 100_000).toFixed(0)})`;
}
