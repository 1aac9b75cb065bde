/**
 * RFC 3339 <-> DuckDB TIMESTAMP (microseconds since the Unix epoch, UTC).
 *
 * Parsing is hand-written rather than `Date.parse` because Date keeps only
 * milliseconds and the loader parses up to a million values per run: a
 * charCode scanner is several times faster and keeps microseconds.
 */

const TWO_32 = 4294967296;
/** |seconds| below this keep seconds * 1e6 + micros under 2^53 (years ~1685..2255). */
const SAFE_SECONDS = 9_000_000_000;

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Two ASCII digits at `i` as a number, or NaN. */
function digits2(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : NaN;
}

/**
 * The last date (as yyyymmdd) and its day number: a batch's points mostly
 * share dates, and days_from_civil's divisions are most of a parse. (Caching
 * the whole head by string prefix was slower: startsWith costs more than
 * re-reading the digits.)
 */
let lastYmd = NaN;
let lastDays = 0;
/** Microsecond fraction of the last successful parseSeconds (module state: the hot loop allocates nothing). */
let lastMicros = 0;

/** Seconds since the epoch of a `YYYY-MM-DDTHH:MM:SS` head, or NaN. */
function headSeconds(s: string): number {
  if (s.charCodeAt(4) !== 45 /* - */ || s.charCodeAt(7) !== 45 || s.charCodeAt(13) !== 58 /* : */ || s.charCodeAt(16) !== 58) return NaN;
  const sep = s.charCodeAt(10);
  if (sep !== 84 /* T */ && sep !== 116 /* t */ && sep !== 32 /* space */) return NaN;
  const mo = digits2(s, 5);
  const d = digits2(s, 8);
  const h = digits2(s, 11);
  const mi = digits2(s, 14);
  const sec = digits2(s, 17);
  if (!(mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && sec <= 60)) return NaN;
  const ymd = (digits2(s, 0) * 100 + digits2(s, 2)) * 10000 + mo * 100 + d;
  if (ymd !== lastYmd) {
    if (ymd !== ymd) return NaN;
    lastDays = daysFromCivil(Math.floor(ymd / 10000), mo, d);
    lastYmd = ymd;
  }
  return lastDays * 86400 + h * 3600 + mi * 60 + sec;
}

/**
 * UTC seconds of an RFC 3339 date-time (`2017-01-02T03:04:05.123456789+08:00`,
 * `...Z`), or NaN when `s` is not one; the fraction, truncated to
 * microseconds, is left in lastMicros.
 */
