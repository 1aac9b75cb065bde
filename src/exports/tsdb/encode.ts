/**
 * Records -> line protocol, one line per record, with per-record verdicts:
 * a record is written, rejected (a dead letter: the reason says what to fix)
 * or, with `omitEmpty`, skipped when none of its fields has a value.
 *
 * Lines are written as bytes straight into the request body (ByteWriter):
 * a record allocates no line string, which measured several times faster
 * than string building, whose ropes cost more in garbage collection than
 * the conversion itself (decision 014).
 */
import type { Point } from '../../ingest/types.ts';
import type { Rejected } from '../shared/sink.ts';
import { valueAt } from '../shared/fields.ts';
import { escapeKey, lineSafe, longNs, nsText, rfc3339Ns } from './line.ts';
import type { CompiledSchema } from '../../ingest/compiled.ts';
import { decodeLine } from '../../ingest/points.ts';
import { ByteWriter } from './bytes.ts';
import type { FieldPlan, TsdbPlan } from './spec.ts';
import { WireTranscoder } from './wire.ts';

/** What happened to the records that were not written. */
export interface Verdicts {
  rejected: Rejected[];
  /** Records skipped by omitEmpty. */
  skipped: number;
}

/** Why a value cannot be written, thrown while encoding a record and caught per record. */
class Unfit extends Error {}

function writeField(out: ByteWriter, f: FieldPlan, v: unknown): void {
  switch (f.kind) {
    case 'int':
      if (typeof v === 'number' && Number.isSafeInteger(v)) {
        out.int(v);
        out.byte(105); // i
        return;
      }
      if (typeof v === 'bigint') {
        out.text(`${v}i`);
        return;
      }
      break;
    case 'float':
      if (typeof v === 'number') {
        if (!Number.isFinite(v)) throw new Unfit(`field "${f.name}": ${v} is not a number InfluxDB can store`);
        if (Number.isSafeInteger(v)) out.int(v);
        else out.text(String(v));
        return;
      }
      break;
    case 'bool':
      if (typeof v === 'boolean') {
        out.text(v ? 'true' : 'false');
        return;
      }
      break;
    case 'string':
      if (typeof v === 'string') {
        out.quoted(v);
        return;
      }
      // A value decoded from a field retyped since it was stored: keep its text.
      if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') {
        out.quoted(String(v));
        return;
      }
      break;
  }
  throw new Unfit(`field "${f.name}": ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)?.slice(0, 80)} is not a ${f.kind === 'int' ? 'long' : f.kind}`);
}

/** Most distinct values remembered per tag: tag values repeat (hosts, regions), so escaping them once pays. */
const TAG_CACHE = 4096;

function tagText(name: string, v: unknown, cache: Map<string, string>): string {
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') s = String(v);
  else throw new Unfit(`tag "${name}": ${JSON.stringify(v)?.slice(0, 80)} is not a scalar`);
  const hit = cache.get(s);
  if (hit !== undefined) return hit;
  const why = lineSafe(s, 'key');
  if (why) throw new Unfit(`tag "${name}": the value ${JSON.stringify(s.slice(0, 80))} ${why}`);
  const text = escapeKey(s);
  if (cache.size >= TAG_CACHE) cache.clear();
  cache.set(s, text);
  return text;
}

const NO_POINT: Point = {};

