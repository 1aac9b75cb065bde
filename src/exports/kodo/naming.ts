/**
 * Object keys of kodo export files:
 *
 *   <base>[_]<tag>_<first>-<last>.<ext>
 *
 * base  keyPrefix with its magic variables evaluated, or, without variables,
 *       keyPrefix + a `yyyy-MM-dd-HH-mm-ss` timestamp (the reference's rule);
 *       the time is the append time of the file's first record, in
 *       config.timezone, so a redelivery after a crash computes the same key.
 * tag   8 hex digits identifying the export (account, repo incarnation,
 *       export name): two exports writing the same bucket and prefix never
 *       overwrite each other's files, and retention finds its own files.
 * first, last  the source offsets of the file's first and last record.
 * '_' separates base and tag unless base is empty or ends with '/'.
 */
import { createHash } from 'node:crypto';

/** The reference's magic variables and their widths. */
const VARS = ['year', 'mon', 'day', 'hour', 'min', 'sec'] as const;
type Var = (typeof VARS)[number];
const VAR_RE = /\$\(([^)]*)\)/g;

const formatters = new Map<string, Intl.DateTimeFormat>();

/** Calendar fields of `ms` in `timeZone`, zero-padded. */
export function timeParts(ms: number, timeZone: string): Record<Var, string> {
  let fmt = formatters.get(timeZone);
  if (!fmt) {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    formatters.set(timeZone, fmt);
  }
  const p: Record<string, string> = {};
  for (const part of fmt.formatToParts(ms)) p[part.type] = part.value;
  return { year: (p.year ?? '').padStart(4, '0'), mon: p.month ?? '', day: p.day ?? '', hour: p.hour ?? '', min: p.minute ?? '', sec: p.second ?? '' };
}

/** Names of `$(...)` variables in `prefix` that are not magic variables. */
export function unknownVariables(prefix: string): string[] {
  return [...prefix.matchAll(VAR_RE)].map((m) => m[1] as string).filter((v) => !(VARS as readonly string[]).includes(v));
}

/** Whether `prefix` uses any magic variable. */
export function hasVariables(prefix: string): boolean {
  return [...prefix.matchAll(VAR_RE)].length > 0;
}

/** The part of `prefix` before its first variable: every key of the export starts with it. */
export function staticPart(prefix: string): string {
  const i = prefix.indexOf('$(');
  return i < 0 ? prefix : prefix.slice(0, i);
}

/** `keyPrefix` evaluated at `ms` (see the module comment). */
export function evaluateBase(prefix: string, ms: number, timeZone: string): string {
  const t = timeParts(ms, timeZone);
  if (!hasVariables(prefix)) return `${prefix}${t.year}-${t.mon}-${t.day}-${t.hour}-${t.min}-${t.sec}`;
  return prefix.replace(VAR_RE, (_m, name: string) => t[name as Var]);
}

/** The export's tag: 8 hex digits of a hash of account, repo name and incarnation, export name. */
export function exportTag(account: string, repo: { name: string; uid: string }, exportName: string): string {
  return createHash('sha256').update(`${account}\0${repo.name}.${repo.uid}\0${exportName}`).digest('hex').slice(0, 8);
}

/** The key stem before `<first>-`: used to find a file a previous run already published. */
export function keyStem(base: string, tag: string): string {
  return base === '' || base.endsWith('/') ? `${base}${tag}_` : `${base}_${tag}_`;
}

/** The full key of a file holding offsets [first, last]. */
export function fileKey(base: string, tag: string, first: number, last: number, ext: string): string {
  return `${keyStem(base, tag)}${first}-${last}.${ext}`;
}

/** The last offset of an existing key `<stem><first>-<last>.<ext>`, or undefined when `key` is no such file. */
export function lastOffsetOf(key: string, stem: string, first: number, ext: string): number | undefined {
  const head = `${stem}${first}-`;
  const tail = `.${ext}`;
  if (!key.startsWith(head) || !key.endsWith(tail)) return undefined;
  const digits = key.slice(head.length, key.length - tail.length);
  return /^\d{1,15}$/.test(digits) ? Number(digits) : undefined;
}

/** Whether `key` is one of this export's files (retention deletes only those). */
export function isExportFile(key: string, tag: string, ext: string): boolean {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const at = name.lastIndexOf(`${tag}_`);
  if (at < 0 || (at > 0 && name[at - 1] !== '_') || !name.endsWith(`.${ext}`)) return false;
  return /^\d+-\d+$/.test(name.slice(at + tag.length + 1, name.length - ext.length - 1));
}
