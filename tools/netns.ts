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
 * - `RoutedLab.create([[hosts of subnet 1], [hosts of subnet 2], ...])`: the same, but one
 *   switch per subnet (10.231.<k>.0/24) and a router namespace with a leg in each, which
 *   forwards between them; each host's default route is the router. The router's legs can
 *   be cut and restored (`cut(k)`, `restore(k)`): a WAN link failing between two sites.
 *
 *     <base>s<k>: bridge br0, one port v<i> per host of subnet k, and port rt to the router
 *     <base>rt:   leg r<k> (the peer of s<k>'s rt), 10.231.<k>.1/24; net.ipv4.ip_forward=1
 *     <base>h<i>: eth0, 10.231.<k>.<10+i>/24, default via 10.231.<k>.1
 *
 * Both labs refuse to be built when their addresses overlap an address or route of the
 * namespace the tests run in: a lab must never shadow, or be mistaken for, a real network.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readlinkSync, statSync } from 'node:fs';
import { Netmask } from 'netmask';

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

/**
 * Why the lab's `block` cannot be used here: it overlaps an IPv4 address or a (non-default)
 * route of the namespace this process runs in, i.e. a network this machine really uses.
 * Only reads (`ip addr show`, `ip route show`); null when there is no overlap.
 */
export function labCollision(block: string, read: (args: string[]) => string = readIp): string | null {
  const lab = new Netmask(block);
  const overlaps = (cidr: string): boolean => {
    let other: Netmask;
    try {
      other = new Netmask(cidr);
    } catch {
      return false;
    }
    return lab.contains(other.base) || other.contains(lab.base);
  };
  for (const line of read(['-4', '-o', 'addr', 'show']).split('\n')) {
    const match = /\binet (\S+)/.exec(line);
    if (match?.[1] && overlaps(match[1])) return `it overlaps ${match[1]} on ${line.split(/\s+/)[1] ?? '?'} of this machine`;
  }
  for (const line of read(['-4', 'route', 'show', 'table', 'all']).split('\n')) {
    // "10.0.0.0/8 via ...", "local 127.0.0.1 dev lo ...", "blackhole 10.1.0.0/16": the first dotted token.
    const destination = line.split(/\s+/).find((token) => /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(token));
    if (!destination || line.startsWith('default')) continue;
    if (overlaps(destination)) return `it overlaps the route "${line.trim()}" of this machine`;
  }
  return null;
}

function readIp(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}

/** `cannot()`, then the collision check, as one skip reason. */
function cannotBuild(block: string): string | null {
  const why = cannot();
  if (why) return why;
  let collision: string | null;
  try {
    collision = labCollision(block);
  } catch (err) {
    return `cannot read this machine's addresses and routes (ip addr/route show): ${firstLine(err)}`;
  }
  return collision && `refusing to build a lab on ${block}: ${collision}`;
}

