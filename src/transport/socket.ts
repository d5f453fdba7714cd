/**
 * Opening the one UDP socket of a transport: bound before anything is sent, handlers in
 * place before the first datagram can arrive, and nothing left open when binding or
 * the socket options fail.
 */
import * as dgram from 'node:dgram';
import type { Address } from '../protocol/messages';

export interface BindOptions {
  type: 'udp4' | 'udp6';
  port: number;
  address: string;
  /** Share the port with other sockets on this host (broadcast and multicast need it). */
  reuseAddr: boolean;
  onMessage: (datagram: Buffer, from: Address) => void;
  /** Errors after the socket is bound (send failures). */
  onError: (err: Error) => void;
  /** Socket options that need a bound socket (memberships, TTL); a throw fails the open. */
  setup?: (socket: dgram.Socket) => void;
}

export function bindSocket(options: BindOptions): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({ type: options.type, reuseAddr: options.reuseAddr });
    let bound = false;
    socket.on('message', (datagram, rinfo) => options.onMessage(datagram, { address: rinfo.address, port: rinfo.port }));
    socket.on('error', (err) => {
      if (bound) {
        options.onError(err);
        return;
      }
      socket.close();
      reject(err);
    });
    socket.bind({ port: options.port, address: options.address, exclusive: false }, () => {
      try {
        askForReceiveBuffer(socket);
        options.setup?.(socket);
      } catch (err) {
        socket.close();
        reject(err as Error);
        return;
      }
      bound = true;
      resolve(socket);
    });
  });
}

/**
 * Datagrams queue in the socket's receive buffer while the event loop is busy (a flood, a
 * stall, a burst of a thousand servers' heartbeats). Ask for more than the default; the
 * kernel grants at most its `net.core.rmem_max` (a few hundred KB by default), silently.
 */
export const RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

function askForReceiveBuffer(socket: dgram.Socket): void {
  try {
    if (socket.getRecvBufferSize() < RECEIVE_BUFFER_BYTES) socket.setRecvBufferSize(RECEIVE_BUFFER_BYTES);
  } catch {
    // Refused (a restricted system): the default buffer still works.
  }
}

/** Close a socket; resolves once it is closed (at once if it is null). */
export function closeSocket(socket: dgram.Socket | null): Promise<void> {
  if (!socket) return Promise.resolve();
  return new Promise((resolve) => socket.close(() => resolve()));
}

/**
 * Send one datagram; never throws. A failure (closed socket, bad address, EMSGSIZE) goes
 * to `onError` and to `done`.
 */
export function sendDatagram(
  socket: dgram.Socket | null,
  datagram: Buffer,
  to: Address,
  onError: ((err: Error) => void) | null,
  done?: (err?: Error | null) => void,
): void {
  if (!socket) {
    done?.(new Error('transport is closed'));
    return;
  }
  try {
    socket.send(datagram, to.port, to.address, (err) => {
      if (err) onError?.(err);
      done?.(err);
    });
  } catch (err) {
    onError?.(err as Error);
    done?.(err as Error);
  }
}
