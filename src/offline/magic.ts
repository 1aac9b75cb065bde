/**
 * Magic variables: `$(name)` in file filters, SQL, export key prefixes and
 * hdfs paths, replaced as plain text before use. System variables come from
 * the batch time in the configured time zone; job params and user variables
 * (`/v2/variables`) add to them. The reference's `$yyyy-$mm-$dd` spelling is
 * an alias of `$(year)-$(mon)-$(day)`.
 */
import { ApiError } from '../errors.ts';
import type { VariableRow } from './store.ts';

export const SYSTEM_VARIABLES = ['year', 'mon', 'day', 'hour', 'min', 'sec', 'date', 'now'] as const;
const SYSTEM = new Set<string>(SYSTEM_VARIABLES);

const VAR_RE = /\$\(\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)/g;
/** The reference's aliases; longest first so `$yyyy` is not read as `$yy`. */
const ALIASES: Array<[RegExp, string]> = [
  [/\$yyyy/g, '$(year)'],
  [/\$MM/g, '$(mon)'],
  [/\$mm/g, '$(mon)'],
  [/\$dd/g, '$(day)'],
  [/\$HH/g, '$(hour)'],
  [/\$hh/g, '$(hour)'],
];

export function isSystemVariable(name: string): boolean {
  return SYSTEM.has(name);
}

/** Text with the reference's `$yyyy`-style aliases rewritten to `$(name)`. */
export function normalizeAliases(text: string): string {
  let t = text;
  for (const [re, to] of ALIASES) t = t.replace(re, to);
  return t;
}

/** Names of the variables `text` uses (aliases included). */
export function variablesIn(text: string): string[] {
  return [...normalizeAliases(text).matchAll(VAR_RE)].map((m) => m[1] as string);
}

/** One formatter per time zone: creating one costs ~0.25 ms of CPU, once per run before (profile, decision 016). */
const formatters = new Map<string, Intl.DateTimeFormat>();

/** Calendar fields of an instant in an IANA time zone. */
export function zonedParts(ms: number, timeZone: string): Record<'year' | 'mon' | 'day' | 'hour' | 'min' | 'sec', string> & { ms: string } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(new Date(ms))) p[part.type] = part.value;
  return {
    year: (p.year ?? '').padStart(4, '0'), mon: p.month ?? '', day: p.day ?? '', hour: p.hour ?? '', min: p.minute ?? '', sec: p.second ?? '',
    ms: String(((ms % 1000) + 1000) % 1000).padStart(3, '0'),
  };
}

/**
 * Formats an instant with a Java-style pattern (yyyy MM dd HH mm ss SSS;
 * text in single quotes is literal; other letters are refused by checkFormat).
 */
export function formatTime(ms: number, pattern: string, timeZone: string): string {
  const p = zonedParts(ms, timeZone);
  const tokens: Record<string, string> = { yyyy: p.year, yy: p.year.slice(-2), MM: p.mon, dd: p.day, HH: p.hour, mm: p.min, ss: p.sec, SSS: p.ms };
  return pattern.replace(/'([^']*)'|yyyy|yy|MM|dd|HH|mm|ss|SSS/g, (m, quoted: string | undefined) => (quoted !== undefined ? quoted : tokens[m] ?? m));
}

/** Checks a Java-style date pattern; E18658 for letters other than y M d H m s S. */
export function checkFormat(format: string): void {
  const bare = format.replace(/'[^']*'/g, '');
  const bad = /[a-zA-Z]/.exec(bare.replace(/yyyy|yy|MM|dd|HH|mm|ss|SSS/g, ''));
  if (!format || bad) throw new ApiError('E18658', `format "${format}" may use only yyyy yy MM dd HH mm ss SSS and quoted text`);
}

const OFFSET_RE = /^\$\(now\)\s*(?:([+-])\s*(\d+)\s*([dhms]))?\s*$/;
const UNIT_MS: Record<string, number> = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 };

/** Checks a time variable's value (`$(now)`, `$(now)-5h`, `$(now) - 5d`); E18658 otherwise. */
export function checkTimeValue(value: string): void {
  if (!OFFSET_RE.test(value)) throw new ApiError('E18658', `value "${value.slice(0, 80)}" must be $(now) with an optional offset such as $(now)-5h (units d, h, m, s)`);
}

function timeValue(value: string, batchMs: number): number {
  const m = OFFSET_RE.exec(value);
  if (!m || !m[1]) return batchMs;
  const delta = Number(m[2]) * (UNIT_MS[m[3] ?? 's'] ?? 1000);
  return m[1] === '-' ? batchMs - delta : batchMs + delta;
}

/** Every variable's value at one batch time. */
export function variableValues(batchMs: number, timeZone: string, user: VariableRow[], params: Record<string, string>): Map<string, string> {
  const p = zonedParts(batchMs, timeZone);
  const vars = new Map<string, string>([
    ['year', p.year], ['mon', p.mon], ['day', p.day], ['hour', p.hour], ['min', p.min], ['sec', p.sec],
    ['date', `${p.year}-${p.mon}-${p.day}`], ['now', `${p.year}-${p.mon}-${p.day} ${p.hour}:${p.min}:${p.sec}`],
  ]);
  for (const v of user) vars.set(v.name, v.type === 'time' ? formatTime(timeValue(v.value, batchMs), v.format, timeZone) : v.value);
  for (const [k, v] of Object.entries(params)) vars.set(k, v);
  return vars;
}

/** `text` with every variable replaced; an unknown name throws E18657 naming it. */
export function expand(text: string, vars: Map<string, string>): string {
  return normalizeAliases(text).replace(VAR_RE, (_m, name: string) => {
    const v = vars.get(name);
    if (v === undefined) throw new ApiError('E18657', `$(${name}) is not a system variable, job param or user variable`);
    return v;
  });
}

/** Throws E18657 for the first variable of `texts` that is not in `known` (system variables are always known). */
export function checkDefined(texts: string[], known: Set<string>, where: string): void {
  for (const t of texts) {
    for (const name of variablesIn(t)) {
      if (!SYSTEM.has(name) && !known.has(name)) throw new ApiError('E18657', `$(${name}) in ${where} is not a system variable, job param or user variable`);
    }
  }
}
