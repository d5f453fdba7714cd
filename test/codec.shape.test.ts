/**
 * The codec's walk of a parsed datagram (`__proto__` keys, `constructor.prototype` paths and
 * nesting deeper than MAX_DATA_DEPTH are dropped) against a reference model: the plain walk of
 * every value, one tuple per value, that it replaced for speed. Generated trees full of the
 * special keys and of deep branches must get the same verdict, the same reason and the same
 * detail, so the first violation found is the same one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decode } from '../src/wire/codec';
import { MAX_DATA_DEPTH } from '../src/protocol/limits';

type Verdict = { reason: string; detail: string } | null;

function referenceWalk(root: unknown): Verdict {
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (typeof node !== 'object' || node === null) continue;
    if (depth > MAX_DATA_DEPTH) return { reason: 'too-deep', detail: `nesting deeper than ${MAX_DATA_DEPTH}` };
    if (Array.isArray(node)) {
      for (const child of node) stack.push([child, depth + 1]);
      continue;
    }
    for (const key of Object.keys(node)) {
      if (key === '__proto__') return { reason: 'special-key', detail: '__proto__' };
      const child = (node as Record<string, unknown>)[key];
      if (
        key === 'constructor' &&
        typeof child === 'object' &&
        child !== null &&
        !Array.isArray(child) &&
        Object.hasOwn(child, 'prototype')
      ) {
        return { reason: 'special-key', detail: 'constructor.prototype' };
      }
      stack.push([child, depth + 1]);
    }
  }
  return null;
}

/** JSON text of a tree whose keys are often the special ones, and whose branches are sometimes deeper than the limit. */
const KEYS = ['a', 'b', '__proto__', 'constructor', 'prototype', 'x'];
const leaf = fc.oneof(fc.integer(), fc.constant('s'), fc.constant(null), fc.boolean()).map((value) => JSON.stringify(value));
function deep(depth: number, inner: string): string {
  return '['.repeat(depth) + inner + ']'.repeat(depth);
}
const { tree } = fc.letrec<{ tree: string }>((tie) => ({
  tree: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('tree'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
    fc
      .array(fc.tuple(fc.constantFrom(...KEYS), tie('tree')), { maxLength: 4 })
      .map((pairs) => `{${pairs.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`),
    fc.tuple(fc.integer({ min: MAX_DATA_DEPTH - 3, max: MAX_DATA_DEPTH + 3 }), tie('tree')).map(([depth, inner]) => deep(depth, inner)),
  ),
}));

test('the walk drops exactly what the reference walk drops, for the same reason and detail', () => {
  fc.assert(
    fc.property(tree, fc.constantFrom('data', 'extra', '__proto__', 'constructor'), (value, field) => {
      const text = `{"hostname":"h","ip":"","master":0,"eligible":1,"uptime":0,"action":"heartbeat",${JSON.stringify(field)}:${value}}`;
      const expected = referenceWalk(JSON.parse(text));
      const result = decode(Buffer.from(text));
      if (expected) {
        assert.equal(result.ok, false, text);
        if (!result.ok) assert.deepEqual({ reason: result.reason, detail: result.detail }, expected, text);
      } else if (!result.ok) {
        // A clean tree may still be refused by field validation, never by the walk.
        assert.ok(!['too-deep', 'special-key'].includes(result.reason), `${result.reason}: ${text}`);
      }
    }),
    { numRuns: 3000, seed: 22 },
  );
});
