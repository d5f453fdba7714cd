/**
 * A description of whatever a listener threw, that cannot throw itself: `throw null`,
 * `throw undefined`, a thrown `Object.create(null)`, an error whose `stack` or `message`
 * getter throws, a revoked Proxy.
 */
export function describeThrown(thrown: unknown): string {
  try {
    if (thrown instanceof Error) {
      const stack = safeRead(() => thrown.stack);
      if (typeof stack === 'string' && stack) return stack;
      const message = safeRead(() => thrown.message);
      return `${safeRead(() => thrown.name) ?? 'Error'}: ${typeof message === 'string' ? message : '(unreadable message)'}`;
    }
    if (thrown === null || thrown === undefined) return String(thrown);
    if (typeof thrown === 'object') {
      const text = safeRead(() => JSON.stringify(thrown));
      return typeof text === 'string' ? `a thrown object ${text.length > 500 ? `${text.slice(0, 500)}…` : text}` : 'a thrown object';
    }
    return `${typeof thrown} ${String(thrown)}`;
  } catch {
    return 'an unprintable value';
  }
}

function safeRead<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}
