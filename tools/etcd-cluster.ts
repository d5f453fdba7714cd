/**
 * A real etcd cluster for tests and the bench: three members of Debian's `etcd-server`
 * (/usr/bin/etcd) on free 127.0.0.1 ports, in a temporary directory that is removed after,
 * also when a test fails or the run is interrupted.
 *
 * Nothing listens beyond loopback: client and peer URLs are 127.0.0.1 only, and the metrics
 * listener is the client one.
 *
 * Timings: heartbeat 50 ms, election timeout 250 ms by default, so tests can use a 2 s
 * lease TTL (the least that outlasts an etcd leader election at these timings); the fault
 * suite passes etcd's own defaults (100 / 1000 ms), as its users run it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertLoopback } from './loopback';

export const ETCD_BINARY = process.env.PSM_ETCD_BINARY ?? '/usr/bin/etcd';
export const ETCD_PACKAGE = 'etcd-server';
/** `etcdctl`, for snapshot save and restore (Debian: etcd-client). */
export const ETCDCTL_BINARY = process.env.PSM_ETCDCTL_BINARY ?? '/usr/bin/etcdctl';
export const ETCDCTL_PACKAGE = 'etcd-client';

/** Why real-etcd tests cannot run here (null: they can). */
export function etcdUnavailable(): string | null {
  if (!existsSync(ETCD_BINARY)) return `${ETCD_BINARY} not found (Debian: apt-get install -y ${ETCD_PACKAGE})`;
  try {
    require.resolve('etcd3');
  } catch {
    return 'the etcd3 client is not installed (npm install etcd3)';
  }
  return null;
}

/** Ports handed out by this process: the kernel may offer a port it just freed again. */
const handedOut = new Set<number>();

/**
 * A free TCP port on 127.0.0.1 (closed again at once; the member binds it a moment later),
 * never one this process handed out before: two members given one port cannot both start.
 */
export async function freeTcpPort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port: bound } = server.address() as net.AddressInfo;
        server.close(() => resolve(bound));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

export interface EtcdMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
  process: ChildProcess | null;
  exited: Promise<void>;
  /** stderr tail, for a failure message. */
  log: string[];
}

export interface EtcdClusterOptions {
  members?: number;
  heartbeatMs?: number;
  electionMs?: number;
  /**
   * test:lan only: run the members inside this network namespace (one the lab created),
   * listening on `ip` there (ports 2379 + 2k and 2380 + 2k: a fresh namespace has them free).
   * Health is then checked from inside the namespace too.
   */
  netns?: string;
  ip?: string;
}

type ResolvedOptions = Required<Omit<EtcdClusterOptions, 'netns' | 'ip'>> & Pick<EtcdClusterOptions, 'netns' | 'ip'>;

const live = new Set<EtcdCluster>();
let hooked = false;

/** Kill every member and remove every directory, synchronously: for exit and signals. */
function cleanupAll(): void {
  for (const cluster of live) cluster.destroySync();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', cleanupAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      cleanupAll();
      process.kill(process.pid, signal);
    });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Members of a cluster whose test process was killed (SIGKILL, a broken pipe) outlive it:
 * find them by the token we give every member (`psm-<pid of the test process>-...`), kill
 * them and remove their directory. Only etcd processes we started match.
 */
export function sweepStaleClusters(): number {
  let swept = 0;
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv[0] !== ETCD_BINARY) continue;
    const token = argv[argv.indexOf('--initial-cluster-token') + 1] ?? '';
    const owner = /^psm-(\d+)-(psm-etcd-[A-Za-z0-9]+)$/.exec(token);
    if (!owner || alive(Number(owner[1]))) continue;
    try {
      process.kill(Number(entry), 'SIGKILL');
      swept++;
    } catch {
      // gone meanwhile
    }
    rmSync(path.join(os.tmpdir(), owner[2] as string), { recursive: true, force: true, maxRetries: 5 });
  }
  return swept;
}

export class EtcdCluster {
  readonly dir: string;
  readonly members: EtcdMember[];
  readonly #options: ResolvedOptions;
  #token: string;

  private constructor(dir: string, members: EtcdMember[], options: ResolvedOptions) {
    this.dir = dir;
    this.members = members;
    this.#options = options;
    this.#token = `psm-${process.pid}-${path.basename(dir)}`;
  }

