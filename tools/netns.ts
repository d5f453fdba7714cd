/**
 * Private network namespaces for tests that loopback cannot serve. Needs root and `ip`
 * (iproute2); each constructor says why it cannot, so the test can skip. Every `ip`
 * command names a namespace (`ip netns add/del`, `ip -n <ns> ...`): nothing here touches
 * the host's interfaces or routing, and nothing in a namespace is linked to the host.
 *
 * - `createNetns()`: one namespace with a veth pair whose two ends both stay inside it.
 *   IPv6 multicast is never delivered on `lo` (not even with its MULTICAST flag set and a
 *   route), so the multicast tests run there.
 * - `createLab(hosts)`: the real multi-host tests (`npm run test:lan`). One namespace per
 *   host, each with a veth pair to a bridge in a "switch" namespace, on 10.213.0.0/24:
 *
 *     <base>sw:  bridge br0, one port v<i> per host
 *     <base>h<i>: eth0 (the peer of v<i>), 10.213.0.<10+i>/24, and lo
 *
 *   Members there use real addresses and the default broadcast computation, the one
 *   exception to "loopback only", allowed by PSM_LAN_NETNS and checked by
 *   `assertInsideLabNetns` in the member itself.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readlinkSync, statSync } from 'node:fs';

/** Every namespace made here is named `<PREFIX><pid>-<hex>...`: the pid says whose it is. */
const PREFIX = 'psm-test-';
const OURS = /^psm-test-(\d+)-[0-9a-f]+(?:-[a-z0-9]+)?$/;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
}

function firstLine(err: unknown): string {
  const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
  return (stderr || (err as Error).message).split('\n')[0] ?? '';
}

/** Why namespaces cannot be made here before even trying, or null. */
function cannot(): string | null {
  if (process.platform !== 'linux') return 'network namespaces are Linux only';
  if (process.getuid?.() !== 0) return 'creating a network namespace needs root';
  return null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Namespaces left by a test run that was killed (its pid is gone): ours by name, so ours to delete. */
function sweepOrphans(): void {
  let listing = '';
  try {
    listing = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 });
  } catch {
    return;
  }
  for (const line of listing.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const match = OURS.exec(name);
    if (!match || isAlive(Number(match[1]))) continue;
    try {
      ip('netns', 'del', name);
    } catch {
      // someone else got there first
    }
  }
}

/**
 * The namespaces of one test: created in order, deleted in reverse (which removes their
 * links and the bridge with them) on `remove()`, on exit, and on SIGINT/SIGTERM/SIGHUP.
 */
