/**
 * One cluster member in its own process: a real pixl-server with the MultiServer
 * component, configured from the PSM_CHILD environment variable, reporting every event
 * to its parent over IPC. Used by the demo, the socket tests and the bench.
 */
import dgram = require('node:dgram');
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import PixlServer = require('pixl-server');
import MultiServer = require('../index');
import { isWildcard } from '../transport/address';
import { assertLoopbackConfig } from './loopback';

export interface ChildConfig {
  hostname: string;
  port: number;
  broadcastIp: string;
  heartbeatFreq: number;
  checkBeats: number;
  logDir: string;
  debugLevel?: number;
  /** Extra keys for the MultiServer section. */
  multi?: Record<string, unknown>;
  /** Load, report 'spawned', and start only on a 'go' command: a true simultaneous cold start. */
  hold?: boolean;
}

export interface ChildState {
  masterHostname: string;
  master: boolean;
  term: number;
  eligible: boolean;
  servers: string[];
  socketsOpened: number;
  /** Unicast: the addresses this member sends to. */
  peers: string[];
}

export interface ChildReport {
  host: string;
  /** Epoch ms with sub-ms resolution, comparable across processes on one machine. */
  t: number;
  type: 'spawned' | 'ready' | 'promoted' | 'steppeddown' | 'master' | 'slave' | 'addserver' | 'deleteserver' | 'masterchange' | 'state' | 'shutdown';
  detail?: string;
  /** For deleteserver: epoch ms at which the removed server was last heard. */
  lastHeard?: number;
  state: ChildState;
}

export type ChildCommand = { cmd: 'go' } | { cmd: 'state' } | { cmd: 'promote' } | { cmd: 'stepdown' } | { cmd: 'eligible'; value: boolean } | { cmd: 'shutdown' } | { cmd: 'data'; value: Record<string, unknown> };

export function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Every UDP socket this process creates, whoever creates it: the one-socket rule, measured. */
let socketsCreated = 0;
function countSockets(): void {
  const create = dgram.createSocket;
  (dgram as { createSocket: typeof dgram.createSocket }).createSocket = ((...args: Parameters<typeof dgram.createSocket>) => {
    socketsCreated++;
    return create.apply(dgram, args);
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
    broadcast_ip: config.broadcastIp,
    ...config.multi,
  };
  assertLoopbackConfig(section);
  const bindIp = section.bind_ip;

  const server = new PixlServer({
    __name: 'ClusterMember',
    __version: '1.0',
    config: {
      hostname: config.hostname,
      // Reported in heartbeats; a member bound to its own address reports that one.
      ip: typeof bindIp === 'string' && !isWildcard(bindIp) ? bindIp : '127.0.0.1',
      foreground: true,
      echo: false,
      exit_on_shutdown: true,
      log_dir: config.logDir,
      log_filename: `${config.hostname}.log`,
      debug_level: config.debugLevel ?? 6,
      MultiServer: section,
    },
    components: [MultiServer],
  });
  const multi = (): MultiServer => server.MultiServer as MultiServer;
  const state = (): ChildState => ({
    masterHostname: multi().masterHostname,
    master: multi().master,
    term: multi().term,
    eligible: multi().eligible,
    servers: Object.keys(multi().servers).sort(),
    socketsOpened: socketsCreated,
    peers: multi().transport?.peers?.().sort() ?? [],
  });
  const report = (type: ChildReport['type'], extra: Partial<ChildReport> = {}): void => {
    process.send?.({ host: config.hostname, t: preciseNow(), type, state: state(), ...extra } satisfies ChildReport);
  };

  server.on('master', () => report('master'));
  server.on('slave', () => report('slave'));
  server.on('addserver', (record: { hostname: string }) => report('addserver', { detail: record.hostname }));
  server.on('deleteserver', (record: { hostname: string; now: number }) =>
    // record.now is wall-clock seconds; turn its age into the precise clock the reports use.
    report('deleteserver', { detail: record.hostname, lastHeard: preciseNow() - (Date.now() - record.now * 1000) }),
  );
  server.on('masterchange', (hostname: string) => report('masterchange', { detail: hostname }));
  process.on('message', (command: ChildCommand) => {
    switch (command.cmd) {
      case 'go':
        server.startup(() => report('ready'));
        break;
      case 'state':
        report('state');
        break;
      case 'promote':
        multi().promote().then(
          () => report('promoted'),
          (err: Error) => report('promoted', { detail: `failed: ${err.message}` }),
        );
        break;
      case 'stepdown':
        multi().stepDown().then(
          () => report('steppeddown'),
          (err: Error) => report('steppeddown', { detail: `failed: ${err.message}` }),
        );
        break;
      case 'eligible':
        multi().eligible = command.value;
        break;
      case 'data':
        multi().data = command.value as never;
        break;
      case 'shutdown':
        server.shutdown();
        break;
    }
  });
  // The parent going away must not leave members running.
  process.on('disconnect', () => process.exit(0));
  if (config.hold) process.send({ host: config.hostname, t: preciseNow(), type: 'spawned', state: state() } satisfies ChildReport);
  else server.startup(() => report('ready'));
}

if (require.main === module) main();

/** Where the compiled child script lives, for spawning. */
export const CHILD_SCRIPT = path.join(__dirname, 'child.js');
