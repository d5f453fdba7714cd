/**
 * The factory the shell uses to build the transport (transport/types.ts) named by the
 * validated settings. It lives in the shell so the transports never import the config.
 */
import type { Settings } from '../config';
import { ipFamily } from '../protocol/address';
import type { Transport } from '../transport/types';
import { UdpBroadcastTransport } from '../transport/udp';
import { UdpMulticastTransport } from '../transport/multicast';
import { UdpUnicastTransport, type LookupAll } from '../transport/unicast';

export type { Transport } from '../transport/types';
export { UdpBroadcastTransport } from '../transport/udp';
export { UdpMulticastTransport } from '../transport/multicast';
export { UdpUnicastTransport } from '../transport/unicast';

export interface TransportContext {
  /** The broadcast address in use (computed by the shell when broadcast_ip is unset). */
  broadcastIp: string;
  log?: (level: number, message: string) => void;
  /** Name lookups for `peers` (tests); the system resolver by default. */
  lookup?: LookupAll;
}

export function createTransport(settings: Settings, context: TransportContext): Transport {
  switch (settings.transport) {
    case 'broadcast':
      return new UdpBroadcastTransport({ port: settings.comm_port, broadcastIp: context.broadcastIp, bindIp: settings.bind_ip });
    case 'multicast': {
      const options = {
        port: settings.comm_port,
        group: settings.multicast_group,
        family: ipFamily(settings.multicast_group) === 6 ? (6 as const) : (4 as const),
        ttl: settings.multicast_ttl,
      };
      return new UdpMulticastTransport(settings.multicast_interface ? { ...options, interface: settings.multicast_interface } : options);
    }
    case 'unicast': {
      const transport = new UdpUnicastTransport({
        port: settings.comm_port,
        bindIp: settings.bind_ip,
        family: ipFamily(settings.bind_ip) === 6 ? 6 : 4,
        peers: settings.peers,
        tickMs: settings.heartbeat_freq * 1000,
        checkBeats: settings.check_beats,
        maxLearned: settings.max_servers,
        maxPacketBytes: settings.max_packet_bytes,
        ...(context.lookup ? { lookup: context.lookup } : {}),
        ...(context.log ? { log: context.log } : {}),
      });
      return transport;
    }
  }
}
