/**
 * One cluster member in its own process: a real pixl-server with the MultiServer
 * component, configured from the PSM_CHILD environment variable, reporting every event
 * to its parent over IPC. Used by the demo, the socket tests, the bench and the LAN tests.
 *
 * The network rule is enforced here too: the config must keep every packet on this machine,
 * unless PSM_LAN_NETNS names a test namespace that this process really runs inside, in which
 * case no broadcast address may be given (the default computation is what the LAN tests prove).
 */
import dgram = require('node:dgram');
import { readlinkSync } from 'node:fs';
import * as path from 'node:path';
import PixlServer = require('pixl-server');
import MultiServer = require('../src/index');
import { isWildcard } from '../src/protocol/address';
import { healthText } from '../src/shell/view';
import { assertLoopbackConfig } from './loopback';
import { assertInsideLabNetns, LAN_NETNS_ENV } from './netns';
import { preciseNow } from './waiters';
import { startWork, type WorkConfig } from './work';

export interface ChildConfig {
  hostname: string;
  port: number;
  /** Loopback broadcast address; omitted only inside a LAN test namespace (default computation). */
  broadcastIp?: string;
  heartbeatFreq: number;
  checkBeats: number;
  logDir: string;
  debugLevel?: number;
  /** Extra keys for the MultiServer section. */
  multi?: Record<string, unknown>;
  /** Load, report 'spawned', and start only on a 'go' command: a true simultaneous cold start. */
  hold?: boolean;
  /** pixl-server without the MultiServer component: the baseline of the bench's idle cost. */
  bare?: boolean;
  /** The floor component (floor-component.ts) instead of MultiServer: the bench's yardstick for idle cost. */
  floor?: boolean;
  /** A WebServer section: the member also runs pixl-server-web (on 127.0.0.1 only), for the HTTP routes. */
  web?: Record<string, unknown>;
  /** Master work through exclusive() (tools/work.ts): a scheduler on every member, jobs logged to a file. */
  work?: WorkConfig;
}

export interface ChildState {
  masterHostname: string;
  master: boolean;
  term: number;
  eligible: boolean;
  servers: string[];
  /** hostname → the ip each record carries. */
  serverIps: Record<string, string>;
  /** The broadcast address the component uses (given or computed). */
  broadcastIp: string;
  /** This process's network namespace, e.g. "net:[4026531840]". */
  netns: string;
  socketsOpened: number;
  /** Unicast: the addresses this member sends to. */
  peers: string[];
  /** The health check's state ('' without one). */
  health: string;
  /** hostname → each record's health check as the status CLI writes it ('' without one). */
  peerHealth: Record<string, string>;
}

/** Resource use of one member, for the bench. */
export interface ChildStats {
  /** process.cpuUsage(): microseconds of user and system CPU since the process started. */
  cpuUserUs: number;
  cpuSystemUs: number;
  rssBytes: number;
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  socketsOpened: number;
}

/** A child sends its reports to the parent as arrays: those of one synchronous run together. */
export interface ChildReport {
  host: string;
  /** Epoch ms with sub-ms resolution, comparable across processes on one machine. */
  t: number;
  type:
    | 'spawned'
    | 'ready'
    | 'promoted'
    | 'steppeddown'
    | 'master'
    | 'slave'
    | 'addserver'
    | 'deleteserver'
    | 'masterchange'
    | 'state'
    | 'stats'
    | 'message'
    | 'sent'
    | 'answered'
    | 'linked'
    | 'reloaded'
    | 'shutdown';
  /** The hostname an event is about; for 'stats', 'sent' and 'answered', the command's id. */
  detail?: string;
  /** For deleteserver: epoch ms at which the removed server was last heard. */
  lastHeard?: number;
  /** For 'stats'. */
  stats?: ChildStats;
  /** For 'message': an application message that arrived (`from` is the sender's hostname). */
  message?: { type: string; payload: unknown; from: string; request: boolean };
  /** For 'answered': the reply to a request. */
  answer?: unknown;
  /** For 'sent' and 'answered': why `send()` threw or `request()` rejected. */
  error?: string;
  state: ChildState;
}

