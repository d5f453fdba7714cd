/**
 * UDP unicast transport: for networks that carry neither broadcast nor multicast (most
 * clouds, Docker overlay networks, several subnets). A datagram "to everyone" is sent to
 * every address in the peer table (see peers.ts): the listed `peers`, the addresses that
 * sent us a valid heartbeat, and those our peers told us they hear.
 *
 * Joining through one listed peer: the newcomer N lists only A. N's heartbeat makes A
 * learn N; A then gossips its live addresses (a shell-level `peers` datagram, encoded by
 * the shell in the cluster's wire format) to everyone, N included; N probes them with
 * its heartbeats, and each of them learns N from those, or from A's gossip.
 *
 * One socket, bound without address reuse: two servers on one address and port would
 * each get only some of the datagrams, so that fails at startup instead. Servers sharing
 * a host need distinct `bind_ip` or `comm_port`.
 */
import * as dns from 'node:dns';
import type * as dgram from 'node:dgram';
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import type { Address } from '../protocol/messages';
import type { Family, PeerSpec } from '../protocol/address';
import { canonicalIp, formatAddress, isWildcard, parseAddress, parsePeer, unicastProblem } from '../protocol/address';
import { PeerSet } from './peers';
import { MAX_GOSSIP_ADDRESSES } from '../protocol/limits';
import { bindSocket, closeSocket } from './socket';
import type { Transport } from './types';

/** Unlisted addresses silent for this many tocks are forgotten. */
export const FORGET_AFTER_TOCKS = 3;
/** Gossip goes out at least once a tock, so a lost one is repaired. */
const GOSSIP_EVERY_TOCKS = 1;
/** ...and at most every half tick when something changed, so a cold start of many servers is not a storm. */
const GOSSIP_MIN_GAP_TICKS = 0.5;
/** Names in `peers` are looked up again this often (at least once a tock): containers move. */
const RESOLVE_MIN_INTERVAL_MS = 30_000;
/** Startup waits this long for the first lookups; a name that is slower is added when it resolves. */
const STARTUP_LOOKUP_MS = 2000;
/** Room left in a gossip datagram for everything but the addresses (hostname, JSON, an authentication envelope). */
const GOSSIP_OVERHEAD_BYTES = 400;
/** A gossiped address takes at most this many bytes ("[ffff:...:ffff]:65535" quoted, plus a comma). */
const GOSSIP_ADDRESS_BYTES = 50;

/** Resolve a name to the IP addresses of one family. */
export type LookupAll = (host: string, family: Family) => Promise<string[]>;

const systemLookup: LookupAll = async (host, family) =>
  (await dns.promises.lookup(host, { family, all: true })).map((entry) => entry.address);

export interface UdpUnicastOptions {
  /** comm_port: the port we bind, and the default port of a `peers` entry. */
  port: number;
  /** The address to bind: one interface's, or the wildcard of the family. */
  bindIp: string;
  family: Family;
  /** `peers` entries, as validated by the config. */
  peers: readonly string[];
  tickMs: number;
  checkBeats: number;
  /** Most unlisted addresses kept (max_servers). */
  maxLearned: number;
  /** Gossip datagrams are cut to fit (max_packet_bytes). */
  maxPacketBytes: number;
  /** Name lookups; the system resolver (dns.lookup, so /etc/hosts too) by default. */
  lookup?: LookupAll;
  resolveEveryMs?: number;
  log?: (level: number, message: string) => void;
}

export class UdpUnicastTransport implements Transport {
  onMessage: ((datagram: Buffer, from: Address) => void) | null = null;
  onError: ((err: Error) => void) | null = null;
  /** Set by the shell: one gossip datagram listing `addresses`, in the cluster's wire format. */
  gossipEncoder: ((addresses: string[]) => Buffer) | null = null;
  #socket: dgram.Socket | null = null;
  #options: UdpUnicastOptions;
  #socketsOpened = 0;
  #peers: PeerSet;
  #specs: PeerSpec[] = [];
  #localIps = new Set<string>();
  /** The last datagram sent to everyone (our latest heartbeat, as a rule): a new peer gets it at once. */
  #lastToAll: Buffer | null = null;
  #gossipDue = false;
  #lastGossipAt = -Infinity;
  #nextResolveAt = Infinity;
  #resolving = false;
  #closed = false;

