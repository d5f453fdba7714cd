/**
 * One server of the etcd fault suite in a process of its own: a real pixl-server with the
 * MultiServer component in etcd mode, and an application that does what the README tells
 * one to: while master, a write fenced with the term (the `term` key must still hold it)
 * every `workMs`, and a checkpoint every `checkpointMs`, whose outcome it awaits. It reports
 * every role event, every fenced write (with etcd's revision when accepted) and every
 * checkpoint outcome to its parent, with a clock shared by the processes of this machine.
 */
import PixlServer = require('pixl-server');
import MultiServer = require('../src/index');
import { assertLoopback } from './loopback';
import { preciseNow as now } from './waiters';

export interface EtcdChildConfig {
  hostname: string;
  /** 127.0.0.x: each server's message socket. */
  bindIp: string;
  port: number;
  heartbeatFreq: number;
  checkBeats: number;
  logDir: string;
  debugLevel: number;
  coordinator: NonNullable<MultiServer.Config['coordinator']>;
  workMs: number;
  checkpointMs: number;
}

export type EtcdChildReport =
  | { kind: 'loaded' | 'ready' | 'down'; host: string; t: number }
  | { kind: 'master'; host: string; t: number; term: number; checkpoint: unknown }
  | { kind: 'slave'; host: string; t: number; term: number }
  | { kind: 'masterchange'; host: string; t: number; master: string; term: number }
  /** A fenced write: sent at `t0`, answered at `t`; `revision`: etcd's, when it was accepted. */
  | { kind: 'write'; host: string; t0: number; t: number; term: number; ok: boolean; revision: number; error?: string }
  /** A checkpoint's outcome (`n` counts up across the cluster's masters: it is the master's last plus one). */
  | { kind: 'checkpoint'; host: string; t0: number; t: number; n: number; ok: boolean; reason: string }
  | { kind: 'message'; host: string; t: number; from: string; payload: unknown }
  | { kind: 'info'; host: string; t: number; port: number; iid: string };

export type EtcdChildCommand =
  | { cmd: 'start' }
  | { cmd: 'stepDown' }
  | { cmd: 'promote' }
  | { cmd: 'shutdown' }
  | { cmd: 'send'; to: string; payload: unknown };

export const ETCD_CHILD_SCRIPT = __filename;

function main(): void {
  const config = JSON.parse(process.argv[2] as string) as EtcdChildConfig;
  assertLoopback(config.bindIp, 'bind_ip');
  for (const host of config.coordinator.hosts) assertLoopback(new URL(host).hostname, 'etcd host');
  const send = (report: EtcdChildReport): void => {
    process.send?.(report);
  };
  const server = new PixlServer({
    __name: 'EtcdFaultMember',
    __version: '1.0',
    config: {
      hostname: config.hostname,
      ip: config.bindIp,
      foreground: true,
      echo: false,
      exit_on_shutdown: true,
      log_dir: config.logDir,
      log_filename: `${config.hostname}.log`,
      debug_level: config.debugLevel,
      MultiServer: {
        comm_port: config.port,
        bind_ip: config.bindIp,
        heartbeat_freq: config.heartbeatFreq,
        check_beats: config.checkBeats,
        coordinator: config.coordinator,
      },
    },
    components: [MultiServer],
  });
  const multi = (): MultiServer => server.MultiServer as MultiServer;
  const { Etcd3 } = require('etcd3') as typeof import('etcd3');
  const app = new Etcd3({ hosts: config.coordinator.hosts, dialTimeout: 1000 });
  const prefix = config.coordinator.prefix ?? '';
  let checkpointN = 0;
  server.on('master', (term: number, checkpoint: unknown) => {
    checkpointN = (checkpoint as { n?: number } | null)?.n ?? 0;
    send({ kind: 'master', host: config.hostname, t: now(), term, checkpoint });
  });
  server.on('slave', () => send({ kind: 'slave', host: config.hostname, t: now(), term: multi().term }));
  server.on('masterchange', (master: string) =>
    send({ kind: 'masterchange', host: config.hostname, t: now(), master, term: multi().term }),
  );
  server.on('message', (_type, payload, from) => send({ kind: 'message', host: config.hostname, t: now(), from, payload }));
  // The README's fenced write: etcd itself refuses it once this term no longer holds the key.
  let writing = false;
  setInterval(() => {
    if (writing || !multi()?.master) return;
    writing = true;
    const term = multi().term;
    const t0 = now();
    app
      .if(`${prefix}term`, 'Value', '==', String(term))
      .then(app.put(`${prefix}work`).value(`${config.hostname}:${term}`))
      .options({ deadline: Date.now() + 1000 })
      .commit()
      .then(
        (result) =>
          send({
            kind: 'write',
            host: config.hostname,
            t0,
            t: now(),
            term,
            ok: result.succeeded,
            revision: result.succeeded ? Number(result.header.revision) : 0,
          }),
        (err: Error) => send({ kind: 'write', host: config.hostname, t0, t: now(), term, ok: false, revision: 0, error: err.message }),
      )
      .finally(() => {
        writing = false;
      });
  }, config.workMs);
  setInterval(() => {
    if (!multi()?.master) return;
    const n = ++checkpointN;
    const t0 = now();
    let result: Promise<{ ok: boolean; reason: string }>;
    try {
      result = multi().setCheckpoint({ n });
    } catch {
      return; // not master after all (its lease's deadline passed a moment ago)
    }
    void result.then((outcome) =>
      send({ kind: 'checkpoint', host: config.hostname, t0, t: now(), n, ok: outcome.ok, reason: outcome.reason }),
    );
  }, config.checkpointMs);
  process.on('message', (command: EtcdChildCommand) => {
    switch (command.cmd) {
      case 'start':
        server.startup(() => {
          send({ kind: 'ready', host: config.hostname, t: now() });
          const lease = multi().coordinator;
          send({
            kind: 'info',
            host: config.hostname,
            t: now(),
            port: (multi().transport as { boundPort?: number } | null)?.boundPort ?? 0,
            iid: lease?.instanceId ?? '',
          });
        });
        break;
      case 'stepDown':
        multi()
          .stepDown()
          .catch(() => undefined);
        break;
      case 'promote':
        multi()
          .promote()
          .catch(() => undefined);
        break;
      case 'send':
        try {
          multi().send(command.to, 'fault', command.payload as never);
        } catch {
          // the target is unknown or the message too big: the test sees nothing arrive
        }
        break;
      case 'shutdown':
        server.shutdown();
        break;
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ kind: 'loaded', host: config.hostname, t: now() });
}

if (require.main === module) main();