export type ChildCommand =
  | { cmd: 'go' }
  | { cmd: 'state' }
  | { cmd: 'stats'; id: string }
  | { cmd: 'promote' }
  | { cmd: 'stepdown' }
  | { cmd: 'eligible'; value: boolean }
  /** The result of the work's health check (with `work.health`). */
  | { cmd: 'healthy'; value: boolean }
  /** A health check of its own (every 0.1 s, rise and fall 1): one that throws `fail`, or passes (null). */
  | { cmd: 'healthcheck'; fail: string | null }
  | { cmd: 'shutdown' }
  | { cmd: 'data'; value: Record<string, unknown> }
  /** `multi.send(target, type, payload)`; reported as 'sent' with this id. */
  | { cmd: 'send'; id: string; target: string; type: string; payload: unknown }
  /** `multi.request(...)`; reported as 'answered' with this id. Every member replies to a request with `{ by: <its hostname>, got: <payload> }`. */
  | { cmd: 'request'; id: string; target: string; type: string; payload: unknown; timeoutMs: number }
  /**
   * Receive-side faults, replacing any before: datagrams whose sender (the `hostname` of the
   * open-format JSON) is in `drop` are never read; those from a sender in `delay` are read that
   * many ms late. A cut, a one-way link or a slow link, as seen from this member. Reported as 'linked'.
   */
  | { cmd: 'link'; drop: string[]; delay?: Record<string, number> }
  /** A config reload of the MultiServer section (these keys over the current ones), as pixl-server does on a file change. Reported as 'reloaded'. */
  | { cmd: 'reload'; multi: Record<string, unknown> };

export { preciseNow };

/** Every UDP socket this process creates, whoever creates it: the one-socket rule, measured. */
let socketsCreated = 0;
/** Receive-side faults (the 'link' command): senders never read, and senders read late (ms). */
const dropFrom = new Set<string>();
const delayFrom = new Map<string, number>();

/** The sender's hostname of an open-format datagram, or undefined. */
function senderOf(datagram: unknown): string | undefined {
  if (!Buffer.isBuffer(datagram)) return undefined;
  try {
    const hostname = (JSON.parse(datagram.toString('utf8')) as { hostname?: unknown }).hostname;
    return typeof hostname === 'string' ? hostname : undefined;
  } catch {
    return undefined;
  }
}

function countSockets(): void {
  const create = dgram.createSocket;
  (dgram as { createSocket: typeof dgram.createSocket }).createSocket = ((...args: Parameters<typeof dgram.createSocket>) => {
    socketsCreated++;
    const socket = create.apply(dgram, args);
    // Faults on what this member reads: the datagram is there, the application never sees it (or sees it late).
    const emit = socket.emit.bind(socket) as (event: string | symbol, ...rest: unknown[]) => boolean;
    (socket as { emit: (event: string | symbol, ...rest: unknown[]) => boolean }).emit = (event, ...rest) => {
      if (event !== 'message' || (dropFrom.size === 0 && delayFrom.size === 0)) return emit(event, ...rest);
      const sender = senderOf(rest[0]);
      if (sender !== undefined && dropFrom.has(sender)) return false;
      const delay = sender === undefined ? undefined : delayFrom.get(sender);
      if (delay === undefined) return emit(event, ...rest);
      setTimeout(() => emit(event, ...rest), delay);
      return true;
    };
    return socket;
  }) as typeof dgram.createSocket;
}