  constructor(options: UdpUnicastOptions) {
    this.#options = { ...options };
    this.#peers = new PeerSet({
      isSelf: (address) => this.#isSelf(address),
      maxLearned: options.maxLearned,
      ...this.#windows(),
    });
    this.#specs = this.#parse(options.peers);
  }

  get socketsOpened(): number {
    return this.#socketsOpened;
  }

  /** Each server binds an address of its own: a datagram to one reaches that one. */
  readonly targets = true;

  get description(): string {
    const { bindIp, port } = this.#options;
    const shown = this.#specs.slice(0, 10).map((spec) => spec.text);
    if (this.#specs.length > shown.length) shown.push(`and ${this.#specs.length - shown.length} more`);
    const listed = shown.join(', ') || 'none yet: waiting to be contacted';
    return `unicast from ${formatAddress({ address: bindIp, port })} to peers ${listed}`;
  }

  /** The port the socket is bound to (comm_port, or the one the system picked for port 0); 0 before open. */
  get boundPort(): number {
    try {
      return this.#socket?.address().port ?? 0;
    } catch {
      return 0;
    }
  }

  /** Every address in the peer table (listed, heard and gossiped), canonical `ip:port`. */
  peers(): string[] {
    return this.#peers.known();
  }

  async open(): Promise<void> {
    const { bindIp, family, port } = this.#options;
    this.#socketsOpened++;
    this.#socket = await bindSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      port,
      address: bindIp,
      reuseAddr: false,
      onMessage: (datagram, from) => this.onMessage?.(datagram, from),
      onError: (err) => this.onError?.(err),
    });
    this.#localIps = localAddresses(bindIp, family);
    const now = performance.now();
    for (const spec of this.#specs) {
      if (spec.family !== 0) this.#peers.setConfigured(spec.text, [{ address: spec.host, port: spec.port }], now);
    }
    await this.#resolve(STARTUP_LOOKUP_MS);
  }

  send(datagram: Buffer, to?: Address, done?: (err?: Error | null) => void): void {
    const socket = this.#socket;
    if (!socket) {
      done?.(new Error('transport is closed'));
      return;
    }
    if (to) {
      this.#sendTo(socket, datagram, [to], done);
      return;
    }
    this.#lastToAll = datagram;
    const now = performance.now();
    if (now >= this.#nextResolveAt) void this.#resolve();
    const targets = this.#peers.targets(now);
    if (now - this.#lastGossipAt >= GOSSIP_EVERY_TOCKS * this.#tockMs) this.#gossipDue = true;
    this.#maybeGossip(socket, now, targets);
    this.#sendTo(socket, datagram, targets, done);
  }

  sendToSelf(datagram: Buffer): void {
    const socket = this.#socket;
    if (!socket) return;
    const { bindIp, family, port } = this.#options;
    const self = isWildcard(bindIp) ? (family === 6 ? '::1' : '127.0.0.1') : bindIp;
    this.#sendTo(socket, datagram, [{ address: self, port }]);
  }

  /**
   * `from` sent a valid heartbeat: keep sending to it. If it is new, greet it with our
   * latest heartbeat at once (rather than at our next tick: a cold start must find
   * everyone within a tock) and tell the others about it.
   */
  learn(from: Address): void {
    const socket = this.#socket;
    if (!socket) return;
    const now = performance.now();
    if (!this.#peers.learn(from, now)) return;
    this.#log(5, `Learned peer address ${formatAddress(from)}`);
    this.#greet(socket, [from]);
    this.#gossipDue = true;
    this.#maybeGossip(socket, now, this.#peers.targets(now));
  }

  /** A peer's gossip: `addresses` are validated `ip:port` texts (the codec checked them; so do we). */
  gossip(from: Address, addresses: readonly string[]): void {
    const now = performance.now();
    const parsed: Address[] = [];
    for (const text of addresses) {
      const address = parseAddress(text);
      if (address && this.#usable(address)) parsed.push(address);
    }
    if (!this.#peers.trusts(from, now)) {
      this.#log(9, `Ignoring peer addresses from ${formatAddress(from)}: not a listed or live peer`);
      return;
    }
    const added = this.#peers.gossip(from, parsed, now);
    if (added.length === 0) return;
    this.#log(5, `${formatAddress(from)} told us of ${added.map(formatAddress).join(', ')}`);
    if (this.#socket) this.#greet(this.#socket, added);
  }

  /** Reloaded settings: timings, and the `peers` list (added entries are used at once, removed ones dropped). */
  reconfigure(settings: { heartbeat_freq: number; check_beats: number; peers: readonly string[] }): void {
    this.#options.tickMs = settings.heartbeat_freq * 1000;
    this.#options.checkBeats = settings.check_beats;
    this.#peers.setTiming(this.#windows());
    const specs = this.#parse(settings.peers);
    const now = performance.now();
    const kept = new Set(specs.map((spec) => spec.text));
    for (const source of this.#peers.sources()) if (!kept.has(source)) this.#peers.setConfigured(source, [], now);
    this.#specs = specs;
    for (const spec of specs) {
      if (spec.family !== 0) this.#peers.setConfigured(spec.text, [{ address: spec.host, port: spec.port }], now);
    }
    if (this.#socket && specs.some((spec) => spec.family === 0)) void this.#resolve();
  }

  close(): Promise<void> {
    this.#closed = true;
    const socket = this.#socket;
    this.#socket = null;
    return closeSocket(socket);
  }

  // ---- internals ---------------------------------------------------------------------

  get #tockMs(): number {
    return this.#options.tickMs * this.#options.checkBeats;
  }

  #windows(): { forgetAfterMs: number; liveForMs: number } {
    // Live: heard within a tock and a tick, the core's own idea of a live server (plus slack).
    return { forgetAfterMs: FORGET_AFTER_TOCKS * this.#tockMs, liveForMs: this.#tockMs + this.#options.tickMs };
  }

  #parse(entries: readonly string[]): PeerSpec[] {
    const specs: PeerSpec[] = [];
    for (const entry of entries) {
      const spec = parsePeer(entry, this.#options.port);
      // The config validated every entry; one that fails here is skipped, not fatal.
      if (typeof spec !== 'string' && (spec.family === 0 || spec.family === this.#options.family)) specs.push(spec);
    }
    return specs;
  }

  #isSelf(address: Address): boolean {
    if (address.port !== this.#options.port) return false;
    if (this.#options.bindIp === '0.0.0.0' && address.address.startsWith('127.')) return true;
    return this.#localIps.has(canonicalIp(address.address));
  }

  /** A gossiped address we can send to: our family, one server's address. */
  #usable(address: Address): boolean {
    return (this.#options.family === 6) === address.address.includes(':') && unicastProblem(address.address) === null;
  }

  #sendTo(socket: dgram.Socket, datagram: Buffer, targets: readonly Address[], done?: (err?: Error | null) => void): void {
    let pending = targets.length;
    let firstError: Error | null = null;
    if (pending === 0) {
      done?.(null);
      return;
    }
    const oneDone = (err?: Error | null): void => {
      if (err) {
        firstError ??= err;
        this.onError?.(err);
      }
      if (--pending === 0) done?.(firstError);
    };
    for (const target of targets) {
      try {
        socket.send(datagram, target.port, target.address, oneDone);
      } catch (err) {
        oneDone(err as Error);
      }
    }
  }

  /**
   * Send our latest datagram-to-everyone to new peers now, so they hear of us in one
   * round trip instead of at our next tick. Only ever for an address that sent a valid
   * heartbeat, or that a trusted peer named: one datagram each, once.
   */
  #greet(socket: dgram.Socket, addresses: readonly Address[]): void {
    if (this.#lastToAll) this.#sendTo(socket, this.#lastToAll, addresses);
  }

  /** Send our live addresses to every target, if due and not too soon after the last time. */
  #maybeGossip(socket: dgram.Socket, now: number, targets: readonly Address[]): void {
    if (!this.#gossipDue || !this.gossipEncoder || now - this.#lastGossipAt < GOSSIP_MIN_GAP_TICKS * this.#options.tickMs) return;
    this.#gossipDue = false;
    this.#lastGossipAt = now;
    const live = this.#peers.live(now);
    if (live.length === 0 || targets.length === 0) return;
    const perDatagram = Math.max(
      1,
      Math.min(MAX_GOSSIP_ADDRESSES, Math.floor((this.#options.maxPacketBytes - GOSSIP_OVERHEAD_BYTES) / GOSSIP_ADDRESS_BYTES)),
    );
    for (let start = 0; start < live.length; start += perDatagram) {
      this.#sendTo(socket, this.gossipEncoder(live.slice(start, start + perDatagram)), targets);
    }
  }

  /** Look the names in `peers` up (again). A name that fails keeps the addresses it had. */
  async #resolve(waitMs = Infinity): Promise<void> {
    this.#nextResolveAt = performance.now() + (this.#options.resolveEveryMs ?? Math.max(RESOLVE_MIN_INTERVAL_MS, this.#tockMs));
    const names = this.#specs.filter((spec) => spec.family === 0);
    if (names.length === 0 || this.#resolving) return;
    this.#resolving = true;
    const lookup = this.#options.lookup ?? systemLookup;
    const all = Promise.all(
      names.map(async (spec) => {
        try {
          const ips = await lookup(spec.host, this.#options.family);
          const addresses = ips.filter((ip) => unicastProblem(ip) === null).map((ip) => ({ address: canonicalIp(ip), port: spec.port }));
          if (this.#closed || !this.#specs.some((current) => current.text === spec.text)) return;
          if (addresses.length === 0) throw new Error(`no IPv${this.#options.family} address`);
          this.#peers.setConfigured(spec.text, addresses.slice(0, this.#options.maxLearned), performance.now());
          this.#log(6, `Peer ${spec.text} is ${addresses.map(formatAddress).join(', ')}`);
        } catch (err) {
          if (!this.#closed) this.#log(3, `Cannot resolve peer ${spec.text}: ${(err as Error).message}; trying again later`);
        }
      }),
    ).finally(() => {
      this.#resolving = false;
    });
    if (waitMs === Infinity) {
      await all;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    clearTimeout(timer);
  }

  #log(level: number, message: string): void {
    this.#options.log?.(level, message);
  }
}

/**
 * The addresses that are this server at our port: the bound one, or with a wildcard bind
 * every interface's (#isSelf adds all of 127/8 for IPv4, which Linux delivers locally).
 */
function localAddresses(bindIp: string, family: Family): Set<string> {
  const local = new Set<string>();
  if (!isWildcard(bindIp)) {
    local.add(canonicalIp(bindIp));
    return local;
  }
  for (const infos of Object.values(os.networkInterfaces())) {
    for (const info of infos ?? []) {
      if ((info.family === 'IPv6') === (family === 6)) local.add(canonicalIp(info.address.split('%')[0] ?? info.address));
    }
  }
  local.add(family === 6 ? '::1' : '127.0.0.1');
  return local;
}
