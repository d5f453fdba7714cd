/**
 * Manual handoffs in the lease election: `stepDown()` on the master, `promote()` anywhere.
 *
 * A stepping-down master deletes the election key and names its successor (the `handoff`
 * key) in one fenced transaction; the successor campaigns at once and everyone else waits
 * for it, for a handoff window. `promote()` asks the master (through the `promote` key) to
 * hand over, or with no master campaigns at once whatever the rank. What both modes share
 * (the handoff in progress, the waiting promote(), how outcomes are told) is
 * elector/handoffs.ts; the transactions are the roles' (roles.ts). The UDP core's handoffs
 * (core/handoff.ts) travel by datagram and keep more: whom a promote() asked, when it claims.
 */
import { HandoffOutcomes } from '../elector/handoffs';

export type { HandoffInFlight as PendingHandoff } from '../elector/handoffs';

export class LeaseHandoffs extends HandoffOutcomes {
  /** promote() with no master: campaign at once, whatever the rank. */
  claimNow = false;

  protected override promoteSettled(): void {
    this.claimNow = false;
  }

  wakeAt(): number {
    return this.pending ? Math.min(this.promoteUntil, this.pending.until) : this.promoteUntil;
  }
}
