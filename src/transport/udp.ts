/**
 * UDP broadcast transport: one socket, bound once with address reuse (so several
 * servers on one host can share comm_port), broadcast enabled, closed on shutdown.
 */
import * as dgram from 'node:dgram';
import type { Address } from '../core/types';
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

  /** The broadcast target may change on reload; the socket stays. */
  set broadcastIp(ip: string) {
    this.#options.broadcastIp = ip;
  }
  get broadcastIp(): string {
    return this.#options.broadcastIp;
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      this.#socketsOpened++;
      let bound = false;
      socket.on('message', (datagram, rinfo) => {
        this.onMessage?.(datagram, { address: rinfo.address, port: rinfo.port });
      });
      socket.on('error', (err) => {
        if (!bound) {
          socket.close();
          reject(err);
          return;
        }
        this.onError?.(err);
      });
      socket.bind({ port: this.#options.port, address: this.#options.bindIp ?? '0.0.0.0', exclusive: false }, () => {
        bound = true;
        try {
          socket.setBroadcast(true);
        } catch (err) {
          socket.close();
          reject(err as Error);
          return;
        }
        this.#socket = socket;
        resolve();
      });
    });
  }

  send(datagram: Buffer, to?: Address, done?: (err?: Error | null) => void): void {
    const socket = this.#socket;
    if (!socket) {
      done?.(new Error('transport is closed'));
      return;
    }
    const port = to?.port ?? this.#options.port;
    const address = to?.address ?? this.#options.broadcastIp;
    try {
      socket.send(datagram, port, address, (err) => {
        if (err) this.onError?.(err);
        done?.(err);
      });
    } catch (err) {
      this.onError?.(err as Error);
      done?.(err as Error);
    }
  }

  close(): Promise<void> {
    const socket = this.#socket;
    this.#socket = null;
    if (!socket) return Promise.resolve();
    return new Promise((resolve) => socket.close(() => resolve()));
  }
}
