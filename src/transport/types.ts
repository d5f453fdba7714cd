import type { Address } from '../protocol/messages';

/**
 * The network as the shell sees it: best-effort datagrams, one socket for the
 * server's whole life. Implementations never throw from `send`; failures go to `onError`.
 *
 * The optional members are for transports that keep their own list of destinations
 * (unicast); the shell calls them when present and never needs to know which transport
 * it has.
 */
export interface Transport {
  /** Bind and get ready to send; rejects (with nothing left bound) on failure. */
  open(): Promise<void>;
  /** Send to every server (`to` absent) or to one address. `done` runs once, when all copies are sent. */
  send(datagram: Buffer, to?: Address, done?: (err?: Error | null) => void): void;
  /** Close the socket; pending sends are flushed first where the OS allows. */
  close(): Promise<void>;
  onMessage: ((datagram: Buffer, from: Address) => void) | null;
  onError: ((err: Error) => void) | null;
  /** Sockets this transport has opened in its lifetime (for tests and the bench: always 1). */
  readonly socketsOpened: number;
  /**
   * A datagram sent to one address reaches that one server: every server has an address of
   * its own (unicast). Broadcast and multicast servers may share a host and a port, where
   * the kernel hands a unicast datagram to any one of them: there a message to one server is
   * sent to everyone, and the others ignore it.
   */
  readonly targets?: boolean;
  /** Where heartbeats go, for the log ("broadcast IP: 10.0.0.255", "multicast group …"). */
  readonly description?: string;

  /**
   * `from` sent a heartbeat that decoded as valid (and authenticated, with a secret): keep
   * sending to it. The shell calls this for nothing else: an arbitrary datagram must
   * never make us send somewhere (reflection).
   */
  learn?(from: Address): void;
  /** A peer's list of the addresses it hears (validated canonical `ip:port` texts). */
  gossip?(from: Address, addresses: readonly string[]): void;
  /** Set by the shell: builds one gossip datagram in the cluster's wire format. */
  gossipEncoder?: ((addresses: string[]) => Buffer) | null;
  /**
   * Broadcast only: send heartbeats to another broadcast address from now on (a reload of
   * `broadcast_ip`, or an interface that changed); the socket stays.
   */
  retarget?(broadcastIp: string): void;
  /** Reloaded settings it can apply without a restart (unicast: timings and `peers`). */
  reconfigure?(settings: { heartbeat_freq: number; check_beats: number; peers: readonly string[] }): void;
  /**
   * Send a copy to our own socket (transports whose sends to everyone do not loop back):
   * it arrives behind whatever is queued there, which is how the core knows it has read
   * everything after a stall.
   */
  sendToSelf?(datagram: Buffer): void;
  /** The addresses it sends to, canonical `ip:port` (diagnostics). */
  peers?(): string[];
}