function parseSeconds(s: string): number {
  let seconds = headSeconds(s);
  if (seconds !== seconds) return NaN;
  let i = 19;
  let micros = 0;
  if (s.charCodeAt(i) === 46 /* . */) {
    i++;
    let n = 0;
    for (let c = s.charCodeAt(i) - 48; c >= 0 && c <= 9; c = s.charCodeAt(++i) - 48) {
      if (n < 6) micros = micros * 10 + c;
      n++;
    }
    if (n === 0) return NaN;
    for (; n < 6; n++) micros *= 10;
  }
  const z = s.charCodeAt(i);
  if (z === 90 /* Z */ || z === 122 /* z */) {
    i++;
  } else if (z === 43 /* + */ || z === 45 /* - */) {
    const oh = digits2(s, i + 1);
    const om = digits2(s, i + 4);
    if (s.charCodeAt(i + 3) !== 58 || !(oh <= 23 && om <= 59)) return NaN;
    seconds -= (z === 43 ? 1 : -1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return NaN;
  }
  if (i !== s.length) return NaN;
  lastMicros = micros;
  return seconds;
}

/**
 * Parses an RFC 3339 date-time into UTC seconds and a microsecond fraction;
 * digits beyond microseconds are truncated. Returns null when `s` is not one.
 */
export function parseRfc3339(s: string): { seconds: number; micros: number } | null {
  const seconds = parseSeconds(s);
  return seconds === seconds ? { seconds, micros: lastMicros } : null;
}

/**
 * Writes an RFC 3339 string as int64 microseconds into `out` (little-endian
 * int32 pairs) at row `i`. Returns false when the string does not parse.
 * Avoids BigInt on the hot path: it would allocate once per value.
 */
export function writeRfc3339Micros(s: string, out: Int32Array, i: number): boolean {
  const seconds = parseSeconds(s);
  if (seconds !== seconds) return false;
  if (seconds < SAFE_SECONDS && seconds > -SAFE_SECONDS) {
    writeInt64(out, i, seconds * 1_000_000 + lastMicros);
  } else {
    const v = BigInt(seconds) * 1_000_000n + BigInt(lastMicros);
    new BigInt64Array(out.buffer, out.byteOffset, out.length >>> 1)[i] = BigInt.asIntN(64, v);
  }
  return true;
}

/** Writes a safe integer as little-endian int64 at row `i` of an int32-pair buffer. */
export function writeInt64(out: Int32Array, i: number, v: number): void {
  // `>>> 0` is exact modulo 2^32 for any integer-valued double; the division
  // by a power of two is exact too, so no precision is lost below 2^53.
  out[2 * i] = v >>> 0;
  out[2 * i + 1] = Math.floor(v / TWO_32);
}

const pad2 = (n: number): string => (n < 10 ? '0' : '') + n;

/** The last second formatted ('YYYY-MM-DDTHH:MM:SS') and its number: result timestamps cluster. */
let fmtSecond = NaN;
let fmtSecondText = '';

/** '000'..'999', and the same with trailing zeros trimmed, for fraction digits without per-value padding. */
const DIGITS3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const DIGITS3_TRIMMED = DIGITS3.map((d) => d.replace(/0+$/, ''));

/** '.ddd[ddd[ddd]]' for 1..999,999,999 ns, trailing zeros trimmed. */
function fraction(nanos: number): string {
  const ms = Math.floor(nanos / 1_000_000);
  const us = Math.floor(nanos / 1000) % 1000;
  const ns = nanos % 1000;
  if (ns !== 0) return '.' + DIGITS3[ms] + DIGITS3[us] + DIGITS3_TRIMMED[ns];
  if (us !== 0) return '.' + DIGITS3[ms] + DIGITS3_TRIMMED[us];
  return '.' + DIGITS3_TRIMMED[ms];
}

/**
 * RFC 3339 in UTC with 'Z' for whole seconds since the epoch plus a fraction
 * in nanoseconds, trimmed of trailing zeros like Go's RFC3339Nano (so whole
 * seconds carry none). Undefined outside years 0..9999 (also ±infinity).
 */
function formatUtc(seconds: number, nanos: number): string | undefined {
  if (seconds !== fmtSecond) {
    const date = new Date(seconds * 1000);
    const y = date.getUTCFullYear();
    if (Number.isNaN(y) || y < 0 || y > 9999) return undefined;
    fmtSecondText = String(y).padStart(4, '0') + '-' + pad2(date.getUTCMonth() + 1) + '-' + pad2(date.getUTCDate()) +
      'T' + pad2(date.getUTCHours()) + ':' + pad2(date.getUTCMinutes()) + ':' + pad2(date.getUTCSeconds());
    fmtSecond = seconds;
  }
  return nanos === 0 ? fmtSecondText + 'Z' : fmtSecondText + fraction(nanos) + 'Z';
}

/** Floor division and non-negative remainder for bigint. */
function divmod(v: bigint, d: bigint): [bigint, bigint] {
  const q = v / d;
  const r = v % d;
  return r < 0n ? [q - 1n, r + d] : [q, r];
}

/** RFC 3339 (UTC, 'Z') for DuckDB microseconds given as an exact number (|v| < 2^53). */
export function formatMicrosNumber(micros: number): string | undefined {
  const seconds = Math.floor(micros / 1_000_000);
  return formatUtc(seconds, (micros - seconds * 1_000_000) * 1000);
}

/** RFC 3339 (UTC, 'Z') for DuckDB microseconds; undefined for ±infinity or years outside 0..9999. */
export function formatMicros(micros: bigint): string | undefined {
  const [s, us] = divmod(micros, 1_000_000n);
  return formatUtc(Number(s), Number(us) * 1000);
}

/** RFC 3339 (UTC, 'Z') for DuckDB nanoseconds (TIMESTAMP_NS). */
export function formatNanos(nanos: bigint): string | undefined {
  const [s, ns] = divmod(nanos, 1_000_000_000n);
  return formatUtc(Number(s), Number(ns));
}