function main(): void {
  countSockets();
  const config = JSON.parse(process.env.PSM_CHILD ?? 'null') as ChildConfig | null;
  if (!config || !process.send) throw new Error('child.js runs under a parent (PSM_CHILD and IPC are required)');
  const section: Record<string, unknown> = {
    comm_port: config.port,
    heartbeat_freq: config.heartbeatFreq,
    check_beats: config.checkBeats,
    ...(config.broadcastIp === undefined ? {} : { broadcast_ip: config.broadcastIp }),
    ...config.multi,
  };
  const lanNetns = process.env[LAN_NETNS_ENV];
  if (lanNetns !== undefined) {
    assertInsideLabNetns(lanNetns);
    if (section.broadcast_ip !== undefined) {
      throw new Error(`${LAN_NETNS_ENV}: the LAN tests run with no broadcast_ip (the default computation)`);
    }
  } else {
    assertLoopbackConfig(section);
  }
  if (config.web && config.web.http_bind_address !== '127.0.0.1') {
    throw new Error(`Refusing to serve HTTP on ${JSON.stringify(config.web.http_bind_address)}: test members serve on 127.0.0.1 only`);
  }
  const bindIp = section.bind_ip;
  // Reported in heartbeats: a member bound to its own address reports that one; in a
  // namespace pixl-server finds the address of the veth itself, as on a real host.
  const ip = typeof bindIp === 'string' && !isWildcard(bindIp) ? bindIp : lanNetns === undefined ? '127.0.0.1' : undefined;

  const server = new PixlServer({
    __name: 'ClusterMember',
    __version: '1.0',
    config: {
      hostname: config.hostname,
      ...(ip ? { ip } : {}),
      foreground: true,
      echo: false,
      exit_on_shutdown: true,
      log_dir: config.logDir,
      log_filename: `${config.hostname}.log`,
      debug_level: config.debugLevel ?? 6,
      MultiServer: section,
      ...(config.web ? { WebServer: config.web } : {}),
    },
    components: config.bare
      ? []
      : config.floor
        ? [require('./floor-component') as typeof MultiServer]
        : config.web
          ? [MultiServer, require('pixl-server-web') as typeof MultiServer]
          : [MultiServer],
  });
  const multi = (): MultiServer | undefined => server.MultiServer as MultiServer | undefined;
  const component = (): MultiServer => {
    const found = multi();
    if (!found) throw new Error(`${config.hostname} runs pixl-server without MultiServer`);
    return found;
  };
  const netns = ((): string => {
    try {
      return readlinkSync('/proc/self/ns/net');
    } catch {
      return 'unknown';
    }
  })();
  const state = (): ChildState => ({
    masterHostname: multi()?.masterHostname ?? '',
    master: multi()?.master ?? false,
    term: multi()?.term ?? 0,
    eligible: multi()?.eligible ?? false,
    servers: Object.keys(multi()?.servers ?? {}).sort(),
    serverIps: Object.fromEntries(Object.values(multi()?.servers ?? {}).map((record) => [record.hostname, record.ip])),
    broadcastIp: multi()?.broadcastIP ?? '',
    netns,
    socketsOpened: socketsCreated,
    peers: multi()?.transport?.peers?.().sort() ?? [],
    health: multi()?.health?.state ?? '',
    peerHealth: Object.fromEntries(Object.values(multi()?.servers ?? {}).map((record) => [record.hostname, healthText(record.health)])),
  });
  const stats = (): ChildStats => {
    const cpu = process.cpuUsage();
    const { packetsIn, packetsOut, bytesIn, bytesOut } = multi()?.stats ?? { packetsIn: 0, packetsOut: 0, bytesIn: 0, bytesOut: 0 };
    return {
      cpuUserUs: cpu.user,
      cpuSystemUs: cpu.system,
      rssBytes: process.memoryUsage.rss(),
      packetsIn,
      packetsOut,
      bytesIn,
      bytesOut,
      socketsOpened: socketsCreated,
    };
  };
  // The events of one step (masterchange, then master or slave) are emitted in one synchronous
  // run: they go to the parent as one message, so a parent waiting for a state never acts
  // between them (it would take a role event still in the pipe for one that came after).
  let batch: ChildReport[] = [];
  const report = (type: ChildReport['type'], extra: Partial<ChildReport> = {}): void => {
    batch.push({ host: config.hostname, t: preciseNow(), type, state: state(), ...extra } satisfies ChildReport);
    if (batch.length > 1) return;
    queueMicrotask(() => {
      const reports = batch;
      batch = [];
      process.send?.(reports);
    });
  };

  let work: ReturnType<typeof startWork> | null = null;
  if (config.work) {
    const settings = config.work;
    server.once('ready', () => (work = startWork(component(), config.hostname, settings, () => report('state'))));
  }
  server.on('master', () => report('master'));
  server.on('slave', () => report('slave'));
  server.on('addserver', (record: { hostname: string }) => report('addserver', { detail: record.hostname }));
  server.on('deleteserver', (record: { hostname: string; now: number }) =>
    // record.now is wall-clock seconds; turn its age into the precise clock the reports use.
    report('deleteserver', { detail: record.hostname, lastHeard: preciseNow() - (Date.now() - record.now * 1000) }),
  );
  server.on('masterchange', (hostname: string) => report('masterchange', { detail: hostname }));
  server.on('message', (type, payload, from, reply) => {
    report('message', { detail: type, message: { type, payload, from, request: reply !== undefined } });
    // The echo proves the reply path too: it carries what arrived back to the sender.
    reply?.({ by: config.hostname, got: payload });
  });
  process.on('message', (command: ChildCommand) => {
    switch (command.cmd) {
      case 'go':
        server.startup(() => report('ready'));
        break;
      case 'state':
        report('state');
        break;
      case 'stats':
        report('stats', { detail: command.id, stats: stats() });
        break;
      case 'promote':
        component()
          .promote()
          .then(
            () => report('promoted'),
            (err: Error) => report('promoted', { detail: `failed: ${err.message}` }),
          );
        break;
      case 'stepdown':
        component()
          .stepDown()
          .then(
            () => report('steppeddown'),
            (err: Error) => report('steppeddown', { detail: `failed: ${err.message}` }),
          );
        break;
      case 'eligible':
        component().eligible = command.value;
        break;
      case 'healthy':
        work?.setHealthy(command.value);
        break;
      case 'healthcheck': {
        const fail = command.fail;
        component().setHealthCheck(
          () => {
            if (fail !== null) throw new Error(fail);
            return true;
          },
          { interval: 0.1, rise: 1, fall: 1 },
        );
        break;
      }
      case 'data':
        component().data = command.value as never;
        break;
      case 'send':
        try {
          component().send(command.target, command.type, command.payload as never);
          report('sent', { detail: command.id });
        } catch (err) {
          report('sent', { detail: command.id, error: (err as Error).message });
        }
        break;
      case 'request':
        component()
          .request(command.target, command.type, command.payload as never, { timeoutMs: command.timeoutMs })
          .then(
            (answer) => report('answered', { detail: command.id, answer }),
            (err: Error) => report('answered', { detail: command.id, error: err.message }),
          );
        break;
      case 'shutdown':
        server.shutdown();
        break;
      case 'link':
        dropFrom.clear();
        delayFrom.clear();
        for (const host of command.drop) dropFrom.add(host);
        for (const [host, ms] of Object.entries(command.delay ?? {})) delayFrom.set(host, ms);
        report('linked');
        break;
      case 'reload': {
        // As pixl-server on a config file change: the new section, then every component's config refreshed.
        const config = server.config as unknown as {
          get(key: string): Record<string, unknown>;
          set(key: string, value: unknown): void;
          refreshSubs(): void;
        };
        config.set('MultiServer', { ...config.get('MultiServer'), ...command.multi });
        config.refreshSubs();
        report('reloaded');
        break;
      }
    }
  });
  // The parent going away must not leave members running.
  process.on('disconnect', () => process.exit(0));
  if (config.hold) report('spawned');
  else server.startup(() => report('ready'));
}

if (require.main === module) main();

/** Where the compiled child script lives, for spawning. */
export const CHILD_SCRIPT = path.join(__dirname, 'child.js');
