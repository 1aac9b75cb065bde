/**
 * The fast path of the tsdb encoder: a stored wire line (TAB-separated
 * `key=value`) becomes line protocol without being decoded into a point.
 * Decoding allocated an object and a string or number per value and cost as
 * much as the whole conversion (decision 014).
 *
 * It takes only lines it is sure about and leaves every other one to the
 * decode path, which then writes the same line or rejects the record with
 * the precise reason: lines with a backslash anywhere (how escapes decode
 * depends on the repo's escape mode), numbers not in canonical form, a
 * timestamp that does not parse, a record without fields, nested `#a.b`
 * references (then the fast path is off altogether).
 */
import { K_DATE, K_JSONSTRING, K_STRING, type CompiledSchema } from '../../ingest/compiled.ts';
import type { ByteWriter } from './bytes.ts';
import { longNs, rfc3339Ns } from './line.ts';
import type { TsdbPlan } from './spec.ts';

/** How a slot's raw text is written. */
const enum Raw {
  Text,
  Int,
  Float,
  Bool,
}

interface Slot {
  /** Index of the source field in the compiled schema's top level. */
  readonly index: number;
  readonly raw: Raw;
}

/** s[a, b) is an integer in canonical form (what String(Number(it)) gives back) with at most `maxDigits` digits. */
function canonicalInt(s: string, a: number, b: number, maxDigits: number): boolean {
  if (a < b && s.charCodeAt(a) === 45) a++;
  const n = b - a;
  if (n === 0 || n > maxDigits) return false;
  const first = s.charCodeAt(a);
  if (first === 48) return n === 1 && s.charCodeAt(a - 1) !== 45; // "0", not "-0" or "007"
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** End of the run of ASCII digits in s starting at i (i when none). */
function digitsEnd(s: string, i: number, b: number): number {
  while (i < b) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    i++;
  }
  return i;
}

/** s[a, b) is a decimal number influxd 1.x parses as a float: -?d+(.d+)?([eE][+-]?d+)? */
function plainFloat(s: string, a: number, b: number): boolean {
  let i = a;
  if (i < b && s.charCodeAt(i) === 45) i++;
  let j = digitsEnd(s, i, b);
  if (j === i) return false;
  i = j;
  if (i < b && s.charCodeAt(i) === 46) {
    j = digitsEnd(s, ++i, b);
    if (j === i) return false;
    i = j;
  }
  if (i < b && (s.charCodeAt(i) | 32) === 101) {
    i++;
    if (i < b && (s.charCodeAt(i) === 43 || s.charCodeAt(i) === 45)) i++;
    j = digitsEnd(s, i, b);
    if (j === i) return false;
    i = j;
  }
  return i === b;
}

const isTextKind = (kind: number): boolean => kind === K_STRING || kind === K_JSONSTRING || kind === K_DATE;

export class WireTranscoder {
  private readonly starts: Int32Array;
  private readonly ends: Int32Array;
  private readonly seen: Uint32Array;
  private stamp = 0;

  private constructor(
    private readonly plan: TsdbPlan,
    private readonly schema: CompiledSchema,
    private readonly tags: readonly Slot[],
    private readonly fields: readonly Slot[],
    private readonly ts: Slot | undefined,
  ) {
    const n = schema.fields.length;
    this.starts = new Int32Array(n);
    this.ends = new Int32Array(n);
    this.seen = new Uint32Array(n);
  }

  /** A transcoder for the plan, or undefined when the plan has references it does not handle (nested paths). */
  static create(plan: TsdbPlan, schema: CompiledSchema): WireTranscoder | undefined {
    const slot = (path: readonly string[], raw: (kind: number) => Raw | undefined): Slot | undefined => {
      const f = path.length === 1 ? schema.byKey.get(path[0] as string) : undefined;
      const r = f && raw(f.kind);
      return f && r !== undefined ? { index: f.index, raw: r } : undefined;
    };
    const tags = plan.tags.map((t) => slot(t.path, (k) => (isTextKind(k) ? Raw.Text : t.source === 'long' ? Raw.Int : t.source === 'boolean' ? Raw.Bool : undefined)));
    const fields = plan.fields.map((f) => slot(f.path, () => (f.kind === 'int' ? Raw.Int : f.kind === 'float' ? Raw.Float : f.kind === 'bool' ? Raw.Bool : Raw.Text)));
    const ts = plan.timestamp && slot(plan.timestamp.path, (k) => (plan.timestamp?.source === 'long' ? Raw.Int : isTextKind(k) ? Raw.Text : undefined));
    if (tags.includes(undefined) || fields.includes(undefined) || (plan.timestamp && !ts)) return undefined;
    return new WireTranscoder(plan, schema, tags as Slot[], fields as Slot[], ts);
  }