const LAN_SUBNET = '10.213.0';
const LAN_PREFIX_LENGTH = 24;
const LAN_BLOCK = `${LAN_SUBNET}.0/${LAN_PREFIX_LENGTH}`;

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
    const why = cannotBuild(LAN_BLOCK);
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

  /**
   * Isolate (or, with `on` false, free) the switch ports of `hosts`: the bridge forwards nothing
   * between two isolated ports, both ways, while each still reaches every port that is not
   * isolated. Two hosts isolated make a non-transitive cut: neither hears the other, both hear
   * the rest, and the rest hears both.
   */
  isolate(hosts: string[], on = true): void {
    for (const host of hosts) {
      ip('-n', this.switchNs, 'link', 'set', 'dev', this.#entry(host).port, 'type', 'bridge_slave', 'isolated', on ? 'on' : 'off');
    }
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

// ---- subnets joined by a router, for test:lan ------------------------------------------

/** Subnet k (from 1) is 10.231.<k>.0/24; all of them lie in this block, checked for collisions. */
const ROUTED_BLOCK = '10.231.0.0/16';
const routedSubnet = (k: number): string => `10.231.${k}`;
/** Most subnets: k must stay a valid octet, and each is a namespace and a router leg. */
const MAX_SUBNETS = 8;

interface RoutedHost extends LabHost {
  /** 1-based index of its subnet. */
  subnet: number;
}

/** One switch namespace per subnet, a router namespace joining them, one namespace per host. */
export class RoutedLab {
  readonly routerNs: string;
  readonly #switches: string[] = [];
  readonly #hosts = new Map<string, RoutedHost>();
  readonly #namespaces: Namespaces;

  private constructor(subnets: readonly (readonly string[])[], namespaces: Namespaces) {
    const base = baseName();
    this.#namespaces = namespaces;
    this.routerNs = this.#namespaces.add(`${base}-rt`);
    ip('-n', this.routerNs, 'link', 'set', 'lo', 'up');
    let i = 0;
    subnets.forEach((hosts, index) => {
      const k = index + 1;
      const prefix = routedSubnet(k);
      const switchNs = this.#namespaces.add(`${base}-s${k}`);
      this.#switches.push(switchNs);
      ip('-n', switchNs, 'link', 'set', 'lo', 'up');
      ip('-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge');
      ip('-n', switchNs, 'link', 'set', 'br0', 'up');
      // The router's leg: its switch end is port "rt" of this subnet's bridge.
      ip('-n', switchNs, 'link', 'add', 'rt', 'type', 'veth', 'peer', 'name', this.#leg(k), 'netns', this.routerNs);
      ip('-n', switchNs, 'link', 'set', 'rt', 'master', 'br0', 'up');
      ip('-n', this.routerNs, 'addr', 'add', `${prefix}.1/24`, 'dev', this.#leg(k));
      ip('-n', this.routerNs, 'link', 'set', this.#leg(k), 'up');
      for (const host of hosts) {
        const netns = this.#namespaces.add(`${base}-h${i}`);
        const port = `v${i}`;
        const address = `${prefix}.${10 + i}`;
        ip('-n', switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns);
        ip('-n', switchNs, 'link', 'set', port, 'master', 'br0', 'up');
        ip('-n', netns, 'link', 'set', 'lo', 'up');
        ip('-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0');
        ip('-n', netns, 'link', 'set', 'eth0', 'up');
        ip('-n', netns, 'route', 'add', 'default', 'via', `${prefix}.1`);
        this.#hosts.set(host, { netns, address, port, subnet: k });
        i++;
      }
    });
    // A per-namespace setting (a new namespace starts with forwarding off), written by a
    // process inside the router's: /proc/sys/net shows the writer's namespace. Node itself
    // does it, so the lab needs no package beyond iproute2 (sysctl is not on slim images).
    const script = "require('node:fs').writeFileSync('/proc/sys/net/ipv4/ip_forward', '1')";
    execFileSync('ip', ['netns', 'exec', this.routerNs, process.execPath, '-e', script], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 10_000,
    });
  }

  /** A lab with one subnet per list of hosts (hostnames unique across all), or the reason there is none. */
  static create(subnets: readonly (readonly string[])[]): RoutedLab | { skip: string } {
    const all = subnets.flat();
    if (subnets.length < 1 || subnets.length > MAX_SUBNETS)
      throw new Error(`a routed lab has 1 to ${MAX_SUBNETS} subnets, not ${subnets.length}`);
    if (new Set(all).size !== all.length || all.length > 200) throw new Error('a routed lab needs at most 200 distinct hostnames');
    const why = cannotBuild(ROUTED_BLOCK);
    if (why) return { skip: why };
    sweepOrphans();
    const namespaces = new Namespaces();
    try {
      return new RoutedLab(subnets, namespaces);
    } catch (err) {
      namespaces.remove();
      return { skip: `cannot build the namespaces, links and routes (ip): ${firstLine(err)}` };
    }
  }

  netnsOf(host: string): string {
    return this.#entry(host).netns;
  }

  addressOf(host: string): string {
    return this.#entry(host).address;
  }

  /** 1-based index of the host's subnet. */
  subnetOf(host: string): number {
    return this.#entry(host).subnet;
  }

  /** The broadcast address of the host's subnet (what the default computation should find). */
  broadcastOf(host: string): string {
    return `${routedSubnet(this.subnetOf(host))}.255`;
  }

  /**
   * Take the router's leg into subnet k down: the router loses its route there, so nothing
   * crosses between k and the others; each subnet still works on its own.
   */
  cut(k: number): void {
    ip('-n', this.routerNs, 'link', 'set', this.#leg(k), 'down');
  }

  /** Bring the leg back up: the kernel restores the subnet's route with it. Safe to call twice. */
  restore(k: number): void {
    ip('-n', this.routerNs, 'link', 'set', this.#leg(k), 'up');
  }

  /** Safe to call twice. */
  remove(): void {
    this.#namespaces.remove();
  }

  #leg(k: number): string {
    if (!Number.isInteger(k) || k < 1 || k > this.#switches.length) throw new Error(`no subnet ${k} in this lab`);
    return `r${k}`;
  }

  #entry(host: string): RoutedHost {
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
    throw new Error(
      `Refusing ${LAN_NETNS_ENV}=${JSON.stringify(name)}: ${why}; a non-loopback network is only allowed inside a test namespace`,
    );
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
