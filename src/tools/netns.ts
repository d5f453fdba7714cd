/**
 * Network namespaces for the real multi-host tests (`npm run test:lan`, root only).
 *
 * The one exception to "loopback only": a member may use a real interface, real private
 * addresses and the default broadcast computation, but only inside a namespace we created.
 * The layout never touches the host's interfaces or its routing:
 *
 *   namespace <prefix>sw:  bridge br0, one port v<i> per host
 *   namespace <prefix>h<i>: eth0 (the peer of v<i>), 10.213.0.<10+i>/24, and lo
 *
 * Every `ip` command names a namespace (`ip netns add/del`, `ip -n <ns> ...`); links are
 * created inside the switch namespace and their peers moved straight into a host namespace.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readlinkSync, statSync } from 'node:fs';

/** Every namespace this module creates starts with this; the pid after it says whose it is. */
export const NETNS_PREFIX = 'psmlan-';
export const LAN_SUBNET = '10.213.0';
export const LAN_PREFIX_LENGTH = 24;
const NETNS_NAME = /^psmlan-\d+-[a-z0-9]+$/;

/** The env var that lets a child use a non-loopback network; its value names the namespace. */
export const LAN_NETNS_ENV = 'PSM_LAN_NETNS';

/**
 * Throws unless this process runs inside the network namespace `name` created by
 * `ip netns add`, and that namespace is not the one of PID 1 nor of our parent (the test
 * runner, which stays in the host's namespace). The env var alone proves nothing; this does.
 */
export function assertInsideLabNetns(name: string): void {
  const refuse = (why: string): never => {
    throw new Error(`Refusing ${LAN_NETNS_ENV}=${JSON.stringify(name)}: ${why}; a non-loopback network is only allowed inside a test namespace`);
  };
  if (!NETNS_NAME.test(name)) refuse(`not a name this test harness creates (${NETNS_PREFIX}<pid>-<id>)`);
  const self = statSync('/proc/self/ns/net');
  let named;
  try {
    named = statSync(`/run/netns/${name}`);
  } catch {
    return refuse('no such namespace in /run/netns');
  }
  if (self.dev !== named.dev || self.ino !== named.ino) refuse('this process is not inside it');
  const mine = readlinkSync('/proc/self/ns/net');
  const references: string[] = [];
  // PID 1's link is unreadable in some containers; the parent's is then the reference.
  for (const pid of [1, process.ppid]) {
    try {
      references.push(readlinkSync(`/proc/${pid}/ns/net`));
    } catch {
      // not readable here
    }
  }
  if (references.length === 0) refuse('cannot read the namespace of PID 1 or of the parent to compare');
  if (references.includes(mine)) refuse(`this process shares its network namespace (${mine}) with PID 1 or its parent`);
}

/** Why namespaces cannot be used here, or null when they can (root, `ip netns` works). */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'creating network namespaces needs root';
  const probe = `${NETNS_PREFIX}${process.pid}-probe`;
  try {
    ip('netns', 'add', probe);
  } catch (err) {
    return `\`ip netns add\` failed: ${(err as Error).message.split('\n')[0]}`;
  }
  try {
    ip('netns', 'del', probe);
  } catch {
    // best effort; removeStaleNamespaces() catches it next time
  }
  return null;
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function listNamespaces(): string[] {
  try {
    return readdirSync('/run/netns');
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Delete namespaces left by runs that died before cleaning up (their pid is gone). */
export function removeStaleNamespaces(): string[] {
  const removed: string[] = [];
  for (const name of listNamespaces()) {
    const match = /^psmlan-(\d+)-/.exec(name);
    if (!match || alive(Number(match[1]))) continue;
    try {
      ip('netns', 'del', name);
      removed.push(name);
    } catch {
      // already gone
    }
  }
  return removed;
}

const TRAPPED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export interface LabHost {
  host: string;
  netns: string;
  address: string;
  /** The switch port of this host, inside the switch namespace. */
  port: string;
}

/** A switch namespace with a bridge, and one namespace per host plugged into it. */
export class NetnsLab {
  readonly switchNs: string;
  readonly hosts = new Map<string, LabHost>();
  #created: string[] = [];
  #exitHook = (): void => this.destroy();
  /** Like a shell trap: clean up, then die of the same signal as we would have. */
  #signalHook = (signal: NodeJS.Signals): void => {
    this.destroy();
    process.kill(process.pid, signal);
  };

  constructor(hosts: string[]) {
    const base = `${NETNS_PREFIX}${process.pid}-`;
    this.switchNs = `${base}sw`;
    // Cleanup even when the runner exits or is interrupted without reaching our `after`
    // hook; a run killed outright is cleaned by removeStaleNamespaces() next time.
    process.once('exit', this.#exitHook);
    for (const signal of TRAPPED) process.once(signal, this.#signalHook);
    try {
      this.#add(this.switchNs);
      ip('-n', this.switchNs, 'link', 'set', 'lo', 'up');
      ip('-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', this.switchNs, 'link', 'set', 'br0', 'up');
      hosts.forEach((host, i) => {
        const netns = `${base}h${i}`;
        const port = `v${i}`;
        const address = `${LAN_SUBNET}.${10 + i}`;
        this.#add(netns);
        ip('-n', this.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
        ip('-n', this.switchNs, 'link', 'set', port, 'master', 'br0', 'up');
        ip('-n', netns, 'link', 'set', 'lo', 'up');
        ip('-n', netns, 'addr', 'add', `${address}/${LAN_PREFIX_LENGTH}`, 'dev', 'eth0');
        ip('-n', netns, 'link', 'set', 'eth0', 'up');
        this.hosts.set(host, { host, netns, address, port });
      });
    } catch (err) {
      this.destroy();
      throw err;
    }
  }

  netnsOf(host: string): string {
    return this.#entry(host).netns;
  }

  /** Unplug a host from the bridge: its link stays up, but nothing reaches the others. */
  detach(host: string): void {
    ip('-n', this.switchNs, 'link', 'set', this.#entry(host).port, 'nomaster');
  }

  attach(host: string): void {
    ip('-n', this.switchNs, 'link', 'set', this.#entry(host).port, 'master', 'br0');
  }

  /** Idempotent; deleting the namespaces removes their links and the bridge with them. */
  destroy(): void {
    process.removeListener('exit', this.#exitHook);
    for (const signal of TRAPPED) process.removeListener(signal, this.#signalHook);
    for (const name of this.#created.splice(0).reverse()) {
      try {
        ip('netns', 'del', name);
      } catch {
        // already gone
      }
    }
  }

  #add(name: string): void {
    ip('netns', 'add', name);
    this.#created.push(name);
  }

  #entry(host: string): LabHost {
    const entry = this.hosts.get(host);
    if (!entry) throw new Error(`no lab host ${host}`);
    return entry;
  }
}
