import { scalar, type Row } from '../../logstore/convert.ts';
import type { LogType } from '../../logstore/schema.ts';
import type { LogRepo } from '../../logstore/repo.ts';
import type { Mapping } from './spec.ts';

/** Why a record cannot become a log document (a class, so a user value named "error" is never taken for one). */
export class Bad {
  constructor(readonly error: string) {}
}

/** Mapped fields in the log repo's column order. */
export interface FlatPlan {
  leaves: Array<{ src: string; out: string; col: number; type: LogType }>;
  columns: number;
}

const SCALARS = new Set(['string', 'long', 'float', 'date', 'boolean']);

/**
 * A direct conversion plan when every mapped value is a top-level scalar of the
 * source going to a top-level scalar field of the log repo: the mapping the SDK,
 * logkit and an absent `doc` produce. Points then become rows without the
 * intermediate document and the schema walk (the sink's hot path); any other
 * mapping returns undefined and takes the general path.
 */
export function flatPlan(mapping: readonly Mapping[], repo: LogRepo): FlatPlan | undefined {
  const leaves: FlatPlan['leaves'] = [];
  for (const m of mapping) {
    if (m.children || !m.field || m.path?.length !== 1 || !SCALARS.has(m.field.valtype)) return undefined;
    const col = repo.columnIndex(m.key);
    const c = repo.columns[col];
    if (!c || c.dynamic || !SCALARS.has(c.type)) return undefined;
    leaves.push({ src: m.path[0]!, out: m.key, col, type: c.type });
  }
  leaves.sort((a, b) => a.col - b.col);
  return { leaves, columns: repo.columns.length };
}

/** The row of one point under a flat plan (same result as the general path). */
export function flatRow(plan: FlatPlan, point: Record<string, unknown>): Row | Bad | 'empty' {
  const values = new Array<string | number | null>(plan.columns).fill(null);
  const doc: Record<string, unknown> = {};
  let any = false;
  for (const l of plan.leaves) {
    let v = point[l.src];
    if (v === undefined || v === null) continue;
    if (typeof v === 'bigint') {
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) return new Bad(`field "${l.src}": ${v} is beyond the log store's integer range (2^53)`);
      v = Number(v);
    }
    const c = scalar(l.type, v);
    if (typeof c === 'object') return new Bad(`field "${l.out}": ${c.error}`);
    doc[l.out] = v;
    values[l.col] = c;
    any = true;
  }
  return any ? { values, multi: null, doc } : 'empty';
}
