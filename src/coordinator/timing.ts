/**
 * The timing rule of the etcd mode, as client-go's leader election states its own
 * (LeaseDuration > RenewDeadline > RetryPeriod):
 *
 *  - LeaseDuration: the lease TTL. etcd deletes the master's key a TTL after it last
 *    renewed the lease (at its next expiry sweep, every 500 ms).
 *  - RenewDeadline: TTL − margin. The master acts only this long after it SENT the last
 *    renewal etcd acknowledged; past it, it stops (but keeps renewing: etcd may still hold
 *    the lease).
 *  - RetryPeriod: a third of the TTL between renewals. A renewal not answered within the
 *    hedge, min(TTL / 6, 500 ms), is sent again, to another member, and so on until one is
 *    answered; a failed one is followed at once.
 *
 * And the rule that makes an etcd leader election harmless. etcd can be without a leader for
 * up to two `--election-timeout`s (its followers wait a randomized timeout between one and
 * two before they campaign) and a vote; a renewal waiting at a follower meanwhile is answered
 * late (etcd 3.4's follower looks for the new leader once per election timeout), but one sent
 * after the new leader is in is answered at once, and the new leader extends every lease. The
 * last renewal acknowledged before the leader died may have been sent a RetryPeriod before.
 * So: RenewDeadline > RetryPeriod + 2 × election timeout + 200 ms + hedge. With etcd's
 * defaults (election timeout 1000 ms) that is a TTL of 5 s at least.
 */

/** etcd's default `--election-timeout`, ms. */
export const ETCD_DEFAULT_ELECTION_MS = 1000;
/** A vote round and the new leader's first steps, beyond the randomized timeout, ms. */
export const ELECTION_SLACK_MS = 200;

/**
 * How long before the lease's earliest possible expiry at the store we stop acting as
 * master: a tenth of the TTL, at least 100 ms. It covers our timers firing late (the event
 * loop busy) and the store's clock running a little faster than ours.
 */
export function safetyMarginMs(ttlMs: number): number {
  return Math.min(ttlMs / 3, Math.max(100, ttlMs / 10));
}

/** The renew deadline of a TTL: how long after sending its last acknowledged renewal a master may act. */
export function renewDeadlineMs(ttlSeconds: number): number {
  return ttlSeconds * 1000 - safetyMarginMs(ttlSeconds * 1000);
}

/** Between renewals (client-go's RetryPeriod): a third of the TTL, as etcd's own clients. */
export function renewIntervalMs(ttlMs: number): number {
  return ttlMs / 3;
}

/** A renewal unanswered this long is sent again, to another member. */
export function hedgeMs(ttlMs: number): number {
  return Math.max(50, Math.min(ttlMs / 6, 500));
}

/** What a renewal deadline must outlast at this TTL and election timeout: a renewal interval, the leaderless time, a hedge. */
export function renewalWorstMs(ttlSeconds: number, electionMs: number): number {
  const ttlMs = ttlSeconds * 1000;
  return renewIntervalMs(ttlMs) + leaderlessMs(electionMs) + hedgeMs(ttlMs);
}

/** The longest etcd can be without a leader after losing one, ms. */
export function leaderlessMs(electionMs: number): number {
  return 2 * electionMs + ELECTION_SLACK_MS;
}

/** The shortest TTL (whole seconds) that survives an etcd leader election at this election timeout. */
export function minimumTtlSeconds(electionMs: number): number {
  // etcd itself raises a TTL below 1.5 election timeouts to that.
  let seconds = Math.max(1, Math.ceil((1.5 * electionMs) / 1000));
  while (renewDeadlineMs(seconds) <= renewalWorstMs(seconds, electionMs)) seconds++;
  return seconds;
}

/** The TTL when none is configured: a tock, in whole seconds, and never less than the minimum. */
export function defaultTtlSeconds(tockMs: number, electionMs: number): number {
  return Math.max(1, Math.ceil(tockMs / 1000), minimumTtlSeconds(electionMs));
}