  /**
   * Writes the line for stored `line` into `out`. Answers false when the
   * decode path must handle the record; `out` may then hold a partial line,
   * which the caller drops.
   *
   * @param tagText escapes (and caches) tag value `v` of tag i
   * @param appendTime writes the default timestamp
   */
  write(out: ByteWriter, line: string, tagText: (i: number, v: string) => string, appendTime: () => void): boolean {
    if (line.indexOf('\\') >= 0) return false;
    // The key scan is decodeLine's (as decodeColumns keeps it), inline: it records
    // value spans instead of decoding them, and this is the sink's hot loop.
    const { starts, ends, seen, schema } = this;
    const stamp = ++this.stamp;
    const fields = schema.fields;
    const len = line.length;
    let pos = 0;
    let guess = 0;
    while (pos < len) {
      let tab = line.indexOf('\t', pos);
      if (tab < 0) tab = len;
      let f = fields[guess];
      let at: number;
      if (f !== undefined && line.startsWith(f.keyEq, pos)) at = pos + f.keyEq.length;
      else {
        const eq = line.indexOf('=', pos);
        f = eq > pos && eq < tab ? schema.byKey.get(line.slice(pos, eq)) : undefined;
        at = eq + 1;
      }
      if (f !== undefined) {
        starts[f.index] = at;
        ends[f.index] = tab;
        seen[f.index] = stamp;
        guess = f.index + 1;
      }
      pos = tab + 1;
    }
    const plan = this.plan;
    out.text(plan.measurement);
    for (let i = 0; i < this.tags.length; i++) {
      const { index, raw } = this.tags[i]!;
      if (seen[index] !== stamp) continue;
      const a = starts[index]!;
      const b = ends[index]!;
      if (a === b) continue;
      if ((raw === Raw.Int && !canonicalInt(line, a, b, 15)) || (raw === Raw.Bool && !isBool(line, a, b))) return false;
      out.text(plan.tags[i]!.prefix);
      out.text(tagText(i, line.slice(a, b)));
    }
    let sep = 32;
    for (let i = 0; i < this.fields.length; i++) {
      const { index, raw } = this.fields[i]!;
      if (seen[index] !== stamp) continue;
      const a = starts[index]!;
      const b = ends[index]!;
      out.byte(sep);
      out.text(plan.fields[i]!.prefix);
      if (raw === Raw.Text) out.quotedRange(line, a, b);
      else if (raw === Raw.Int) {
        if (!canonicalInt(line, a, b, 19)) return false;
        out.ascii(line, a, b);
        out.byte(105); // i
      } else if (raw === Raw.Float) {
        // A negative zero ("-0", "-0.0e3") is written "0" by the decode path.
        if (!plainFloat(line, a, b) || (line.charCodeAt(a) === 45 && Number(line.slice(a, b)) === 0)) return false;
        out.ascii(line, a, b);
      } else {
        if (!isBool(line, a, b)) return false;
        out.ascii(line, a, b);
      }
      sep = 44;
    }
    if (sep === 32) return false;
    out.byte(32);
    const ts = this.ts;
    if (ts === undefined) appendTime();
    else {
      if (seen[ts.index] !== stamp) return false;
      const a = starts[ts.index]!;
      const b = ends[ts.index]!;
      let ns: string | undefined;
      if (ts.raw === Raw.Int) {
        if (!canonicalInt(line, a, b, 19)) return false;
        const digits = line.slice(a, b);
        ns = longNs(b - a <= 15 ? Number(digits) : BigInt(digits), plan.longUnit);
      }
      else ns = rfc3339Ns(line.slice(a, b));
      if (ns === undefined) return false;
      out.text(ns);
    }
    return true;
  }
}

function isBool(s: string, a: number, b: number): boolean {
  return (b - a === 4 && s.startsWith('true', a)) || (b - a === 5 && s.startsWith('false', a));
}
