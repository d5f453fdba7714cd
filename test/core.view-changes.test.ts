/**
 * Which rows the application's view copies again (src/core/view-changes.ts): everything at the
 * first read, then the hostnames touched since the last read; a flood of hostnames between
 * two reads makes it rebuild the view instead of keeping a set without bound.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ViewChanges } from '../src/core/view-changes';

describe('ViewChanges', () => {
  test('keeps nothing before the first read, then exactly what changed between two reads', () => {
    const view = new ViewChanges(10);
    view.touch('a');
    assert.equal(view.take(), 'all');
    view.touch('a');
    view.touch('b');
    view.touch('a');
    assert.deepEqual([...(view.take() as Set<string>)], ['a', 'b']);
    assert.deepEqual([...(view.take() as Set<string>)], []);
  });

  test('past its bound between two reads it asks for a rebuild, once, and keeps nothing meanwhile', () => {
    const view = new ViewChanges(10);
    view.take();
    for (let i = 0; i < 10; i++) view.touch(`h${i}`);
    view.touch('h0');
    assert.equal((view.take() as Set<string>).size, 10, 'at the bound: still a set');
    for (let i = 0; i < 100_000; i++) view.touch(`zz${i}`);
    assert.equal(view.take(), 'all');
    assert.deepEqual([...(view.take() as Set<string>)], []);
  });
});
