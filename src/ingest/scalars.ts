/**
 * Scalar value checks and conversions for the point wire format. Every
 * checker works on a range [i, e) of a larger string so the hot path never
 * slices values out of a line, and uses char-code loops rather than regexes
 * or Date.parse (several times faster per value).
 */

const INT64_MAX = '9223372036854775807';
const INT64_MIN_ABS = '9223372036854775808';

/**
 * Whether s[i, e) is a decimal int64: optional sign, digits (leading zeros
 * allowed, as Go's strconv.ParseInt allows them), within
 * [-9223372036854775808, 9223372036854775807]. Beyond 19 significant digits
 * the range is compared as text, so nothing is lost to float rounding.
 */
export function isLong(s: string, i: number, e: number): boolean {
  if (i >= e) return false;
  let c = s.charCodeAt(i);
  let neg = false;
  if (c === 45 /* - */) {
    neg = true;
    i++;
  } else if (c === 43 /* + */) {
    i++;
  }
  if (i >= e) return false;
  let z = i;
  while (z < e && s.charCodeAt(z) === 48) z++;
  for (let j = z; j < e; j++) {
    c = s.charCodeAt(j);
    if (c < 48 || c > 57) return false;
  }
  const digits = e - z;
  if (digits < 19) return true;
  if (digits > 19) return false;
  // Same length, so lexicographic order is numeric order.
  return s.slice(z, e) <= (neg ? INT64_MIN_ABS : INT64_MAX);
}

/**
 * Whether s[i, e) is a finite decimal number: `[+-]? (d+ (. d*)? | . d+)
 * ([eE] [+-]? d+)?`. Integers are floats too; NaN, Infinity, hex and
 * values that overflow float64 (1e400) are not.
 */
export function isFloat(s: string, i: number, e: number): boolean {
  if (i >= e) return false;
  const start = i;
  let c = s.charCodeAt(i);
  if (c === 45 || c === 43) i++;
  let intDigits = 0;
  while (i < e && (c = s.charCodeAt(i)) >= 48 && c <= 57) {
    i++;
    intDigits++;
  }
  let fracDigits = 0;
  if (i < e && s.charCodeAt(i) === 46 /* . */) {
    i++;
    while (i < e && (c = s.charCodeAt(i)) >= 48 && c <= 57) {
      i++;
      fracDigits++;
    }
  }
  if (intDigits === 0 && fracDigits === 0) return false;
  if (i === e) return intDigits <= 308 || Number.isFinite(Number(s.slice(start, e)));
  c = s.charCodeAt(i);
  if (c !== 101 && c !== 69) return false;
  i++;
  if (i < e && ((c = s.charCodeAt(i)) === 45 || c === 43)) i++;
  const expStart = i;
  while (i < e && (c = s.charCodeAt(i)) >= 48 && c <= 57) i++;
  if (i === expStart || i !== e) return false;
  // An exponent may overflow; only then is the slow conversion needed.
  return Number.isFinite(Number(s.slice(start, e)));
}

/** Two ASCII digits at s[k], s[k+1] as a number, or -1. */
function d2(s: string, k: number): number {
  const a = s.charCodeAt(k) - 48;
  const b = s.charCodeAt(k + 1) - 48;
  // NaN (past the end) fails both comparisons, so it lands in -1 too.
  if (a >= 0 && a <= 9 && b >= 0 && b <= 9) return a * 10 + b;
  return -1;
}

const DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Whether s[i, e) is an RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS[.f+](Z|±HH:MM)`
 * with calendar-valid day (leap years included), hour 0-23, minute and
 * second 0-59 (Go's time.Parse rejects leap second 60, so do we). Any
 * number of fraction digits is accepted; clients send nanoseconds.
 */
export function isDate(s: string, i: number, e: number): boolean {
  if (e - i < 20) return false;
  const y1 = d2(s, i);
  const y2 = d2(s, i + 2);
  const mo = d2(s, i + 5);
  const d = d2(s, i + 8);
  const h = d2(s, i + 11);
  const mi = d2(s, i + 14);
  const se = d2(s, i + 17);
  if (y1 < 0 || y2 < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59) {
    return false;
  }
  const t = s.charCodeAt(i + 10);
  if (s.charCodeAt(i + 4) !== 45 || s.charCodeAt(i + 7) !== 45 || (t !== 84 && t !== 116)) return false;
  if (s.charCodeAt(i + 13) !== 58 || s.charCodeAt(i + 16) !== 58) return false;
  if (d > 28) {
    const year = y1 * 100 + y2;
    const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
    if (d > (mo === 2 && leap ? 29 : (DAYS[mo] ?? 0))) return false;
  }
  let p = i + 19;
  let c = s.charCodeAt(p);
  if (c === 46 /* . */) {
    const f = ++p;
    while (p < e && (c = s.charCodeAt(p)) >= 48 && c <= 57) p++;
    if (p === f || p >= e) return false;
    c = s.charCodeAt(p);
  }
  if (c === 90 || c === 122) return p + 1 === e; // Z / z
  if (c !== 43 && c !== 45) return false;
  if (p + 6 !== e || s.charCodeAt(p + 3) !== 58) return false;
  const oh = d2(s, p + 1);
  const om = d2(s, p + 4);
  return oh >= 0 && oh <= 23 && om >= 0 && om <= 59;
}

/** Whether s[i, e) is `true` or `false`. */
export function isBoolean(s: string, i: number, e: number): boolean {
  const n = e - i;
  if (n === 4) return s.startsWith('true', i);
  if (n === 5) return s.startsWith('false', i);
  return false;
}

/** A validated long's text as a number, or a bigint beyond ±(2^53-1). */
export function decodeLong(text: string): number | bigint {
  const n = Number(text);
  if (Number.isSafeInteger(n)) return n === 0 ? 0 : n; // no -0
  return BigInt(text);
}

/** Quotes client input for an error message, cut to 64 characters. */
export function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s);
}
