/**
 * The wrapper's signals (SIGINT, SIGTERM, SIGHUP). pixl-server's own handlers would leave at
 * once, abandoning the command to its guardian; ours leave in order, and each signal more
 * hurries: the first stops the command with its full grace, then leaves the cluster; the
 * second kills the command now; the third exits at once (the guardian still ends the command).
 */
import type PixlServer = require('pixl-server');

const SIGNALS = { SIGINT: 'sigIntFunc', SIGTERM: 'sigTermFunc', SIGHUP: 'sigHupFunc' } as const;

export interface SignalSteps {
  leave(signal: NodeJS.Signals): void;
  hurry(signal: NodeJS.Signals): void;
  exit(signal: NodeJS.Signals): void;
}

/** Take the signals over from pixl-server: the first, second and third caught run `steps` in turn. */
export function escalateSignals(server: PixlServer, steps: SignalSteps): void {
  let caught = 0;
  for (const [signal, name] of Object.entries(SIGNALS) as Array<[NodeJS.Signals, (typeof SIGNALS)[keyof typeof SIGNALS]]>) {
    const handler = server[name] as ((...args: unknown[]) => void) | undefined;
    if (handler) process.off(signal, handler);
  }
  for (const signal of Object.keys(SIGNALS) as NodeJS.Signals[])
    process.on(signal, () => {
      caught++;
      if (caught === 1) steps.leave(signal);
      else if (caught === 2) steps.hurry(signal);
      else steps.exit(signal);
    });
}
