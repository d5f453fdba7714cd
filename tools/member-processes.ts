/**
 * What every process-cluster tool is: child processes that report to us over IPC
 * (tools/process-cluster.ts: the component's processes and the lease election's;
 * tools/etcd-fault-cluster.ts: the etcd fault suite's). One way to spawn a member, take its
 * reports, wait, and judge agreement, so a fix to any of them is a fix to all:
 *  - waiting is always "until this is observed, or fail after a deadline" (tools/waiters.ts),
 *    re-checked once per message (a step's reports all or none) and on every exit;
 *  - agreement counts only what each live member has reported, never its clock: every live
 *    member names the same master, has reported its own role (`master` or `slave`), and that
 *    master alone says it is master. The role must be in: a server's first `slave` may come
 *    a message after the `masterchange` that names its master, and a test that reads what
 *    follows an agreement must not find the event that completed it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { preciseNow, Waiters } from './waiters';

/** One member process and its view of the election, as its reports tell it. */
export interface MemberProcess {
  host: string;
  child: ChildProcess;
  alive: boolean;
  /** It has reported its role (`master` or `slave`, or a whole state that holds it). */
  roleKnown: boolean;
  /** Whether it says it is master. */
  master: boolean;
  /** The master it names ('' for none). */
  masterHostname: string;
  term: number;
  /** Resolves with its exit code once the process is gone. */
  exited: Promise<number | null>;
}

export interface AgreementRule {
  /** Every live member must also hold the master's term (the etcd fault suite: a term seen late is a failure of its own). */
  oneTerm?: boolean;
}

/**
 * A cluster of child processes that report to us over IPC. A mode forks its children
 * (`spawn`), turns their reports into views (`onReports`), and says what a member's exit
 * means (`onExit`).
 */
export abstract class MemberProcesses<Member extends MemberProcess, Report, Command extends object> {
  readonly reports: Report[] = [];
  protected readonly byHost = new Map<string, Member>();
  readonly #waiters = new Waiters({ describe: () => this.describe() });
  readonly #rule: AgreementRule;

  constructor(rule: AgreementRule = {}) {
    this.#rule = rule;
  }

  get members(): ReadonlyMap<string, Member> {
    return this.byHost;
  }

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

  /** The master the live members agree on (the rule in this file's header); else null, also with no member. */
  agreedMaster(): string | null {
    const live = [...this.byHost.values()].filter((m) => m.alive);
    const name = live[0]?.masterHostname ?? '';
    if (!name || live.some((m) => m.masterHostname !== name || !m.roleKnown)) return null;
    const masters = live.filter((m) => m.master);
    const master = masters[0];
    if (masters.length !== 1 || master?.host !== name) return null;
    if (this.#rule.oneTerm && live.some((m) => m.term !== master.term)) return null;
    return name;
  }

  /** Wait until the live members agree (on `want`, if given); resolves with the master. */
  async agreed(timeoutMs: number, want?: string): Promise<string> {
    const ok = (): boolean => {
      const master = this.agreedMaster();
      return master !== null && (want === undefined || master === want);
    };
    await this.waitFor(ok, timeoutMs, want ? `agreement on ${want}` : 'agreement on a master');
    return this.agreedMaster() as string;
  }

  /** Send a command to a live member (a dead one's channel is closed: nothing is sent). */
  command(host: string, command: Command): void {
    const member = this.member(host);
    if (member.alive) member.child.send(command);
  }

  /** Take a forked child as a member: its reports (one or a batch per message) and its exit. */
  protected spawn(host: string, child: ChildProcess, extra: Omit<Member, keyof MemberProcess>): Member {
    let exited: (code: number | null) => void = () => undefined;
    const member = {
      host,
      child,
      alive: true,
      roleKnown: false,
      master: false,
      masterHostname: '',
      term: 0,
      exited: new Promise<number | null>((resolve) => (exited = resolve)),
      ...extra,
    } as Member;
    this.byHost.set(host, member);
    child.on('message', (message: Report | Report[]) => {
      this.onReports(member, Array.isArray(message) ? message : [message]);
      // Once per message: a waiter sees a step's events all or none.
      this.#waiters.check();
    });
    child.once('exit', (code) => {
      member.alive = false;
      member.master = false;
      this.onExit(member);
      this.#waiters.check();
      exited(code);
    });
    return member;
  }

  /** A member reported its role: `master` (with the term it holds) or `slave`. */
  protected noteRole(member: Member, master: boolean, term?: number): void {
    member.roleKnown = true;
    member.master = master;
    if (term !== undefined) member.term = term;
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

/** What a child started in two steps reports (tools/lease-child.ts, tools/etcd-child.ts): at least these. */
export interface StagedReport {
  kind: string;
  host: string;
  t: number;
}

/**
 * Children started in two steps (tools/lease-child.ts, tools/etcd-child.ts): forked with
 * their config as the one argument, they load and report `loaded`; `{ cmd: 'start' }` starts
 * them, and they report `ready`. So servers start together however long each took to load
 * (etcd3 takes a varying while). Signals are recorded with the time they were sent; an exit
 * is recorded as a `down` report.
 */
export abstract class StagedProcesses<
  Member extends MemberProcess,
  Report extends StagedReport,
  Command extends object,
> extends MemberProcesses<Member, Report, Command | { cmd: 'start' }> {
  protected readonly signals: Array<{ host: string; signal: NodeJS.Signals; t: number }> = [];

  /** Fork `script` for `host` and wait until it has loaded (it then waits for `start`). */
  protected async fork(script: string, host: string, config: object, extra: Omit<Member, keyof MemberProcess>): Promise<Member> {
    const child = fork(script, [JSON.stringify(config)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const member = this.spawn(host, child, extra);
    await this.waitFor(() => this.reports.some((r) => r.kind === 'loaded' && r.host === host), 20_000, `${host} loaded`);
    return member;
  }

  /** Start loaded servers, all at once; resolves once each has reported `ready`. */
  async start(hosts: string[], timeoutMs = 5000): Promise<void> {
    for (const host of hosts) this.command(host, { cmd: 'start' });
    await this.waitFor(
      () => hosts.every((host) => this.reports.some((r) => r.kind === 'ready' && r.host === host)),
      timeoutMs,
      `${hosts.join(', ')} started`,
    );
  }

  /** Send a signal, recorded with the time it was sent (SIGSTOP: the checks end a mastership there). */
  signal(host: string, signal: NodeJS.Signals): void {
    this.signals.push({ host, signal, t: preciseNow() });
    this.byHost.get(host)?.child.kill(signal);
  }

  /** SIGKILL; resolves once the process is gone. */
  async kill(host: string): Promise<void> {
    const member = this.byHost.get(host);
    if (!member || !member.alive) return;
    member.child.kill('SIGKILL');
    await member.exited;
  }

  async close(): Promise<void> {
    await Promise.all([...this.byHost.keys()].map((host) => this.kill(host)));
  }

  protected onExit(member: Member): void {
    this.reports.push({ kind: 'down', host: member.host, t: preciseNow() } as Report);
  }
}
