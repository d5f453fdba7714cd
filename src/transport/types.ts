import type { Address } from '../core/types';

/**
 * The network as the shell sees it: best-effort datagrams, one socket for the
 * server's whole life. Implementations never throw from `send`; failures go to `onError`.
 */
export interface Transport {
  /** Bind and get ready to send; rejects (with nothing left bound) on failure. */
  open(): Promise<void>;
  /** Send to every server (`to` absent) or to one address. */
  send(datagram: Buffer, to?: Address, done?: (err?: Error | null) => void): void;
  /** Close the socket; pending sends are flushed first where the OS allows. */
  close(): Promise<void>;
  onMessage: ((datagram: Buffer, from: Address) => void) | null;
  onError: ((err: Error) => void) | null;
  /** Sockets this transport has opened in its lifetime (for tests and the bench: always 1). */
  readonly socketsOpened: number;
}