  /** Start the members and wait (at most 30 s) until the cluster answers. */
  static async start(options: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const reason = etcdUnavailable();
    if (reason) throw new Error(reason);
    sweepStaleClusters();
    const resolved = {
      members: options.members ?? 3,
      heartbeatMs: options.heartbeatMs ?? 50,
      electionMs: options.electionMs ?? 250,
      netns: options.netns,
      ip: options.ip,
    };
    if ((options.netns === undefined) !== (options.ip === undefined)) throw new Error('netns and ip go together');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'psm-etcd-'));
    const members: EtcdMember[] = [];
    for (let i = 1; i <= resolved.members; i++) {
      const host = options.ip ?? '127.0.0.1';
      const clientUrl = `http://${host}:${options.netns ? 2379 + 2 * (i - 1) : await freeTcpPort()}`;
      const peerUrl = `http://${host}:${options.netns ? 2380 + 2 * (i - 1) : await freeTcpPort()}`;
      members.push({
        name: `m${i}`,
        clientUrl,
        peerUrl,
        dataDir: path.join(dir, `m${i}`),
        process: null,
        exited: Promise.resolve(),
        log: [],
      });
    }
    const cluster = new EtcdCluster(dir, members, resolved);
    live.add(cluster);
    hookExit();
    try {
      for (const member of members) cluster.#spawn(member, 'new');
      await cluster.waitHealthy(30_000);
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return cluster;
  }

  /** The members' `--election-timeout`, ms (for `coordinator.election_timeout_ms`). */
  get electionMs(): number {
    return this.#options.electionMs;
  }

  /** Client URLs, for the `hosts` option. */
  get endpoints(): string[] {
    return this.members.map((member) => member.clientUrl);
  }

  member(name: string): EtcdMember {
    const member = this.members.find((m) => m.name === name);
    if (!member) throw new Error(`no etcd member ${name}`);
    return member;
  }

  #spawn(member: EtcdMember, state: 'new' | 'existing'): void {
    // Loopback only, unless inside a lab namespace (whose addresses exist nowhere else).
    if (!this.#options.netns) for (const url of [member.clientUrl, member.peerUrl]) assertLoopback(new URL(url).hostname, 'etcd URL');
    const initialCluster = this.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    const args = [
      '--name',
      member.name,
      '--data-dir',
      member.dataDir,
      '--listen-client-urls',
      member.clientUrl,
      '--advertise-client-urls',
      member.clientUrl,
      '--listen-peer-urls',
      member.peerUrl,
      '--initial-advertise-peer-urls',
      member.peerUrl,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-state',
      state,
      '--initial-cluster-token',
      this.#token,
      '--heartbeat-interval',
      String(this.#options.heartbeatMs),
      '--election-timeout',
      String(this.#options.electionMs),
      '--logger',
      'zap',
      '--log-level',
      'error',
    ];
    const netns = this.#options.netns;
    // `ip netns exec` execs etcd in place: the pid, signals and exit are etcd's.
    const child = netns
      ? spawn('ip', ['netns', 'exec', netns, ETCD_BINARY, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(ETCD_BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    member.process = child;
    member.log = [];
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      member.log.push(chunk);
      if (member.log.length > 50) member.log.shift();
    });
    member.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /** Stop one member (SIGKILL by default), and wait until it has exited. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const member = this.member(name);
    const child = member.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    await member.exited;
    member.process = null;
  }

  /** Start a stopped member again with its data (it rejoins the cluster). */
  async restart(name: string): Promise<void> {
    const member = this.member(name);
    if (member.process) return;
    this.#spawn(member, 'existing');
  }

  /** Stop every member (the whole store down). */
  async stopAll(): Promise<void> {
    await Promise.all(this.members.map((member) => this.kill(member.name)));
  }

  async startAll(timeoutMs = 30_000): Promise<void> {
    for (const member of this.members) await this.restart(member.name);
    await this.waitHealthy(timeoutMs);
  }

  /** Until a quorum answers a linearizable read, at most `timeoutMs`. */
  async waitHealthy(timeoutMs: number): Promise<void> {
    const { Etcd3 } = require('etcd3') as typeof import('etcd3');
    const deadline = Date.now() + timeoutMs;
    let lastError = '';
    const netns = this.#options.netns;
    while (netns && Date.now() < deadline) {
      // From inside the namespace: the host's namespace has no route to the lab.
      const hosts = JSON.stringify(this.endpoints.filter((_, i) => this.members[i]?.process));
      const script = `const {Etcd3}=require('etcd3');const c=new Etcd3({hosts:${hosts},dialTimeout:1000});c.get('psm-health').options({deadline:Date.now()+1000}).string().then(()=>process.exit(0),(e)=>{console.error(e.message);process.exit(1)})`;
      const ok = await new Promise<boolean>((resolve) => {
        execFile(
          'ip',
          ['netns', 'exec', netns, process.execPath, '-e', script],
          { timeout: 5000, cwd: path.join(__dirname, '..', '..') },
          (err, _out, stderr) => {
            if (err) lastError = String(stderr).trim().slice(0, 200) || err.message;
            resolve(!err);
          },
        );
      });
      if (ok) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    while (!netns && Date.now() < deadline) {
      const client = new Etcd3({ hosts: this.endpoints.filter((_, i) => this.members[i]?.process), dialTimeout: 1000 });
      try {
        await client
          .get('psm-health')
          .options({ deadline: Date.now() + 1000 })
          .string();
        client.close();
        return;
      } catch (err) {
        lastError = (err as Error).message;
      }
      client.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const logs = this.members.map((m) => `${m.name}: ${m.log.join('').slice(-400)}`).join('\n');
    throw new Error(`etcd cluster not healthy within ${timeoutMs} ms (${lastError})\n${logs}`);
  }

  /** The name of the member that is raft leader now (asked of each running member). */
  async leader(): Promise<string> {
    const { Etcd3 } = require('etcd3') as typeof import('etcd3');
    const ids = new Map<string, string>();
    let leaderId = '';
    for (const member of this.members) {
      if (!member.process) continue;
      const client = new Etcd3({ hosts: member.clientUrl, dialTimeout: 1000 });
      try {
        const status = await client.maintenance.status();
        ids.set(status.header.member_id, member.name);
        if (status.leader !== '0') leaderId = status.leader;
      } catch {
        // a member that does not answer is not the one we look for
      } finally {
        client.close();
      }
    }
    const name = ids.get(leaderId);
    if (!name) throw new Error('no etcd leader found');
    return name;
  }

  /** `etcdctl snapshot save` from a running member into `file`. */
  async snapshotSave(file: string): Promise<void> {
    const member = this.members.find((m) => m.process) ?? this.members[0];
    await run(
      ETCDCTL_BINARY,
      ['--endpoints', (member as EtcdMember).clientUrl, '--dial-timeout', '5s', '--command-timeout', '20s', 'snapshot', 'save', file],
      { ETCDCTL_API: '3' },
    );
  }

  /**
   * The operator's restore: every member stopped, its data replaced by `etcdctl snapshot
   * restore` of `file` (the same names, peers and token), all started again. etcd 3.4 cannot
   * raise the revision: it goes back to the snapshot's.
   */
  async restoreFrom(file: string, timeoutMs = 30_000): Promise<void> {
    await this.stopAll();
    const initialCluster = this.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
    for (const member of this.members) {
      rmSync(member.dataDir, { recursive: true, force: true, maxRetries: 5 });
      await run(
        ETCDCTL_BINARY,
        [
          'snapshot',
          'restore',
          file,
          '--name',
          member.name,
          '--data-dir',
          member.dataDir,
          '--initial-cluster',
          initialCluster,
          '--initial-cluster-token',
          this.#token,
          '--initial-advertise-peer-urls',
          member.peerUrl,
        ],
        { ETCDCTL_API: '3' },
      );
    }
    await this.startAll(timeoutMs);
  }

  /** Every member stopped, its data removed, started again: an empty etcd (revision 1) at the same addresses. */
  async wipe(timeoutMs = 30_000): Promise<void> {
    await this.stopAll();
    for (const member of this.members) rmSync(member.dataDir, { recursive: true, force: true, maxRetries: 5 });
    for (const member of this.members) this.#spawn(member, 'new');
    await this.waitHealthy(timeoutMs);
  }

  /** Kill everything and remove the directory. */
  async close(): Promise<void> {
    await Promise.all(this.members.map((member) => this.kill(member.name)));
    this.destroySync();
  }

  destroySync(): void {
    for (const member of this.members) {
      const child = member.process;
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    // A member killed a moment ago may still be closing files: retry instead of leaving the directory.
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 5 });
    live.delete(this);
  }
}

function run(binary: string, args: string[], env: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { timeout: 60_000, env: { ...process.env, ...env } }, (err, _stdout, stderr) => {
      if (err) reject(new Error(`${binary} ${args.slice(0, 3).join(' ')}: ${String(stderr).trim().slice(0, 300) || err.message}`));
      else resolve();
    });
  });
}
