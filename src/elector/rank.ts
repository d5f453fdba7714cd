/**
 * The rank rule of both modes: with no master, the eligible server that ranks first takes the
 * role (UDP: claims; etcd: campaigns), and a stepDown() hands it to the next in rank. Every
 * server computes it from what the others announce, so all agree on who is first.
 */

/**
 * Negative when `a` (priority `pa`) ranks before `b` (priority `pb`): higher priority first,
 * then the hostname that sorts first in plain string order (the original's rule, which had
 * no priority).
 */
export function compareRank(a: string, pa: number, b: string, pb: number): number {
  if (pa !== pb) return pb - pa;
  return a < b ? -1 : a > b ? 1 : 0;
}