class Namespaces {
  readonly #names: string[] = [];
  #exitHook = (): void => this.remove();
  /** Like a shell trap: clean up, then die of the same signal as we would have. */
  #signalHook = (signal: NodeJS.Signals): void => {
    // A second signal (the test runner passes Ctrl-C on as SIGTERM) must not kill us
    // halfway through: with no listener left, its default action would.
    const hold = (): void => {};
    for (const other of TRAPPED) process.on(other, hold);
    this.remove();
    for (const other of TRAPPED) process.removeListener(other, hold);
    process.kill(process.pid, signal);
  };

  constructor() {
    process.once('exit', this.#exitHook);
    for (const signal of TRAPPED) process.once(signal, this.#signalHook);
  }

  add(name: string): string {
    ip('netns', 'add', name);
    this.#names.push(name);
    return name;
  }

  /** Safe to call twice. */
  remove(): void {
    process.removeListener('exit', this.#exitHook);
    for (const signal of TRAPPED) process.removeListener(signal, this.#signalHook);
    for (const name of this.#names.splice(0).reverse()) {
      try {
        ip('netns', 'del', name);
      } catch {
        // already gone
      }
    }
  }
}

const TRAPPED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function baseName(): string {
  return `${PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
}

// ---- one namespace, for multicast ----------------------------------------------------

export interface Netns {
  name: string;
  /** Run a command inside: prefix it with this (`ip netns exec <name>`). */
  launcher: string[];
  /** The veth end that carries multicast, and its IPv6 address (no DAD wait: `nodad`). */
  interface: string;
  address: string;
  /** Delete the namespace and everything in it; safe to call twice. */
  remove(): void;
}

const IFACE = 'psm0';
const PEER = 'psm1';
/** A unique-local address: not routable anywhere, and there is nowhere to route it anyway. */
const ADDRESS = 'fd00:3014::1';

/** A fresh namespace ready for IPv6 multicast, or the reason there is none. */
export function createNetns(): Netns | { skip: string } {
  const why = cannot();
  if (why) return { skip: why };
  sweepOrphans();
  const namespaces = new Namespaces();
  let name: string;
  try {
    name = namespaces.add(baseName());
  } catch (err) {
    namespaces.remove();
    return { skip: `cannot create a network namespace (ip netns add): ${firstLine(err)}` };
  }
  try {
    ip('-n', name, 'link', 'set', 'lo', 'up');
    ip('-n', name, 'link', 'add', IFACE, 'type', 'veth', 'peer', 'name', PEER);
    ip('-n', name, 'link', 'set', IFACE, 'up');
    ip('-n', name, 'link', 'set', PEER, 'up');
    ip('-n', name, '-6', 'addr', 'add', `${ADDRESS}/64`, 'dev', IFACE, 'nodad');
  } catch (err) {
    namespaces.remove();
    return { skip: `cannot set up the namespace's interfaces: ${firstLine(err)}` };
  }
  return { name, launcher: ['ip', 'netns', 'exec', name], interface: IFACE, address: ADDRESS, remove: () => namespaces.remove() };
}

// ---- a LAN of namespaces, for test:lan -------------------------------------------------

const LAN_SUBNET = '10.213.0';
const LAN_PREFIX_LENGTH = 24;

/** The env var that lets a member use a non-loopback network; its value names the namespace. */
export const LAN_NETNS_ENV = 'PSM_LAN_NETNS';

interface LabHost {
  netns: string;
  address: string;
  /** The switch port of this host, inside the switch namespace. */
  port: string;
}

/** A switch namespace with a bridge, and one namespace per host plugged into it. */
export class NetnsLab {
  readonly switchNs: string;
  readonly #hosts = new Map<string, LabHost>();
  readonly #namespaces: Namespaces;

  private constructor(hosts: string[], namespaces: Namespaces) {
    const base = baseName();
    this.#namespaces = namespaces;
    this.switchNs = this.#namespaces.add(`${base}-sw`);
    ip('-n', this.switchNs, 'link', 'set', 'lo', 'up');
    ip('-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', this.switchNs, 'link', 'set', 'br0', 'up');
    hosts.forEach((host, i) => {
      const netns = this.#namespaces.add(`${base}-h${i}`);
      const port = `v${i}`;
      const address = `${LAN_SUBNET}.${10 + i}`;
      // Created in the switch namespace, its peer moved straight into the host's.
      ip('-n', this.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
      ip('-n', this.switchNs, 'link', 'set', port, 'master', 'br0', 'up');
      ip('-n', netns, 'link', 'set', 'lo', 'up');
      ip('-n', netns, 'addr', 'add', `${address}/${LAN_PREFIX_LENGTH}`, 'dev', 'eth0');
      ip('-n', netns, 'link', 'set', 'eth0', 'up');
      this.#hosts.set(host, { netns, address, port });
    });
  }

  /** A lab for these hosts, or the reason there is none. */
  static create(hosts: string[]): NetnsLab | { skip: string } {
    const why = cannot();
    if (why) return { skip: why };
    sweepOrphans();
    const namespaces = new Namespaces();
    try {
      return new NetnsLab(hosts, namespaces);
    } catch (err) {
      namespaces.remove();
      return { skip: `cannot build the namespaces and links (ip): ${firstLine(err)}` };
    }
  }

  netnsOf(host: string): string {
    return this.#entry(host).netns;
  }

  addressOf(host: string): string {
    return this.#entry(host).address;
  }

  /** Unplug a host from the bridge: its link stays up, but nothing reaches the others. */
  detach(host: string): void {
    ip('-n', this.switchNs, 'link', 'set', this.#entry(host).port, 'nomaster');
  }

  attach(host: string): void {
    ip('-n', this.switchNs, 'link', 'set', this.#entry(host).port, 'master', 'br0');
  }

  /** Safe to call twice. */
  remove(): void {
    this.#namespaces.remove();
  }

  #entry(host: string): LabHost {
    const entry = this.#hosts.get(host);
    if (!entry) throw new Error(`no lab host ${host}`);
    return entry;
  }
}

/**
 * Throws unless this process runs inside the network namespace `name`, made by this
 * module, and that namespace is not the one of PID 1 nor of our parent (the test runner,
 * which stays in the host's namespace). The env var alone proves nothing; this does.
 */
export function assertInsideLabNetns(name: string): void {
  const refuse = (why: string): never => {
    throw new Error(`Refusing ${LAN_NETNS_ENV}=${JSON.stringify(name)}: ${why}; a non-loopback network is only allowed inside a test namespace`);
  };
  if (!OURS.test(name)) refuse(`not a name the test helpers create (${PREFIX}<pid>-...)`);
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
