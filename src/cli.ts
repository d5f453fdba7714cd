#!/usr/bin/env node
/**
 * `npx pixl-server-multi status`: look at a running cluster from any host on its network.
 * It binds the cluster's port as an observer (address reuse, so it can run beside a
 * server on the same host), asks who is there with a `hello` every second (servers answer
 * with their heartbeat at once; a hello never puts anyone in a server table), and lists what
 * it hears. It never sends a heartbeat, so it is never counted as a server.
 *
 * Exit codes: 0 servers listed, 1 nothing heard or a run-time error (the port cannot be
 * bound), 2 bad arguments.
 */
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { computeBroadcastIP, DEFAULT_CONFIG } from './config';
import { renderTextTable } from './util/text-table';
import type { HeartbeatMessage, JsonValue, Message } from './protocol/messages';
import { createKeyring, type Keyring } from './wire/auth';
import { CLUSTER_ID_PATTERN, MAX_UDP_PAYLOAD } from './protocol/limits';
import { decodeWire, encode } from './wire/codec';
import { deadAfterMs, judge, masterOf, type ServerState } from './shell/view';

export const EXIT_OK = 0;
export const EXIT_NOTHING_HEARD = 1;
export const EXIT_USAGE = 2;

export interface ObservedServer {
  hostname: string;
  ip: string;
  /** Where its datagrams come from, as seen here. */
  address: string;
  state: ServerState;
  /** Its last heartbeat claimed the master role (whether or not it is still live). */
  claimsMaster: boolean;
  eligible: boolean;
  term: number;
  priority: number;
  /** Seconds since its last heartbeat was heard here. */
  lastHeard: number;
  uptime: number;
  data: JsonValue;
  /** The timing its silence is judged by: its own, when its heartbeats carry it, else the CLI's options. */
  tickMs: number;
  checkBeats: number;
}

export interface Snapshot {
  port: number;
  listenedMs: number;
  /** The one server that claims master and has not left; '' when none (or several). */
  masterHostname: string;
  /** Several servers claim master: their hostnames. */
  conflict: string[];
  /** The highest term among the servers that have not left. */
  term: number;
  servers: ObservedServer[];
  /** What the observer itself saw: datagrams heard and dropped, by reason. */
  observer: { packets: number; heartbeats: number; hellosSent: number; dropped: Record<string, number> };
}

interface ObserveOptions {
  port: number;
  broadcastIp: string;
  bindIp: string;
  multicastGroup: string | null;
  keyring: Keyring | null;
  clusterId: string;
  /** Assumed for servers whose heartbeats do not carry their timing. */
  tickMs: number;
  checkBeats: number;
}

/** Servers remembered; beyond it, new hostnames are ignored (forged ones could be endless). */
const MAX_OBSERVED = 4096;
/** How long a server that left stays in the table, marked. */
export const LEFT_SHOWN_MS = 5 * 60_000;

interface Seen {
  message: HeartbeatMessage;
  heardAt: number;
  address: string;
  /** When its shutdown notice arrived, if one did. */
  departedAt: number | null;
}

/** Everything heard so far, per hostname. */
export class Observer {
  readonly socket: dgram.Socket;
  readonly startedAt = performance.now();
  /** Random per run: authenticated servers require an instance id and a sequence on every packet. */
  readonly iid = randomBytes(8).toString('hex');
  readonly hostname = `psm-status-${randomBytes(3).toString('hex')}`;
  #seq = 0;
  #servers = new Map<string, Seen>();
  #packets = 0;
  #heartbeats = 0;
  #hellos = 0;
  #dropped: Record<string, number> = {};
  #options: ObserveOptions;

