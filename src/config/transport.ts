/** The transport keys: broadcast, multicast or unicast, and the keys of each. */
import type { Family } from '../protocol/address';
import { canonicalIp, ipFamily, isMulticast, parsePeer, unicastProblem, WILDCARD } from '../protocol/address';
import { ConfigError, pick } from './primitives';
import { DEFAULT_MULTICAST_GROUP, TRANSPORTS, type MultiServerConfig, type TransportKind } from './schema';

export type TransportSettings = Pick<
  MultiServerConfig,
  'transport' | 'bind_ip' | 'multicast_group' | 'multicast_ttl' | 'multicast_interface' | 'peers'
>;

/**
 * The transport keys. Each is checked whatever the transport, and a key of another
 * transport (`peers` with broadcast, say) is refused: the server would run, but not on
 * the network the operator meant.
 */
export function transportSettings(raw: Record<string, unknown>, commPort: number, maxServers: number): TransportSettings {
  const transport = pick(raw, 'transport');
  if (typeof transport !== 'string' || !TRANSPORTS.includes(transport as TransportKind)) {
    throw new ConfigError('transport', 'one of "broadcast", "multicast" or "unicast"', transport);
  }
  const kind = transport as TransportKind;
  const onlyFor = (key: keyof MultiServerConfig, wanted: TransportKind, value: unknown): void => {
    if (kind !== wanted) throw new ConfigError(key, `unset: it applies only when \`transport\` is "${wanted}" (it is "${kind}")`, value);
  };

  let bindIp: string | undefined;
  if (raw.bind_ip !== undefined && raw.bind_ip !== null && raw.bind_ip !== '') {
    const value = raw.bind_ip;
    if (typeof value !== 'string' || ipFamily(value) === 0 || value.includes('%') || isMulticast(value) || value === '255.255.255.255') {
      throw new ConfigError('bind_ip', 'an IP address of this host, such as "0.0.0.0", "::" or "10.0.0.5"', value);
    }
    bindIp = canonicalIp(value);
  }
  const bindFamily = bindIp === undefined ? undefined : ipFamily(bindIp) || undefined;

  const ttl = pick(raw, 'multicast_ttl');
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0 || ttl > 255) {
    throw new ConfigError('multicast_ttl', 'an integer from 0 to 255 (1: the local network, 0: this host)', ttl);
  }

  let group = raw.multicast_group;
  if (group !== undefined && group !== null && group !== '') {
    if (typeof group !== 'string' || !isMulticast(group) || group.includes('%')) {
      throw new ConfigError('multicast_group', 'a multicast address, such as "239.255.30.14" (IPv4) or "ff15::3014" (IPv6)', group);
    }
    onlyFor('multicast_group', 'multicast', group);
    group = canonicalIp(group);
  } else {
    group = DEFAULT_MULTICAST_GROUP[bindFamily ?? 4];
  }
  const groupFamily = ipFamily(group as string) as Family;

  let iface = raw.multicast_interface;
  if (iface !== undefined && iface !== null && iface !== '') {
    const family = typeof iface === 'string' ? ipFamily(iface) : 0;
    if (family !== groupFamily || isMulticast(iface as string) || (family === 4 && unicastProblem(iface as string) !== null)) {
      throw new ConfigError(
        'multicast_interface',
        groupFamily === 4 ? 'the IPv4 address of a local interface, such as "10.0.0.5"' : 'an IPv6 interface, such as "::%eth0"',
        iface,
      );
    }
    onlyFor('multicast_interface', 'multicast', iface);
  } else {
    iface = undefined;
  }

  const peers = peerList(raw.peers, commPort, maxServers);
  if (peers.list.length > 0) onlyFor('peers', 'unicast', raw.peers);

  let family: Family;
  switch (kind) {
    case 'broadcast':
      family = 4;
      break;
    case 'multicast':
      family = groupFamily;
      break;
    case 'unicast':
      family = bindFamily ?? peers.family ?? 4;
      break;
  }
  if (kind !== 'unicast' && bindIp !== undefined && bindIp !== WILDCARD[family]) {
    const picker = kind === 'broadcast' ? 'broadcast_ip' : 'multicast_interface';
    throw new ConfigError(
      'bind_ip',
      `"${WILDCARD[family]}" with transport "${kind}" (a socket bound to one address receives no ${kind}s; ${picker} picks the interface)`,
      raw.bind_ip,
    );
  }
  if (kind === 'unicast') {
    peers.list.forEach((entry, index) => {
      const spec = parsePeer(entry, commPort);
      if (typeof spec !== 'string' && spec.family !== 0 && spec.family !== family) {
        throw new ConfigError(
          `peers[${index}]`,
          `an IPv${family} address like the other peers and bind_ip (one cluster speaks one IP version)`,
          entry,
        );
      }
    });
  }

  const settings: TransportSettings = {
    transport: kind,
    bind_ip: bindIp ?? WILDCARD[family],
    multicast_group: group as string,
    multicast_ttl: ttl,
    peers: peers.list,
  };
  if (iface !== undefined) settings.multicast_interface = iface as string;
  return settings;
}

/** `peers`: an array of unique entries; the IP version of its literals, if they agree. */
function peerList(value: unknown, commPort: number, maxServers: number): { list: string[]; family?: Family } {
  if (value === undefined || value === null) return { list: [] };
  if (!Array.isArray(value) || value.length > maxServers) {
    throw new ConfigError('peers', `an array of at most ${maxServers} (max_servers) entries "host", "host:port" or "[IPv6]:port"`, value);
  }
  const list: string[] = [];
  const families = new Set<Family>();
  value.forEach((entry: unknown, index) => {
    const spec = parsePeer(entry, commPort);
    if (typeof spec === 'string') throw new ConfigError(`peers[${index}]`, `"host", "host:port" or "[IPv6]:port" with ${spec}`, entry);
    if (spec.family !== 0) families.add(spec.family);
    if (!list.includes(entry as string)) list.push(entry as string);
  });
  if (families.size > 1) throw new ConfigError('peers', 'IPv4 or IPv6 addresses, not both (one cluster speaks one IP version)', value);
  const [family] = families;
  return family === undefined ? { list } : { list, family };
}
