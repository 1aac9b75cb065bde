/**
 * One JSON object per point, on one line. Longs beyond ±(2^53-1) decode as
 * bigint and are written as exact JSON numbers (JSON.stringify cannot, and
 * Node 20 lacks JSON.rawJSON), so they go through a marker string.
 */
export function jsonLine(point: Record<string, unknown>): string {
  let big = false;
  const text = JSON.stringify(point, (_k, v: unknown) => {
    if (typeof v !== 'bigint') return v;
    big = true;
    return `\u0000big${v.toString()}`;
  });
  return big ? text.replace(/"\\u0000big(-?\d+)"/g, '$1') : text;
}
