/**
 * UDP multicast transport: for networks that carry multicast but not broadcast, and for
 * IPv6, which has no broadcast. One socket, bound to the wildcard address with address
 * reuse (several servers on one host share comm_port), member of one group.
 *
 * Every server of a cluster uses the same group and port. On Linux a wildcard-bound
 * socket also receives other groups' datagrams sent to its port, so the port, not the
 * group, is what keeps two clusters apart (as with broadcast).
 */
import type * as dgram from 'node:dgram';
import type { Address } from '../protocol/messages';
import type { Family } from '../protocol/address';
import { WILDCARD } from '../protocol/address';
import { bindSocket, closeSocket, sendDatagram } from './socket';
import type { Transport } from './types';

export interface UdpMulticastOptions {
  port: number;
  /** The group, IPv4 (224.0.0.0/4) or IPv6 (ff00::/8); its family is the socket's. */
  group: string;
  family: Family;
  /** Hops a heartbeat may travel: 1 stays on the local network, 0 on this host. */
  ttl: number;
  /**
   * Local interface to join the group on and send from: an IPv4 address of it, or for
   * IPv6 `::%eth0` (or an address with its zone). Absent: the OS picks (the default route's).
   */
  interface?: string;
}

export class UdpMulticastTransport implements Transport {
  onMessage: ((datagram: Buffer, from: Address) => void) | null = null;
  onError: ((err: Error) => void) | null = null;
  #socket: dgram.Socket | null = null;
  #options: UdpMulticastOptions;
  #socketsOpened = 0;

  constructor(options: UdpMulticastOptions) {
    this.#options = { ...options };
  }

  get socketsOpened(): number {
    return this.#socketsOpened;
  }

  get description(): string {
    const { group, port, ttl } = this.#options;
    return `multicast group ${group} port ${port} (TTL ${ttl}${this.#options.interface ? `, interface ${this.#options.interface}` : ''})`;
  }

  async open(): Promise<void> {
    const { group, family, ttl } = this.#options;
    const iface = this.#options.interface;
    this.#socketsOpened++;
    this.#socket = await bindSocket({
      type: family === 6 ? 'udp6' : 'udp4',
      port: this.#options.port,
      // A socket bound to one unicast address does not receive multicast.
      address: WILDCARD[family],
      reuseAddr: true,
      onMessage: (datagram, from) => this.onMessage?.(datagram, from),
      onError: (err) => this.onError?.(err),
      setup: (socket) => {
        try {
          socket.addMembership(group, iface);
        } catch (err) {
          throw new Error(`cannot join multicast group ${group}${iface ? ` on interface ${iface}` : ''}: ${(err as Error).message}`);
        }
        if (iface) socket.setMulticastInterface(iface);
        socket.setMulticastTTL(ttl);
        // Other servers on this host (and our own echo, which the core recognises) must hear us.
        socket.setMulticastLoopback(true);
      },
    });
  }

  send(datagram: Buffer, to?: Address, done?: (err?: Error | null) => void): void {
    sendDatagram(this.#socket, datagram, to ?? { address: this.#options.group, port: this.#options.port }, this.onError, done);
  }

  close(): Promise<void> {
    const socket = this.#socket;
    this.#socket = null;
    return closeSocket(socket);
  }
}
