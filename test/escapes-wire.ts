/**
 * The bytes the official clients put on the wire, reproduced from reading
 * qiniu/pandora-go-sdk (pipeline/models.go: PointField.Bytes,
 * escapeBytesField, Points.Buffer; schemafree.go: nested maps typed
 * jsonstring and sent as json.Marshal text) and qiniu/logkit
 * (sender/pandora: sends through that SDK, `pandora_unescape` -> repo
 * `options.unescapeLine`, default false). Written here from their
 * behaviour, not copied.
 */

/** What the SDK does to every value: TAB -> `\t`, LF -> `\n`; nothing else (no CR, no backslash). */
export function sdkEscape(s: string): string {
  return s.replaceAll('\t', '\\t').replaceAll('\n', '\\n');
}

/** A point as the SDK renders it: `key=value` fields joined by TAB, values SDK-escaped. */
export function sdkLine(fields: ReadonlyArray<readonly [string, string]>): string {
  return fields.map(([k, v]) => `${k}=${sdkEscape(v)}`).join('\t');
}

/** What a client following the reference does to every value: `\\`, TAB, LF, CR escaped. */
export function referenceLine(fields: ReadonlyArray<readonly [string, string]>): string {
  const esc = (v: string) => v.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c] ?? c);
  return fields.map(([k, v]) => `${k}=${esc(v)}`).join('\t');
}

/** A request body as Points.Buffer writes it: points joined by LF, no trailing newline. */
export function sdkBody(points: ReadonlyArray<ReadonlyArray<readonly [string, string]>>): string {
  return points.map(sdkLine).join('\n');
}

/** Go's json.Marshal of a string: short escapes for `"` `\` LF CR TAB, \u00XX for other controls, HTML and U+2028/2029 escaped. */
function goString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || ch === '<' || ch === '>' || ch === '&' || c === 0x2028 || c === 0x2029) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}

/** JSON values the tests marshal: integers only, so Go and JS print numbers alike. */
export type GoJson = null | boolean | number | string | GoJson[] | { [k: string]: GoJson };

/**
 * Go's json.Marshal text of a decoded JSON value (map keys sorted, as Go
 * sorts map[string]interface{} keys; the tests keep keys in the BMP, where
 * UTF-8 byte order and UTF-16 order agree).
 */
export function goMarshal(v: GoJson): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean' || typeof v === 'number') return String(v);
  if (typeof v === 'string') return goString(v);
  if (Array.isArray(v)) return `[${v.map(goMarshal).join(',')}]`;
  const keys = Object.keys(v).sort();
  return `{${keys.map((k) => `${goString(k)}:${goMarshal(v[k]!)}`).join(',')}}`;
}
