/**
 * UDP broadcast transport: one socket, bound once with address reuse (so several
 * servers on one host can share comm_port), broadcast enabled, closed on shutdown.
 */
import type * as dgram from 'node:dgram';
import type { Address } from '../protocol/messages';
import { bindSocket, closeSocket, sendDatagram } from './socket';
import type { Transport } from './types';

export interface UdpBroadcastOptions {
  port: number;
  broadcastIp: string;
  /** Address to bind; default all interfaces (broadcasts only reach wildcard-bound sockets). */
  bindIp?: string;
}

export class UdpBroadcastTransport implements Transport {
  onMessage: ((datagram: Buffer, from: Address) => void) | null = null;
  onError: ((err: Error) => void) | null = null;
  #socket: dgram.Socket | null = null;
  #options: UdpBroadcastOptions;
  #socketsOpened = 0;

  constructor(options: UdpBroadcastOptions) {
    this.#options = { ...options };
  }

  get socketsOpened(): number {
    return this.#socketsOpened;
  }

  get description(): string {
    return `broadcast IP: ${this.#options.broadcastIp}`;
  }

  get broadcastIp(): string {
    return this.#options.broadcastIp;
  }

  /** The broadcast target may change on reload; the socket stays. */
  retarget(broadcastIp: string): void {
    this.#options.broadcastIp = broadcastIp;
  }

  async open(): Promise<void> {
    this.#socketsOpened++;
    this.#socket = await bindSocket({
      type: 'udp4',
      port: this.#options.port,
      address: this.#options.bindIp ?? '0.0.0.0',
      reuseAddr: true,
      onMessage: (datagram, from) => this.onMessage?.(datagram, from),
      onError: (err) => this.onError?.(err),
      setup: (socket) => socket.setBroadcast(true),
    });
  }

  send(datagram: Buffer, to?: Address, done?: (err?: Error | null) => void): void {
    sendDatagram(this.#socket, datagram, to ?? { address: this.#options.broadcastIp, port: this.#options.port }, this.onError, done);
  }

  close(): Promise<void> {
    const socket = this.#socket;
    this.#socket = null;
    return closeSocket(socket);
  }
}
