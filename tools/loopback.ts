/**
 * The network rule for everything we run ourselves (tests, demo, bench): packets stay on
 * this machine. A cluster may only be started with a config that cannot send elsewhere.
 */
import { isIPv4, isIPv6 } from 'node:net';
import * as dgram from 'node:dgram';
import { canonicalIp, parsePeer } from '../src/protocol/address';

export function isLoopback(ip: string): boolean {
  if (isIPv4(ip)) return ip.startsWith('127.');
  if (isIPv6(ip)) return canonicalIp(ip) === '::1';
  return false;
}

/** Throws unless `ip` is a loopback address (127.0.0.0/8 or ::1). */
export function assertLoopback(ip: unknown, what = 'broadcast_ip'): void {
  if (typeof ip !== 'string' || !isLoopback(ip)) {
    throw new Error(
      `Refusing to start a test cluster with ${what} ${JSON.stringify(ip)}: only loopback (127.0.0.0/8, ::1) keeps packets on this machine`,
    );
  }
}

/**
 * Throws unless a `MultiServer` section keeps every packet on this machine, whatever its
 * transport: broadcast to a loopback broadcast address; multicast with TTL 0 (the kernel
 * loops it back and never transmits it) or on the loopback interface; unicast bound to a
 * loopback address with loopback IP literals as the only peers (a name could resolve
 * anywhere, and a wildcard bind could hear, then learn, an outside address).
 */
export function assertLoopbackConfig(section: Record<string, unknown>): void {
  const coordinator = section.coordinator as { hosts?: unknown } | undefined | null;
  if (coordinator !== undefined && coordinator !== null) {
    // Coordinator mode: etcd on loopback, and messages by unicast from a loopback address.
    const hosts = Array.isArray(coordinator.hosts) ? coordinator.hosts : [];
    if (hosts.length === 0) throw new Error('Refusing to start a test cluster with a coordinator but no hosts');
    for (const host of hosts) {
      let hostname = '';
      try {
        hostname = new URL(String(host)).hostname;
      } catch {
        // refused below
      }
      assertLoopback(hostname, 'coordinator host');
    }
    assertLoopback(section.bind_ip, 'bind_ip');
    if (Array.isArray(section.peers) && section.peers.length > 0)
      throw new Error('Refusing to start a coordinated test cluster with peers');
    return;
  }
  const transport = section.transport ?? 'broadcast';
  switch (transport) {
    case 'broadcast':
      assertLoopback(section.broadcast_ip);
      return;
    case 'multicast': {
      const iface = section.multicast_interface;
      const loopbackInterface = typeof iface === 'string' && (isLoopback(iface) || iface.endsWith('%lo'));
      if (section.multicast_ttl !== 0 && !loopbackInterface) {
        throw new Error(
          `Refusing to start a test cluster with multicast_ttl ${JSON.stringify(section.multicast_ttl)} on interface ${JSON.stringify(iface)}: ` +
            'multicast stays on this machine only with multicast_ttl 0 or the loopback interface',
        );
      }
      return;
    }
    case 'unicast': {
      assertLoopback(section.bind_ip, 'bind_ip');
      const peers = section.peers ?? [];
      if (!Array.isArray(peers)) throw new Error(`Refusing to start a test cluster with peers ${JSON.stringify(peers)}`);
      for (const entry of peers) {
        const spec = parsePeer(entry, 1);
        if (typeof spec === 'string' || spec.family === 0 || !isLoopback(spec.host)) {
          throw new Error(
            `Refusing to start a test cluster with peer ${JSON.stringify(entry)}: only loopback IP literals keep packets on this machine`,
          );
        }
      }
      return;
    }
    default:
      throw new Error(`Refusing to start a test cluster with transport ${JSON.stringify(transport)}`);
  }
}

/**
 * A UDP port nobody here is using right now. Clusters sharing a port would merge
 * (sockets bind with address reuse), so every test cluster gets its own.
 */
export function freeUdpPort(family: 4 | 6 = 4): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    socket.once('error', reject);
    socket.bind(0, family === 6 ? '::1' : '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}
