/**
 * Records -> line protocol, one line per record, with per-record verdicts:
 * a record is written, rejected (a dead letter: the reason says what to fix)
 * or, with `omitEmpty`, skipped when none of its fields has a value.
 */
import type { Point } from '../../ingest/types.ts';
import type { Rejected } from '../shared/sink.ts';
import { valueAt } from '../shared/fields.ts';
import { escapeKey, lineSafe, longNs, nsText, quoteString, rfc3339Ns } from './line.ts';
import type { FieldPlan, TsdbPlan } from './spec.ts';

export interface EncodedBatch {
  /** Line-protocol lines of the records that convert, in offset order. */
  lines: string[];
  rejected: Rejected[];
  /** Records skipped by omitEmpty. */
  skipped: number;
}

/** Why a value cannot be written, thrown inside `encodeRecord` and caught per record. */
class Unfit extends Error {}

function fieldText(f: FieldPlan, v: unknown): string {
  switch (f.kind) {
    case 'int':
      if ((typeof v === 'number' && Number.isSafeInteger(v)) || typeof v === 'bigint') return `${v}i`;
      break;
    case 'float':
      if (typeof v === 'number') {
        if (Number.isFinite(v)) return String(v);
        throw new Unfit(`field "${f.name}": ${v} is not a number InfluxDB can store`);
      }
      break;
    case 'bool':
      if (typeof v === 'boolean') return v ? 'true' : 'false';
      break;
    case 'string':
      if (typeof v === 'string') return quoteString(v);
      // A value decoded from a field retyped since it was stored: keep its text.
      if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return quoteString(String(v));
      break;
  }
  throw new Unfit(`field "${f.name}": ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)?.slice(0, 80)} is not a ${f.kind === 'int' ? 'long' : f.kind}`);
}

function tagText(name: string, v: unknown): string {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') s = String(v);
  else throw new Unfit(`tag "${name}": ${JSON.stringify(v)?.slice(0, 80)} is not a scalar`);
  const why = lineSafe(s, 'key');
  if (why) throw new Unfit(`tag "${name}": the value ${JSON.stringify(s.slice(0, 80))} ${why}`);
  return escapeKey(s);
}

function timestampText(plan: TsdbPlan, point: Point, offset: number, appendMs: number): string {
  const ts = plan.timestamp;
  if (ts === undefined) {
    // The time the server stored the record, plus its offset as sub-millisecond
    // nanoseconds: records never collapse onto one timestamp, and a redelivery
    // writes the very same point (InfluxDB overwrites it) instead of a duplicate.
    const ns = nsText(appendMs, offset % 1_000_000);
    if (ns === undefined) throw new Unfit(`append time ${appendMs} is outside InfluxDB's time range`);
    return ns;
  }
  const v = ts.path.length === 1 ? point[ts.path[0] as string] : valueAt(point, ts.path);
  if (v === undefined || v === null) throw new Unfit(`timestamp field "${ts.name}" has no value`);
  let ns: string | undefined;
  if (ts.source === 'long') {
    if (typeof v !== 'number' && typeof v !== 'bigint') throw new Unfit(`timestamp field "${ts.name}": ${JSON.stringify(v)?.slice(0, 80)} is not a long`);
    ns = longNs(v, plan.longUnit);
    if (ns === undefined) throw new Unfit(`timestamp field "${ts.name}": ${v} is outside InfluxDB's time range (years 1677-2262)`);
  } else {
    ns = typeof v === 'string' ? rfc3339Ns(v) : undefined;
    if (ns === undefined) throw new Unfit(`timestamp field "${ts.name}": ${JSON.stringify(v)?.slice(0, 80)} is not an RFC 3339 time within years 1677-2262`);
  }
  return ns;
}

/** One record's line, or undefined when omitEmpty skips it. @throws Unfit */
function encodeRecord(plan: TsdbPlan, point: Point, offset: number, appendMs: number): string | undefined {
  let fields = '';
  for (const f of plan.fields) {
    const v = f.path.length === 1 ? point[f.path[0] as string] : valueAt(point, f.path);
    if (v === undefined || v === null) continue;
    const text = fieldText(f, v);
    fields = fields === '' ? f.prefix + text : `${fields},${f.prefix}${text}`;
  }
  if (fields === '') {
    if (plan.omitEmpty) return undefined;
    throw new Unfit(`none of the fields (${plan.fields.map((f) => f.name).join(', ')}) has a value, and InfluxDB stores no point without one; set omitEmpty to skip such records`);
  }
  let line = plan.measurement;
  for (const t of plan.tags) {
    const v = t.path.length === 1 ? point[t.path[0] as string] : valueAt(point, t.path);
    // InfluxDB has no empty tag values: an absent tag is how it stores "none".
    if (v === undefined || v === null || v === '') continue;
    line += t.prefix + tagText(t.name, v);
  }
  return `${line} ${fields} ${timestampText(plan, point, offset, appendMs)}`;
}

/**
 * Converts consecutive records (offsets from, from+1, ...) to line protocol.
 *
 * @param times append time (ms) of each record, parallel to points
 */
export function encodeRecords(plan: TsdbPlan, points: readonly Point[], from: number, times: readonly number[]): EncodedBatch {
  const lines: string[] = [];
  const rejected: Rejected[] = [];
  let skipped = 0;
  for (let i = 0; i < points.length; i++) {
    const offset = from + i;
    try {
      const line = encodeRecord(plan, points[i] as Point, offset, times[i] ?? 0);
      if (line === undefined) skipped++;
      else lines.push(line);
    } catch (err) {
      if (!(err instanceof Unfit)) throw err;
      rejected.push({ offset, error: err.message });
    }
  }
  return { lines, rejected, skipped };
}
