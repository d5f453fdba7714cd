/**
 * IP addresses and "host:port" strings for the transports, the config and the codec:
 * parsing, the canonical text form (one string per address, so sets and maps work), and
 * the checks that keep multicast, broadcast and unspecified addresses out of peer lists.
 * Pure functions: nothing here resolves a name or touches a socket.
 */
import { BlockList, isIPv4, isIPv6, SocketAddress } from 'node:net';
import type { Address } from './messages';

export type Family = 4 | 6;

/** The wildcard bind address of each family: every interface. */
export const WILDCARD: Readonly<Record<Family, string>> = Object.freeze({ 4: '0.0.0.0', 6: '::' });

/** Longest peer entry or gossiped address accepted; far above any real one. */
export const MAX_ADDRESS_CHARS = 300;

const MULTICAST = new BlockList();
MULTICAST.addSubnet('224.0.0.0', 4, 'ipv4');
MULTICAST.addSubnet('ff00::', 8, 'ipv6');

/** A DNS name as resolvers accept them (underscores too: Docker and Compose service names have them). */
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$/;

/** 4 or 6 for an IP literal (an IPv6 one may carry a `%zone`), 0 for anything else. */
export function ipFamily(ip: string): 0 | Family {
  if (isIPv4(ip)) return 4;
  if (isIPv6(ip)) return 6;
  return 0;
}

/**
 * One text per address: IPv6 compressed and lower-case (`::1`, never `0:0:0:0:0:0:0:1`),
 * as the OS reports a datagram's source, so a configured peer and the packets it sends
 * meet under the same key. A zone (`%eth0`) is kept.
 */
export function canonicalIp(ip: string): string {
  const family = ipFamily(ip);
  if (family === 4) return ip;
  if (family === 6) {
    const zone = ip.indexOf('%');
    const bare = zone < 0 ? ip : ip.slice(0, zone);
    return new SocketAddress({ address: bare, family: 'ipv6' }).address + (zone < 0 ? '' : ip.slice(zone));
  }
  return ip;
}

export function isMulticast(ip: string): boolean {
  const family = ipFamily(ip);
  if (family === 0) return false;
  const bare = family === 6 ? (ip.split('%')[0] ?? ip) : ip;
  return MULTICAST.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}

export function isWildcard(ip: string): boolean {
  return ip === '0.0.0.0' || (ipFamily(ip) === 6 && canonicalIp(ip) === '::');
}

/**
 * Why `ip` cannot be one peer's address, or null when it can. Sending heartbeats to a
 * group or broadcast address from a peer list would reach everyone on that network.
 */
export function unicastProblem(ip: string): string | null {
  if (ipFamily(ip) === 0) return 'not an IP address';
  if (isWildcard(ip)) return 'the unspecified address';
  if (ip === '255.255.255.255') return 'the broadcast address';
  if (isMulticast(ip)) return 'a multicast address';
  return null;
}

/** `1.2.3.4:3014` or `[::1]:3014`: the key of an address in peer sets and on the wire. */
export function formatAddress(address: Address): string {
  return ipFamily(address.address) === 6 ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

/** One entry of `peers`, parsed. */
export interface PeerSpec {
  /** The entry as configured (identifies it when its name resolves to new addresses). */
  text: string;
  /** An IP literal (canonical) or a DNS name. */
  host: string;
  port: number;
  /** 4 or 6 for an IP literal; 0 for a name, resolved at startup and again every so often. */
  family: 0 | Family;
}

function parsePort(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : null;
}

/**
 * Parse a `peers` entry: `host`, `host:port`, `1.2.3.4`, `1.2.3.4:port`, `::1` (an IPv6
 * literal without a port) or `[::1]:port`. The port defaults to `defaultPort` (comm_port).
 * Returns the spec, or the reason the entry is refused.
 */
export function parsePeer(entry: unknown, defaultPort: number): PeerSpec | string {
  if (typeof entry !== 'string' || entry.length === 0 || entry.length > MAX_ADDRESS_CHARS) return 'a non-empty string';
  let host = entry;
  let port = defaultPort;
  if (entry.startsWith('[')) {
    const match = /^\[([^\]]+)\](?::([^:]*))?$/.exec(entry);
    if (!match || ipFamily(match[1] as string) !== 6) return 'an IPv6 address in brackets, as in "[fd00::5]:3014"';
    host = match[1] as string;
    if (match[2] !== undefined) {
      const parsed = parsePort(match[2]);
      if (parsed === null) return 'a port from 1 to 65535 after "]:"';
      port = parsed;
    }
  } else if (entry.split(':').length === 2) {
    const [name, portText] = entry.split(':') as [string, string];
    const parsed = parsePort(portText);
    if (parsed === null) return 'a port from 1 to 65535 after ":"';
    host = name;
    port = parsed;
  }
  const family = ipFamily(host);
  if (family === 0) {
    // "10.0.0.300" looks like a name to the pattern; it is a typo of an address.
    if (/^[0-9.]+$/.test(host) || !DNS_NAME.test(host)) return 'a DNS name or an IP address';
    return { text: entry, host: host.toLowerCase(), port, family: 0 };
  }
  const problem = unicastProblem(host);
  if (problem) return `the address of one server, not ${problem}`;
  return { text: entry, host: canonicalIp(host), port, family };
}

/**
 * Parse a gossiped `ip:port` / `[ip]:port`: IP literals only (nothing is resolved on a
 * peer's say-so), no zone (a zone names an interface of the sender, meaningless here),
 * one server's address only. Null when it is anything else.
 */
export function parseAddress(text: unknown): Address | null {
  if (typeof text !== 'string' || text.length > MAX_ADDRESS_CHARS || text.includes('%')) return null;
  const spec = parsePeer(text, 0);
  if (typeof spec === 'string' || spec.family === 0 || spec.port === 0) return null;
  // A canonical text only: one address has one spelling on the wire.
  if (formatAddress({ address: spec.host, port: spec.port }) !== text) return null;
  return { address: spec.host, port: spec.port };
}
