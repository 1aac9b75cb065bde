/** FairSlots (src/services/fair-slots.ts): bounded holders, freed slots to the account served longest ago. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FairSlots } from '../src/services/fair-slots.ts';

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('FairSlots', () => {
  it('bounds holders, serves accounts in turn and each account in arrival order, and ignores a double release', async () => {
    const slots = new FairSlots(2);
    const order: string[] = [];
    const releases = new Map<string, () => void>();
    const take = (account: string, name: string): void => {
      void slots.acquire(account).then((release) => {
        order.push(name);
        releases.set(name, release);
      });
    };
    take('a', 'a1');
    take('a', 'a2');
    for (const n of ['a3', 'a4', 'a5']) take('a', n);
    take('b', 'b1');
    take('b', 'b2');
    take('c', 'c1');
    await tick();
    assert.deepEqual(order, ['a1', 'a2']);
    assert.equal(slots.inUse, 2);
    assert.equal(slots.queued, 6);
    const done = async (name: string): Promise<void> => {
      releases.get(name)!();
      await tick();
    };
    await done('a1'); // b and c were never served: b waited first
    await done('a1'); // a second release of the same holder frees nothing
    assert.deepEqual(order, ['a1', 'a2', 'b1']);
    await done('a2');
    assert.deepEqual(order.at(-1), 'c1');
    await done('b1'); // a was served before b and c: a3 next
    assert.deepEqual(order.at(-1), 'a3');
    await done('c1');
    assert.deepEqual(order.at(-1), 'b2');
    for (const n of ['a3', 'b2']) await done(n);
    assert.deepEqual(order, ['a1', 'a2', 'b1', 'c1', 'a3', 'b2', 'a4', 'a5']);
    for (const n of ['a4', 'a5']) await done(n);
    assert.equal(slots.inUse, 0);
    assert.equal(slots.queued, 0);
  });
});