  constructor(options: ObserveOptions) {
    this.#options = options;
    this.socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    this.socket.on('message', (datagram, rinfo) => this.#receive(datagram, rinfo.address));
  }

  open(): Promise<void> {
    const { port, bindIp, multicastGroup } = this.#options;
    return new Promise((resolve, reject) => {
      this.socket.once('error', reject);
      this.socket.bind({ port, address: bindIp }, () => {
        this.socket.removeListener('error', reject);
        // Later socket errors (a send to an unreachable address) must not kill the CLI.
        this.socket.on('error', () => undefined);
        try {
          this.socket.setBroadcast(true);
          if (multicastGroup) this.socket.addMembership(multicastGroup);
        } catch (err) {
          reject(err as Error);
          return;
        }
        resolve();
      });
    });
  }

  /** Ask every server to answer now. */
  hello(): void {
    const message: Message = { action: 'hello', hostname: this.hostname, iid: this.iid, seq: ++this.#seq };
    if (this.#options.clusterId) message.cid = this.#options.clusterId;
    this.#hellos++;
    this.socket.send(encode(message, this.#options.keyring), this.#options.port, this.#options.multicastGroup ?? this.#options.broadcastIp);
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
    if ((message.cid ?? '') !== this.#options.clusterId) return;
    const now = performance.now();
    const seen = this.#servers.get(message.hostname);
    if (message.action === 'shutdown') {
      // Only the instance we list can announce its own departure.
      if (seen && seen.departedAt === null && (message.iid === undefined || message.iid === seen.message.iid)) seen.departedAt = now;
      return;
    }
    if (message.action !== 'heartbeat') return;
    this.#heartbeats++;
    if (seen && message.iid !== undefined && message.iid === seen.message.iid && (message.seq ?? 0) <= (seen.message.seq ?? 0)) {
      return; // overtaken by a newer packet of the same instance (or sent before its shutdown)
    }
    if (!seen && this.#servers.size >= MAX_OBSERVED && !this.#forgetOne(now)) return;
    this.#servers.set(message.hostname, { message, heardAt: now, address, departedAt: null });
  }

  /** Make room by forgetting a server that left, if one did. */
  #forgetOne(now: number): boolean {
    for (const [hostname, seen] of this.#servers) {
      if (this.#leftAt(seen) <= now) {
        this.#servers.delete(hostname);
        return true;
      }
    }
    return false;
  }

  #timing(m: HeartbeatMessage): { tickMs: number; checkBeats: number } {
    return { tickMs: m.tick ?? this.#options.tickMs, checkBeats: m.beats ?? this.#options.checkBeats };
  }

  /** When it left (its notice, or the end of its tock), as this observer judges it. */
  #leftAt(seen: Seen): number {
    const { tickMs, checkBeats } = this.#timing(seen.message);
    return seen.departedAt ?? seen.heardAt + deadAfterMs(tickMs, checkBeats);
  }

  snapshot(): Snapshot {
    const now = performance.now();
    const rows: Array<{ hostname: string; seen: Seen }> = [];
    for (const [hostname, seen] of this.#servers) {
      if (now - this.#leftAt(seen) > LEFT_SHOWN_MS) {
        this.#servers.delete(hostname);
        continue;
      }
      rows.push({ hostname, seen });
    }
    rows.sort((a, b) => (a.hostname < b.hostname ? -1 : a.hostname > b.hostname ? 1 : 0));
    const states = judge(
      rows.map(({ seen }) => ({
        claimsMaster: seen.message.master,
        term: seen.message.term ?? 0,
        silentMs: now - seen.heardAt,
        ...this.#timing(seen.message),
        departed: seen.departedAt !== null,
      })),
    );
    const servers: ObservedServer[] = rows.map(({ hostname, seen }, i) => {
      const m = seen.message;
      return {
        hostname,
        ip: m.ip,
        address: seen.address,
        state: states[i] as ServerState,
        claimsMaster: m.master,
        eligible: m.eligible,
        term: m.term ?? 0,
        priority: m.prio ?? 0,
        lastHeard: Math.round((now - seen.heardAt) / 100) / 10,
        uptime: m.uptime,
        data: m.data,
        ...this.#timing(m),
      };
    });
    const master = masterOf(servers);
    const present = servers.filter((s) => s.state !== 'left');
    return {
      port: this.#options.port,
      listenedMs: Math.round(now - this.startedAt),
      masterHostname: master.hostname,
      conflict: master.conflict,
      term: present.reduce((max, s) => Math.max(max, s.term), 0),
      servers,
      observer: { packets: this.#packets, heartbeats: this.#heartbeats, hellosSent: this.#hellos, dropped: { ...this.#dropped } },
    };
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * Remote text for a terminal: JSON already escapes C0 controls; C1 controls (an 8-bit CSI
 * can start an escape sequence) and bidirectional overrides (which reorder what is shown)
 * are escaped too.
 */
function terminalSafe(text: string): string {
  return text.replace(/[\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function renderTable(snapshot: Snapshot, options: { color?: boolean } = {}): string {
  const dim = (text: string): string => (options.color ? `\x1b[2m${text}\x1b[22m` : text);
  // One line per server, no rule between rows: compact enough for a --watch of many servers.
  const rows: string[][] = [];
  const styles: Array<((cell: string) => string) | undefined> = [];
  for (const s of snapshot.servers) {
    let data = terminalSafe(JSON.stringify(s.data) ?? '');
    if (data.length > 40) data = data.slice(0, 37) + '...';
    rows.push([s.hostname, s.ip || s.address, s.state, s.eligible ? 'yes' : 'no', String(s.term), `${s.lastHeard.toFixed(1)} s ago`, formatUptime(s.uptime), data]);
    styles.push(s.state === 'left' ? dim : undefined);
  }
  const table = renderTextTable(['hostname', 'address', 'state', 'eligible', 'term', 'last heard', 'uptime', 'data'], rows, { style: styles });
  const present = snapshot.servers.filter((s) => s.state !== 'left');
  const left = snapshot.servers.length - present.length;
  const master = snapshot.servers.find((s) => s.hostname === snapshot.masterHostname);
  const verdict =
    snapshot.conflict.length > 0
      ? `CONFLICT: ${snapshot.conflict.length} masters (${snapshot.conflict.join(', ')})`
      : master
        ? `master: ${master.hostname} (term ${master.term}${master.state === 'suspect' ? ', suspect: not heard lately' : ''})`
        : 'no master';
  const dropped = Object.entries(snapshot.observer.dropped).map(([reason, n]) => `${reason} ${n}`);
  return [
    `${present.length} server${present.length === 1 ? '' : 's'}${left ? ` (${left} left)` : ''} on port ${snapshot.port}, ${verdict}`,
    table,
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

function integerIn(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, got "${value}"`);
    return n;
  };
}

function heartbeatSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.01 || n > 86400) throw new InvalidArgumentError(`--heartbeat-freq must be a number of seconds from 0.01 to 86400, got "${value}"`);
  return n;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function packageVersion(): string {
  try {
    // dist/src/cli.js and src/cli.ts both sit two levels below the package root.
    return (JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

interface StatusOptions {
  port: number;
  secret: string[];
  clusterId: string;
  broadcastIp?: string;
  multicastGroup?: string;
  bindIp: string;
  listen: number;
  hello: boolean;
  heartbeatFreq: number;
  checkBeats: number;
  watch?: boolean;
  frames?: number;
  json?: boolean;
}

/** Redraws per second with --watch; each frame also sends a hello. */
const FRAME_MS = 1000;

async function status(options: StatusOptions, usageError: (message: string) => never): Promise<number> {
  if (options.clusterId && !CLUSTER_ID_PATTERN.test(options.clusterId)) {
    usageError(`error: --cluster-id must be 1 to 64 letters, digits, ".", "-" or "_", got "${options.clusterId}"`);
  }
  if (options.frames !== undefined && !options.watch) usageError('error: --frames needs --watch');
  const observer = new Observer({
    port: options.port,
    broadcastIp: options.broadcastIp ?? computeBroadcastIP(os.networkInterfaces()),
    bindIp: options.bindIp,
    multicastGroup: options.multicastGroup ?? null,
    keyring: options.secret.length > 0 ? createKeyring(options.secret) : null,
    clusterId: options.clusterId,
    tickMs: options.heartbeatFreq * 1000,
    checkBeats: options.checkBeats,
  });
  try {
    await observer.open();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? ' (another program holds it without address reuse)' : code === 'EACCES' ? ' (ports below 1024 need root)' : '';
    process.stderr.write(`error: cannot listen on UDP port ${options.port}${why}: ${(err as Error).message}\n`);
    observer.close();
    return EXIT_NOTHING_HEARD;
  }
  const color = !options.json && process.stdout.isTTY === true && !process.env.NO_COLOR;
  const print = (snapshot: Snapshot): void => {
    process.stdout.write(options.json ? JSON.stringify(snapshot) + '\n' : renderTable(snapshot, { color }) + '\n');
  };
  const ask = (): void => {
    if (options.hello) observer.hello();
  };
  ask();

  if (options.watch) {
    let frames = 0;
    let heardAny = false;
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        clearInterval(timer);
        process.removeListener('SIGINT', stop);
        resolve();
      };
      const timer = setInterval(() => {
        const snapshot = observer.snapshot();
        heardAny ||= snapshot.servers.length > 0;
        if (color) process.stdout.write('\x1b[2J\x1b[H');
        print(snapshot);
        // Every frame asks again: a server answers at once, so none goes quiet between its heartbeats.
        ask();
        if (options.frames !== undefined && ++frames >= options.frames) stop();
      }, FRAME_MS);
      process.once('SIGINT', stop);
    });
    observer.close();
    return heardAny ? EXIT_OK : EXIT_NOTHING_HEARD;
  }

  // A second hello halfway through (and every second of a long --listen) covers a lost one.
  const again = setInterval(ask, Math.min(FRAME_MS, (options.listen * 1000) / 2));
  await new Promise((resolve) => setTimeout(resolve, options.listen * 1000));
  clearInterval(again);
  const snapshot = observer.snapshot();
  observer.close();
  if (snapshot.servers.length === 0) {
    const dropped = Object.entries(snapshot.observer.dropped).map(([r, n]) => `${r} ${n}`).join(', ');
    process.stderr.write(
      `error: no heartbeat heard on UDP port ${options.port} in ${options.listen} s.` +
        (dropped
          ? ` Datagrams were dropped (${dropped}): check --secret and --cluster-id.`
          : options.hello
            ? ' Check --port, firewalls, and that this host is on the cluster\'s network; servers older than 2.0 ignore the hello: use a --listen longer than their heartbeat_freq.'
            : ' With --no-hello, use a --listen longer than the heartbeat_freq.') +
        '\n',
    );
    // Scripts reading --json always get a document.
    if (options.json) print(snapshot);
    return EXIT_NOTHING_HEARD;
  }
  print(snapshot);
  return EXIT_OK;
}

export function main(argv: string[] = process.argv): Promise<number> {
  const program = new Command();
  program
    .name('pixl-server-multi')
    .description('Tools for pixl-server-multi clusters')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    // Exit codes are ours (2 for bad arguments); commander must not exit the process itself.
    .exitOverride();
  let exitCode = EXIT_OK;
  const statusCommand = program
    .command('status')
    .description('list the servers of a cluster as an observer (sends no heartbeat, never counts as a server)')
    .option('-p, --port <port>', 'the cluster\'s comm_port', integerIn('--port', 1, 65535), DEFAULT_CONFIG.comm_port)
    .option('-s, --secret <key>', 'secret_key of the cluster (repeat for rotation)', collect, [] as string[])
    .option('-c, --cluster-id <id>', 'cluster_id of the cluster', '')
    .option('-b, --broadcast-ip <ip>', 'where to send the hello (default: computed like the component)')
    .option('-m, --multicast-group <group>', 'for clusters on the multicast transport: the group to join')
    .option('--bind-ip <ip>', 'address to listen on', '0.0.0.0')
    .option('-l, --listen <seconds>', 'how long to listen before printing', positiveNumber('--listen'), 2)
    .option('--no-hello', 'only listen; do not ask servers to answer at once (wait for their heartbeats)')
    .option('--heartbeat-freq <seconds>', 'the cluster\'s heartbeat_freq, for servers whose heartbeats do not carry it', heartbeatSeconds, DEFAULT_CONFIG.heartbeat_freq)
    .option('--check-beats <n>', 'the cluster\'s check_beats, for servers whose heartbeats do not carry it', integerIn('--check-beats', 1, 1000), DEFAULT_CONFIG.check_beats)
    .option('-w, --watch', 'redraw every second until interrupted')
    .option('--frames <n>', 'with --watch: stop after this many redraws', integerIn('--frames', 1, 1_000_000))
    .option('-j, --json', 'print JSON for scripts (one document per frame)')
    .addHelpText(
      'after',
      '\nStates: listening (has not named a master), slave, master, suspect (silent for more than a\n' +
        'tick and a half), left (shut down, or silent past its tock; listed for 5 minutes).\n' +
        'Exit codes: 0 servers listed, 1 nothing heard or a run-time error, 2 bad arguments.',
    )
    .action(async (options: StatusOptions) => {
      exitCode = await status(options, (message) => statusCommand.error(message, { exitCode: EXIT_USAGE, code: 'pixl-server-multi.usage' }));
    });
  return program.parseAsync(argv).then(
    () => exitCode,
    (err: Error) => {
      // commander has printed its own message (usage, help, version) before throwing.
      if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
      process.stderr.write(`error: ${err.message}\n`);
      return EXIT_NOTHING_HEARD;
    },
  );
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}
