/**
 * Stored line -> wire line for another escape mode: what an export that
 * writes the point text format (or anything handing stored lines to a
 * reader with its own escape rules) calls. Decoding a stored line into a
 * point is decodeLine (points.ts), which follows the repo's mode.
 */
import { K_JSONSTRING, K_STRING, type CompiledSchema } from './compiled.ts';
import { escapeJson, escapeText, unescapeJson, unescapeText, type EscapeMode } from './escapes.ts';

/**
 * Re-encodes a line stored in a repo of compiled schema `from` (whose
 * `escapes` is the repo's mode) so that a reader decoding with mode `to`
 * gets the values decodeLine(line, from) gives. Only string and jsonstring
 * values (and keys that left the schema, which decode as text) can change:
 * numbers, dates, booleans, arrays and maps are the same in every mode. The
 * same mode returns the line itself, without a copy.
 *
 * The official modes cannot carry every string (see escapes.ts escapeText):
 * a TAB or LF bound for a `verbatim` reader arrives as `\t` / `\n`, as it
 * would from an official client.
 */
export function transcodeLine(line: string, from: CompiledSchema, to: EscapeMode): string {
  const mode = from.escapes;
  if (mode === to) return line;
  let out = '';
  let pos = 0;
  const len = line.length;
  while (pos < len) {
    let tab = line.indexOf('\t', pos);
    if (tab < 0) tab = len;
    const eq = line.indexOf('=', pos);
    if (eq > pos && eq < tab) {
      const f = from.byKey.get(line.slice(pos, eq));
      const v = line.slice(eq + 1, tab);
      let text = v;
      if (f === undefined || f.kind === K_STRING) text = escapeText(unescapeText(v, mode), to);
      else if (f.kind === K_JSONSTRING) text = escapeJson(unescapeJson(v, mode), to);
      out += `${out === '' ? '' : '\t'}${line.slice(pos, eq + 1)}${text}`;
    }
    pos = tab + 1;
  }
  return out;
}