function writeTimestamp(out: ByteWriter, plan: TsdbPlan, point: Point, offset: number, appendMs: number): void {
  const ts = plan.timestamp;
  if (ts === undefined) {
    // The time the server stored the record, plus its offset as sub-millisecond
    // nanoseconds: records never collapse onto one timestamp, and a redelivery
    // writes the very same point (InfluxDB overwrites it) instead of a duplicate.
    if (appendMs > 0 && appendMs < 9e12 && Number.isInteger(appendMs)) {
      out.int(appendMs);
      out.padded(offset % 1_000_000, 6);
      return;
    }
    const ns = nsText(appendMs, offset % 1_000_000);
    if (ns === undefined) throw new Unfit(`append time ${appendMs} is outside InfluxDB's time range`);
    out.text(ns);
    return;
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
  out.text(ns);
}

/**
 * Converts records to line protocol for one plan. Holds per-tag caches of
 * escaped values and the pending request body, so one encoder per running sink.
 */
export class LineEncoder {
  private readonly tagCaches: Array<Map<string, string>>;
  private readonly out = new ByteWriter();
  /** Lines in the pending body. */
  count = 0;

  constructor(readonly plan: TsdbPlan) {
    this.tagCaches = plan.tags.map(() => new Map());
  }

  /** Writes one record's line; false when omitEmpty skips it. @throws Unfit (the caller drops the half-written line) */
  private record(point: Point, offset: number, appendMs: number): boolean {
    const plan = this.plan;
    const out = this.out;
    if (this.count > 0) out.byte(10);
    out.text(plan.measurement);
    for (let i = 0; i < plan.tags.length; i++) {
      const t = plan.tags[i]!;
      const v = t.path.length === 1 ? point[t.path[0] as string] : valueAt(point, t.path);
      // InfluxDB has no empty tag values: an absent tag is how it stores "none".
      if (v === undefined || v === null || v === '') continue;
      out.text(t.prefix);
      out.text(tagText(t.name, v, this.tagCaches[i]!));
    }
    let sep = 32; // ' ' before the first field, ',' between fields
    for (const f of plan.fields) {
      const v = f.path.length === 1 ? point[f.path[0] as string] : valueAt(point, f.path);
      if (v === undefined || v === null) continue;
      out.byte(sep);
      out.text(f.prefix);
      writeField(out, f, v);
      sep = 44;
    }
    if (sep === 32) {
      if (plan.omitEmpty) return false;
      throw new Unfit(`none of the fields (${plan.fields.map((f) => f.name).join(', ')}) has a value, and InfluxDB stores no point without one; set omitEmpty to skip such records`);
    }
    out.byte(32);
    writeTimestamp(out, plan, point, offset, appendMs);
    return true;
  }

  /**
   * Converts records [start, end) of a batch (record i has offset from + i)
   * into the pending body; stops after the line that reaches `maxBytes`.
   *
   * @param point the decoded record i
   * @param times append time (ms) of each record of the batch
   * @returns the index of the first record not converted (end when all were)
   */
  encode(point: (i: number) => Point, from: number, times: readonly number[], start: number, end: number, maxBytes: number, verdicts: Verdicts): number {
    const out = this.out;
    let i = start;
    while (i < end && out.len < maxBytes) {
      const offset = from + i;
      const mark = out.len;
      try {
        if (this.record(point(i), offset, times[i] ?? 0)) this.count++;
        else {
          out.len = mark;
          verdicts.skipped++;
        }
      } catch (err) {
        if (!(err instanceof Unfit)) throw err;
        out.len = mark;
        verdicts.rejected.push({ offset, error: err.message });
      }
      i++;
    }
    return i;
  }

  /**
   * As encode, for stored wire lines of a repo with `schema`: lines the
   * WireTranscoder takes are converted without decoding, the others are
   * decoded (as ExportBatch.points() decodes them) and go the decode path.
   */
  encodeStored(lines: readonly string[], schema: CompiledSchema, from: number, times: readonly number[], start: number, end: number, maxBytes: number, verdicts: Verdicts): number {
    if (this.wire === null || this.wireSchema !== schema) {
      this.wire = WireTranscoder.create(this.plan, schema);
      this.wireSchema = schema;
    }
    const wire = this.wire;
    const out = this.out;
    let i = start;
    while (i < end && out.len < maxBytes) {
      const mark = out.len;
      if (wire !== undefined) {
        if (this.count > 0) out.byte(10);
        this.offset = from + i;
        this.appendMs = times[i] ?? 0;
        if (wire.write(out, lines[i] as string, this.tagFor, this.appendTime)) {
          this.count++;
          i++;
          continue;
        }
        out.len = mark;
      }
      this.encode((k) => decodeLine(lines[k] as string, schema), from, times, i, i + 1, Infinity, verdicts);
      i++;
    }
    return i;
  }

  private wire: WireTranscoder | undefined | null = null;
  private wireSchema: CompiledSchema | undefined;
  private offset = 0;
  private appendMs = 0;
  private readonly tagFor = (i: number, v: string): string => tagText(this.plan.tags[i]!.name, v, this.tagCaches[i]!);
  private readonly appendTime = (): void => writeTimestamp(this.out, this.plan, NO_POINT, this.offset, this.appendMs);

  /** The pending lines as one body (lines joined by newlines), and a fresh start. */
  take(): Buffer {
    this.count = 0;
    return this.out.take();
  }
}

/** Each record of a batch as its own line-protocol line (preview, tests, benches). */
export function encodeRecords(plan: TsdbPlan, points: readonly Point[], from: number, times: readonly number[]): Verdicts & { lines: string[] } {
  const out = { lines: [] as string[], rejected: [] as Rejected[], skipped: 0 };
  const enc = new LineEncoder(plan);
  for (let i = 0; i < points.length; i++) {
    enc.encode((k) => points[k] as Point, from, times, i, i + 1, Infinity, out);
    if (enc.count > 0) out.lines.push(enc.take().toString('utf8'));
  }
  return out;
}
