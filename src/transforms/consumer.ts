import type { TransformRow } from '../storage/meta.ts';

/** The transform's consumer id in the offsets table. */
export const consumerId = (t: Pick<TransformRow, 'repo' | 'name'>): string => `transform:${t.repo}/${t.name}`;
