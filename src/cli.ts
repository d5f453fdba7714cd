#!/usr/bin/env node
/**
 * `npx pixl-server-multi status`: look at a running cluster from any host on its network.
 * It binds the cluster's port as an observer (address reuse, so it can run beside a
 * server on the same host), asks who is there with one `hello` (which servers answer with
 * their heartbeat; a hello never puts anyone in a server table), and lists what it hears.
 * It never sends a heartbeat, so it is never counted as a server.
 */
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Command, InvalidArgumentError } from 'commander';
import Table = require('cli-table3');
import { computeBroadcastIP } from './config';
import type { HeartbeatMessage, JsonValue } from './protocol/messages';
import { createKeyring, type Keyring } from './wire/auth';
import { CLUSTER_ID_PATTERN, MAX_UDP_PAYLOAD } from './protocol/limits';
import { decodeWire, encode } from './wire/codec';

export interface ObservedServer {
  hostname: string;
  ip: string;
  /** Where its datagrams come from, as seen here. */
  address: string;
  role: 'master' | 'slave';
  eligible: boolean;
  term: number;
  priority: number;
  /** Seconds since its last heartbeat was heard here. */
  lastHeard: number;
  uptime: number;
  data: JsonValue;
}

export interface Snapshot {
  port: number;
  listenedMs: number;
  masterHostname: string;
  term: number;
  servers: ObservedServer[];
  /** What the observer itself saw: datagrams heard and dropped, by reason. */
  observer: { packets: number; heartbeats: number; dropped: Record<string, number> };
}

interface ObserveOptions {
  port: number;
  broadcastIp: string;
  bindIp: string;
  multicastGroup: string | null;
  keyring: Keyring | null;
  clusterId: string;
  hello: boolean;
}

/** Everything heard so far, per hostname; a server silent for `staleMs` drops out of the view. */
class Observer {
  readonly socket: dgram.Socket;
  readonly startedAt = performance.now();
  #servers = new Map<string, { message: HeartbeatMessage; heardAt: number; address: string }>();
  #packets = 0;
  #heartbeats = 0;
  #dropped: Record<string, number> = {};
  #options: ObserveOptions;

