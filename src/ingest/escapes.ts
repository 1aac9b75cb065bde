/**
 * Escape modes of the point wire format: how a repo's string values are
 * escaped on the wire, fixed per repo at creation by `options.unescapeLine`
 * (see docs/api.md "Escapes" and docs/decisions/009-escape-modes.md).
 *
 * | mode        | options.unescapeLine | decoded on read                              |
 * | ----------- | -------------------- | -------------------------------------------- |
 * | `reference` | absent               | `\t` `\n` `\r` `\\` (the reference's escapes) |
 * | `unescape`  | true                 | `\t` `\n`; every other backslash kept         |
 * | `verbatim`  | false                | nothing: values are returned as sent          |
 *
 * Encoders write the inverse: the reference mode escapes TAB, LF, CR and
 * backslash; the official modes escape only TAB and LF, as the official
 * clients do, so a value read back and pushed again by an official client
 * is stored as the same bytes.
 *
 * jsonstring values are JSON text in every mode: backslashes inside JSON
 * strings are JSON's own and are never touched (decoding them corrupted the
 * document). Outside JSON strings `\t` `\n` `\r` stand for the whitespace of
 * a pretty-printed document (and `\\` for a backslash in the reference mode).
 */
import { ApiError } from '../errors.ts';

/** How a repo's values are escaped on the wire. */
export type EscapeMode = 'reference' | 'unescape' | 'verbatim';

/** The mode of repos created without `options.unescapeLine` (and of every repo created before modes existed). */
export const REFERENCE_MODE: EscapeMode = 'reference';

/**
 * The escape mode a repo's `options` select: `unescapeLine` true ->
 * `unescape`, false -> `verbatim`, absent or null (or no options) ->
 * `reference`. The strings "true"/"false" count as booleans, as loosely
 * typed clients send them.
 *
 * @throws ApiError E18007 when `options` is not an object or `unescapeLine` not a boolean
 */
export function escapeModeOf(options: unknown): EscapeMode {
  if (options === undefined || options === null) return REFERENCE_MODE;
  if (typeof options !== 'object' || Array.isArray(options)) throw new ApiError('E18007', 'options must be an object');
  const u = (options as Record<string, unknown>)['unescapeLine'];
  if (u === undefined || u === null) return REFERENCE_MODE;
  if (u === true || u === 'true') return 'unescape';
  if (u === false || u === 'false') return 'verbatim';
  throw new ApiError('E18007', 'options.unescapeLine must be a boolean');
}

/**
 * Decodes a string value as stored in a repo of `mode`. Never throws: an
 * escape the mode does not know, and a trailing lone backslash, are kept.
 */
export function unescapeText(s: string, mode: EscapeMode = REFERENCE_MODE): string {
  if (mode === 'verbatim') return s;
  let bs = s.indexOf('\\');
  if (bs < 0) return s;
  const all = mode === 'reference';
  let out = '';
  let from = 0;
  while (bs >= 0) {
    const c = s.charCodeAt(bs + 1);
    let rep: string;
    if (c === 116) rep = '\t';
    else if (c === 110) rep = '\n';
    else if (all && c === 114) rep = '\r';
    else if (all && c === 92) rep = '\\';
    else {
      bs = s.indexOf('\\', bs + 1);
      continue;
    }
    out += s.slice(from, bs) + rep;
    from = bs + 2;
    bs = s.indexOf('\\', from);
  }
  return out + s.slice(from);
}

const REF_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
const REF_NEEDS = /[\\\t\n\r]/;
const REF_ALL = /[\\\t\n\r]/g;
const TAB_LF_NEEDS = /[\t\n]/;
const TAB_LF_ALL = /[\t\n]/g;

/**
 * Escapes a string value for a repo of `mode` (the inverse of unescapeText).
 * Exact for every string in the reference mode. In the official modes, as
 * with the official clients, a TAB or LF is sent as `\t` / `\n`: a
 * `verbatim` repo then keeps those two characters, and in an `unescape`
 * repo a value holding the two characters `\t` or `\n` reads back as TAB or
 * LF (those modes have no escape for a backslash).
 */
export function escapeText(s: string, mode: EscapeMode = REFERENCE_MODE): string {
  if (mode === 'reference') return REF_NEEDS.test(s) ? s.replace(REF_ALL, (ch) => REF_ESCAPES[ch] ?? ch) : s;
  return TAB_LF_NEEDS.test(s) ? s.replace(TAB_LF_ALL, (ch) => (ch === '\t' ? '\\t' : '\\n')) : s;
}

/**
 * Decodes a jsonstring value as stored in a repo of `mode`: JSON strings are
 * copied as they are; outside them `\t` `\n` `\r` become TAB, LF, CR and, in
 * the reference mode, `\\` a backslash. Never throws.
 */
export function unescapeJson(s: string, mode: EscapeMode = REFERENCE_MODE): string {
  let bs = s.indexOf('\\');
  if (bs < 0) return s;
  const all = mode === 'reference';
  let out = '';
  let from = 0;
  let inStr = false;
  // Start scanning where string state matters: the first quote or backslash.
  const q = s.indexOf('"');
  for (let i = q >= 0 && q < bs ? q : bs; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (inStr) {
      if (c === 34) inStr = false;
      else if (c === 92) i++; // JSON's own escape: the next character is part of it
      continue;
    }
    if (c === 34) {
      inStr = true;
      continue;
    }
    if (c !== 92) continue;
    const d = s.charCodeAt(i + 1);
    const rep = d === 116 ? '\t' : d === 110 ? '\n' : d === 114 ? '\r' : all && d === 92 ? '\\' : '';
    if (rep === '') continue;
    out += s.slice(from, i) + rep;
    from = i + 2;
    i++;
  }
  return from === 0 ? s : out + s.slice(from);
}

const JSON_NEEDS = /[\\\t\n\r]/;

/**
 * Escapes a jsonstring value for a repo of `mode`: the inverse of
 * unescapeJson for any text whose JSON strings hold no raw TAB or LF (every
 * valid JSON document, and every value unescapeJson returns). A raw TAB or
 * LF inside a JSON string, which JSON does not allow and no stored value
 * holds, is written as JSON's `\t` / `\n`; a raw CR there is kept (stored
 * values may hold one). See lineEnd for a CR ending the line.
 */
export function escapeJson(s: string, mode: EscapeMode = REFERENCE_MODE): string {
  if (!JSON_NEEDS.test(s)) return s;
  const all = mode === 'reference';
  let out = '';
  let from = 0;
  let inStr = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let rep: string;
    if (c === 9) rep = '\\t';
    else if (c === 10) rep = '\\n';
    else if (c === 13) {
      if (inStr) continue;
      rep = '\\r';
    } else if (c === 34) {
      inStr = !inStr;
      continue;
    } else if (c === 92) {
      if (inStr) {
        // JSON's own escape: the next character cannot end the string.
        const d = s.charCodeAt(i + 1);
        if (d !== 9 && d !== 10) i++;
        continue;
      }
      if (!all) continue;
      rep = '\\\\';
    } else continue;
    out += s.slice(from, i) + rep;
    from = i + 1;
  }
  return out + s.slice(from);
}

/**
 * What a line encoded for a repo of `mode` needs after its last value: a
 * raw CR can end a value only inside a jsonstring whose JSON string is left
 * open, and the reference mode takes a CR ending a line for CRLF, so such a
 * line gets an empty TAB-separated field after it (parsePoints skips empty
 * fields). '' for every other line.
 */
export function lineEnd(lastChar: number, mode: EscapeMode): string {
  return lastChar === 13 && mode === 'reference' ? '\t' : '';
}
