import { ApiError } from '../errors.ts';
import type { GroupRow, MetaStore } from '../storage/meta.ts';
import { Slots } from './slots.ts';

/** Worker slots per container of each type. */
export const CONTAINER_TYPES: Record<string, number> = { M16C4: 1, M32C8: 2 };

/** Worker slots a group grants its transforms and exports: count x (M16C4: 1, M32C8: 2). */
export function groupSlots(g: Pick<GroupRow, 'containerType' | 'containerCount'>): number {
  return g.containerCount * (CONTAINER_TYPES[g.containerType] ?? 1);
}

/** Validates `container` ({type, count 1..128}); E18213 / E18214. */
export function parseContainer(raw: unknown, maxCount = 128): { type: string; count: number } {
  if (typeof raw !== 'object' || raw === null) throw new ApiError('E18213', 'container {type, count} is required');
  const c = raw as Record<string, unknown>;
  if (typeof c.type !== 'string' || !(c.type in CONTAINER_TYPES)) {
    throw new ApiError('E18213', `container.type must be one of ${Object.keys(CONTAINER_TYPES).join(', ')}`);
  }
  if (typeof c.count !== 'number' || !Number.isInteger(c.count) || c.count < 1 || c.count > maxCount) {
    throw new ApiError('E18214', `container.count must be an integer from 1 to ${maxCount}`);
  }
  return { type: c.type, count: c.count };
}

/**
 * Run capacity of resource groups, shared by every runner (transforms,
 * exports): one slot pool per group, sized from the group's containers, and
 * one default pool for repos without a group. A stopped group pauses the
 * runs of its repos.
 */
export class GroupCapacity {
  private readonly pools = new Map<string, Slots>();

  constructor(
    private readonly meta: MetaStore,
    private readonly defaultSlots: number,
  ) {}

  /** The slot pool of a group (null: the default pool). */
  slots(account: string, group: string | null): Slots {
    const id = group ? `${account}/${group}` : '';
    let s = this.pools.get(id);
    if (!s) {
      const g = group ? this.meta.getGroup(account, group) : undefined;
      s = new Slots(g ? groupSlots(g) : this.defaultSlots);
      this.pools.set(id, s);
    }
    return s;
  }

  /** Whether runs of repos in this group are paused (group stopped or gone). */
  paused(account: string, group: string | null): boolean {
    if (!group) return false;
    return this.meta.getGroup(account, group)?.state !== 'running';
  }

  /** Re-reads a group's size after an update, start or stop. */
  groupChanged(account: string, group: string): void {
    const g = this.meta.getGroup(account, group);
    const s = this.pools.get(`${account}/${group}`);
    if (g && s) s.resize(groupSlots(g));
  }
}
