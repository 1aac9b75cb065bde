/**
 * InfluxDB 1.x line protocol: escaping and timestamps.
 *
 * `measurement[,tagKey=tagValue...] fieldKey=fieldValue[,...] timestampNs`
 *
 * Escaping as influxd 1.x parses it (checked against a real influxd in
 * test/exports-tsdb.test.ts): measurement escapes comma and space; tag keys,
 * tag values and field keys escape comma, equals sign and space; string field
 * values are double-quoted with `"` and `\` escaped, and may hold newlines.
 * Outside string fields influxd 1.x has no escape for a backslash and none
 * for a newline (a line ends there), so a name or tag value with a newline,
 * a trailing backslash, or a backslash right before a comma, equals sign or
 * space cannot be written as it is: `lineSafe` reports why, and the caller
 * refuses the spec or rejects the record instead of writing altered data.
 */

const MEASUREMENT_SPECIAL = /[, ]/g;
const KEY_SPECIAL = /[,= ]/g;
const STRING_SPECIAL = /["\\]/g;
const NEEDS_MEASUREMENT_ESCAPE = /[, ]/;
const NEEDS_KEY_ESCAPE = /[,= ]/;
const NEEDS_STRING_ESCAPE = /["\\]/;

/** Escapes a measurement name (commas and spaces). */
export function escapeMeasurement(s: string): string {
  return NEEDS_MEASUREMENT_ESCAPE.test(s) ? s.replace(MEASUREMENT_SPECIAL, '\\$&') : s;
}

/** Escapes a tag key, tag value or field key (commas, equals signs, spaces). */
export function escapeKey(s: string): string {
  return NEEDS_KEY_ESCAPE.test(s) ? s.replace(KEY_SPECIAL, '\\$&') : s;
}

/** A string field value, quoted, with `"` and `\` escaped. */
export function quoteString(s: string): string {
  return NEEDS_STRING_ESCAPE.test(s) ? `"${s.replace(STRING_SPECIAL, '\\$&')}"` : `"${s}"`;
}

/**
 * Why `s` cannot be written as a measurement (`measurement`) or as a tag key,
 * tag value or field key (`key`) without influxd changing it; undefined when it can.
 */
export function lineSafe(s: string, what: 'measurement' | 'key'): string | undefined {
  if (s.includes('\n')) return 'contains a newline, which line protocol cannot carry outside string fields';
  const bs = s.indexOf('\\');
  if (bs < 0) return undefined;
  const special = what === 'measurement' ? ', ' : ',= ';
  for (let i = bs; i < s.length; i++) {
    if (s.charCodeAt(i) !== 92) continue;
    const next = s[i + 1];
    if (next === undefined) return 'ends with a backslash, which influxd 1.x would read as an escape';
    if (special.includes(next)) {
      return `has a backslash before ${next === ' ' ? 'a space' : `"${next}"`}, which influxd 1.x cannot store unchanged`;
    }
  }
  return undefined;
}

/** Nanoseconds InfluxDB can store: ±(2^63 - 2). */
const MAX_NS = 9223372036854775806n;
/** Below this many ms (either sign) a timestamp's ns fit without the exact range check. */
const SAFE_MS = 9_223_372_036_853;

/** `ms * 1e6 + subNs` as decimal text, exact (no float rounding), or undefined beyond InfluxDB's range. */
export function nsText(ms: number, subNs: number): string | undefined {
  if (ms >= 0 && ms < SAFE_MS) return ms === 0 ? String(subNs) : `${ms}${String(subNs).padStart(6, '0')}`;
  const ns = BigInt(ms) * 1_000_000n + BigInt(subNs);
  return ns > MAX_NS || ns < -MAX_NS ? undefined : String(ns);
}

const d2 = (s: string, i: number): number => (s.charCodeAt(i) - 48) * 10 + s.charCodeAt(i + 1) - 48;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * An RFC 3339 timestamp (`2006-01-02T15:04:05.999999999+08:00`, any number
 * of fraction digits, digits past nanoseconds truncated) as nanoseconds
 * since the epoch in decimal text; undefined when it does not parse or lies
 * outside InfluxDB's range (years 1677-2262).
 */
export function rfc3339Ns(s: string): string | undefined {
  if (!RFC3339.test(s)) return undefined;
  const year = Number(s.slice(0, 4));
  const mon = d2(s, 5);
  const day = d2(s, 8);
  const h = d2(s, 11);
  const mi = d2(s, 14);
  const sec = d2(s, 17);
  if (mon < 1 || mon > 12 || day < 1 || h > 23 || mi > 59 || sec > 59) return undefined;
  const base = Date.UTC(year, mon - 1, day, h, mi, sec);
  // Date.UTC rolls 31 April into 1 May: a day that changed is not a calendar day.
  if (new Date(base).getUTCDate() !== day) return undefined;
  let p = 19;
  let frac = 0;
  if (s.charCodeAt(p) === 46) {
    const start = ++p;
    while (s.charCodeAt(p) >= 48 && s.charCodeAt(p) <= 57) p++;
    frac = Number(s.slice(start, Math.min(p, start + 9)).padEnd(9, '0'));
  }
  let offsetMin = 0;
  const z = s.charCodeAt(p);
  if (z !== 90 && z !== 122) {
    offsetMin = d2(s, p + 1) * 60 + d2(s, p + 4);
    if (d2(s, p + 1) > 23 || d2(s, p + 4) > 59) return undefined;
    if (z === 45) offsetMin = -offsetMin;
  }
  const ms = base - offsetMin * 60_000 + Math.floor(frac / 1_000_000);
  return nsText(ms, frac % 1_000_000);
}

/** Units a long timestamp can be in. */
export type LongUnit = 's' | 'ms' | 'us' | 'ns' | 'auto';
const PER_UNIT: Record<Exclude<LongUnit, 'auto'>, bigint> = { s: 1_000_000_000n, ms: 1_000_000n, us: 1000n, ns: 1n };

/**
 * A long timestamp as nanoseconds in decimal text. `auto` reads the unit
 * from the magnitude, as collectors send any of them: below 1e11 seconds
 * (until year 5138), below 1e14 milliseconds, below 1e17 microseconds,
 * else nanoseconds. Undefined outside InfluxDB's range.
 */
export function longNs(v: number | bigint, unit: LongUnit): string | undefined {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) return undefined;
  let u = unit;
  if (u === 'auto') {
    const abs = v < 0 ? -v : v;
    u = abs < 1e11 ? 's' : abs < 1e14 ? 'ms' : abs < 1e17 ? 'us' : 'ns';
  }
  if (u === 'ms' && typeof v === 'number') return nsText(v, 0);
  const ns = BigInt(v) * PER_UNIT[u];
  return ns > MAX_NS || ns < -MAX_NS ? undefined : String(ns);
}
