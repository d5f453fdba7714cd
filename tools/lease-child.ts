/**
 * One lease-election server in a process of its own (forked by tools/process-cluster.ts's LeaseProcessCluster),
 * so that tests can SIGKILL, SIGSTOP and SIGCONT it for real. It reports every event to
 * its parent with a wall-clock time (one clock for every process of this machine), and runs
 * an app's "work": while master, every `workMs`, a write to etcd fenced with its term
 * (the README's fencing example), reporting whether etcd accepted it.
 */
import { LeaseNode, type LeaseNodeConfig } from './lease-node';
import type { CoreEvent } from '../src/elector/types';
import { preciseNow as wallNow } from './waiters';

export interface LeaseChildConfig extends LeaseNodeConfig {
  workMs: number;
}

export type LeaseChildReport =
  | { kind: 'event'; host: string; t: number; event: CoreEvent; term: number }
  | { kind: 'work'; host: string; t: number; term: number; ok: boolean; error?: string }
  /** Loaded (etcd3 and gRPC are slow to load), waiting for `start`. */
  | { kind: 'loaded'; host: string; t: number }
  | { kind: 'ready'; host: string; t: number }
  | { kind: 'down'; host: string; t: number };

export type LeaseChildCommand =
  | { cmd: 'start' }
  | { cmd: 'stepDown' }
  | { cmd: 'promote' }
  | { cmd: 'shutdown' }
  | { cmd: 'eligible'; value: boolean };

export const LEASE_CHILD_SCRIPT = __filename;

/**
 * The fencing example (the README's): write only while `<prefix>term` still holds the term we
 * were elected with. It lives under the master's lease and goes with its election key, so a
 * deposed master's write fails in etcd itself, whatever its clock says.
 */
export async function fencedWrite(
  client: import('etcd3').Etcd3,
  termKey: string,
  term: number,
  key: string,
  value: string,
): Promise<boolean> {
  const result = await client.if(termKey, 'Value', '==', String(term)).then(client.put(key).value(value)).commit();
  return result.succeeded;
}

if (require.main === module) {
  const config = JSON.parse(process.argv[2] as string) as LeaseChildConfig;
  const { Etcd3 } = require('etcd3') as typeof import('etcd3');
  const node = new LeaseNode(config);
  const app = new Etcd3({ hosts: config.hosts, dialTimeout: 1000 });
  const send = (report: LeaseChildReport): void => {
    process.send?.(report);
  };
  node.on('event', (event: CoreEvent) => {
    if (event.type === 'members' || event.type === 'message') return;
    send({ kind: 'event', host: config.hostname, t: wallNow(), event, term: node.machine.term });
  });
  let working = false;
  setInterval(() => {
    if (working || !node.master) return;
    working = true;
    const term = node.machine.heldTerm;
    fencedWrite(app, node.machine.keys.term, term, `${config.prefix}work`, JSON.stringify({ host: config.hostname, term }))
      .then(
        (ok) => send({ kind: 'work', host: config.hostname, t: wallNow(), term, ok }),
        (err: Error) => send({ kind: 'work', host: config.hostname, t: wallNow(), term, ok: false, error: err.message }),
      )
      .finally(() => {
        working = false;
      });
  }, config.workMs);
  process.on('message', (command: LeaseChildCommand) => {
    switch (command.cmd) {
      case 'start':
        node.start();
        send({ kind: 'ready', host: config.hostname, t: wallNow() });
        break;
      case 'stepDown':
        node.run((machine, now) => machine.stepDown(now));
        break;
      case 'promote':
        node.run((machine, now) => machine.promote(now));
        break;
      case 'eligible':
        node.run((machine, now) => machine.setEligible(command.value, now));
        break;
      case 'shutdown':
        void node.shutdown().then(() => {
          send({ kind: 'down', host: config.hostname, t: wallNow() });
          app.close();
          process.exit(0);
        });
        break;
    }
  });
  send({ kind: 'loaded', host: config.hostname, t: wallNow() });
}