  constructor(options: ObserveOptions) {
    this.#options = options;
    this.socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    this.socket.on('message', (datagram, rinfo) => this.#receive(datagram, rinfo.address));
  }

  open(): Promise<void> {
    const { port, bindIp, multicastGroup, broadcastIp } = this.#options;
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind({ port, address: bindIp }, () => {
        this.socket.removeListener('error', reject);
        try {
          this.socket.setBroadcast(true);
          if (multicastGroup) this.socket.addMembership(multicastGroup);
        } catch (err) {
          reject(err as Error);
          return;
        }
        if (this.#options.hello) {
          const hello = encode(
            { action: 'hello', hostname: `psm-status-${randomBytes(3).toString('hex')}`, ...(this.#options.clusterId ? { cid: this.#options.clusterId } : {}) },
            this.#options.keyring,
          );
          this.socket.send(hello, port, multicastGroup ?? broadcastIp);
        }
        resolve();
      });
    });
  }

  #receive(datagram: Buffer, address: string): void {
    this.#packets++;
    const result = decodeWire(datagram, { maxBytes: MAX_UDP_PAYLOAD, keyring: this.#options.keyring });
    if (!result.ok) {
      this.#dropped[result.reason] = (this.#dropped[result.reason] ?? 0) + 1;
      return;
    }
    if ('gossip' in result) return;
    const message = result.message;
    if ((message.cid ?? '') !== this.#options.clusterId || message.action !== 'heartbeat') return;
    this.#heartbeats++;
    this.#servers.set(message.hostname, { message, heardAt: performance.now(), address });
  }

  snapshot(staleMs: number): Snapshot {
    const now = performance.now();
    const servers: ObservedServer[] = [];
    let term = 0;
    for (const [hostname, seen] of this.#servers) {
      if (now - seen.heardAt > staleMs) continue;
      const m = seen.message;
      term = Math.max(term, m.term ?? 0);
      servers.push({
        hostname,
        ip: m.ip,
        address: seen.address,
        role: m.master ? 'master' : 'slave',
        eligible: m.eligible,
        term: m.term ?? 0,
        priority: m.prio ?? 0,
        lastHeard: Math.round((now - seen.heardAt) / 100) / 10,
        uptime: m.uptime,
        data: m.data,
      });
    }
    servers.sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
    const masters = servers.filter((s) => s.role === 'master');
    return {
      port: this.#options.port,
      listenedMs: Math.round(now - this.startedAt),
      masterHostname: masters.length === 1 ? (masters[0] as ObservedServer).hostname : '',
      term,
      servers,
      observer: { packets: this.#packets, heartbeats: this.#heartbeats, dropped: { ...this.#dropped } },
    };
  }

  close(): void {
    this.socket.close();
  }
}

export function renderTable(snapshot: Snapshot): string {
  const table = new Table({
    head: ['hostname', 'ip', 'role', 'eligible', 'term', 'last heard', 'uptime', 'data'],
    style: { head: [], border: [] },
  });
  for (const s of snapshot.servers) {
    let data = JSON.stringify(s.data);
    if (data.length > 40) data = data.slice(0, 37) + '...';
    table.push([s.hostname, s.ip || s.address, s.role, s.eligible ? 'yes' : 'no', String(s.term), `${s.lastHeard.toFixed(1)} s ago`, formatUptime(s.uptime), data]);
  }
  const masters = snapshot.servers.filter((s) => s.role === 'master').map((s) => s.hostname);
  const verdict =
    masters.length === 1 ? `master: ${masters[0]} (term ${snapshot.term})` : masters.length === 0 ? 'no master' : `CONFLICT: ${masters.length} masters (${masters.join(', ')})`;
  const dropped = Object.entries(snapshot.observer.dropped).map(([reason, n]) => `${reason} ${n}`);
  return [
    `${snapshot.servers.length} server${snapshot.servers.length === 1 ? '' : 's'} on port ${snapshot.port}, ${verdict}`,
    table.toString(),
    `heard ${snapshot.observer.heartbeats} heartbeats in ${(snapshot.listenedMs / 1000).toFixed(1)} s` + (dropped.length ? `; dropped: ${dropped.join(', ')}` : ''),
  ].join('\n');
}

function formatUptime(seconds: number): string {
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

function positiveNumber(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got "${value}"`);
    return n;
  };
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError(`expected a port from 1 to 65535, got "${value}"`);
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function main(argv: string[] = process.argv): Promise<number> {
  const program = new Command();
  program.name('pixl-server-multi').description('Tools for pixl-server-multi clusters').showHelpAfterError();
  let exitCode = 0;
  program
    .command('status')
    .description('list the servers of a cluster as an observer (sends no heartbeat, never counts as a server)')
    .option('-p, --port <port>', 'the cluster\'s comm_port', port, 3014)
    .option('-s, --secret <key>', 'secret_key of the cluster (repeat for rotation)', collect, [] as string[])
    .option('-c, --cluster-id <id>', 'cluster_id of the cluster', '')
    .option('-b, --broadcast-ip <ip>', 'where to send the hello (default: computed like the component)')
    .option('-m, --multicast-group <group>', 'for clusters on the multicast transport: the group to join')
    .option('--bind-ip <ip>', 'address to listen on', '0.0.0.0')
    .option('-l, --listen <seconds>', 'how long to listen before printing', positiveNumber('--listen'), 2)
    .option('--no-hello', 'only listen; do not ask servers to answer at once (wait for their heartbeats)')
    .option('-w, --watch', 'redraw every second until interrupted')
    .option('--frames <n>', 'with --watch: stop after this many redraws', positiveNumber('--frames'))
    .option('-j, --json', 'print JSON for scripts')
    .action(async (options: {
      port: number; secret: string[]; clusterId: string; broadcastIp?: string; multicastGroup?: string; bindIp: string;
      listen: number; hello: boolean; watch?: boolean; frames?: number; json?: boolean;
    }) => {
      if (options.clusterId && !CLUSTER_ID_PATTERN.test(options.clusterId)) {
        throw new InvalidArgumentError(`--cluster-id must be 1 to 64 letters, digits, ".", "-" or "_", got "${options.clusterId}"`);
      }
      const observer = new Observer({
        port: options.port,
        broadcastIp: options.broadcastIp ?? computeBroadcastIP(os.networkInterfaces()),
        bindIp: options.bindIp,
        multicastGroup: options.multicastGroup ?? null,
        keyring: options.secret.length > 0 ? createKeyring(options.secret) : null,
        clusterId: options.clusterId,
        hello: options.hello,
      });
      try {
        await observer.open();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === 'EADDRINUSE' ? ' (another program holds it without address reuse)' : code === 'EACCES' ? ' (ports below 1024 need root)' : '';
        process.stderr.write(`error: cannot listen on UDP port ${options.port}${why}: ${(err as Error).message}\n`);
        exitCode = 2;
        return;
      }
      const staleMs = Math.max(options.listen * 1000, 3000);
      const print = (snapshot: Snapshot): void => {
        process.stdout.write(options.json ? JSON.stringify(snapshot) + '\n' : renderTable(snapshot) + '\n');
      };
      if (options.watch) {
        let frames = 0;
        await new Promise<void>((resolve) => {
          const timer = setInterval(() => {
            if (!options.json) process.stdout.write('\x1b[2J\x1b[H');
            print(observer.snapshot(staleMs));
            if (options.frames !== undefined && ++frames >= options.frames) {
              clearInterval(timer);
              resolve();
            }
          }, 1000);
          process.once('SIGINT', () => {
            clearInterval(timer);
            resolve();
          });
        });
        observer.close();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, options.listen * 1000));
      const snapshot = observer.snapshot(staleMs);
      observer.close();
      if (snapshot.servers.length === 0) {
        const dropped = Object.entries(snapshot.observer.dropped).map(([r, n]) => `${r} ${n}`).join(', ');
        process.stderr.write(
          `error: no heartbeat heard on UDP port ${options.port} in ${options.listen} s.` +
            (dropped ? ` Datagrams were dropped (${dropped}): check --secret and --cluster-id.` : ' Check --port, firewalls, and that this host is on the cluster\'s network; with a long heartbeat_freq and old servers, use a longer --listen.') +
            '\n',
        );
        exitCode = 1;
        return;
      }
      print(snapshot);
    });
  return program.parseAsync(argv).then(
    () => exitCode,
    (err: Error) => {
      process.stderr.write(`error: ${err.message}\n`);
      return 2;
    },
  );
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}
