/**
 * Schedules of offline jobs as "the next batch time after t": crontab
 * expressions through croner (Quartz 6/7-field with `?`, and 5-field), and
 * loop intervals.
 */
import { Cron } from 'croner';
import { ApiError } from '../errors.ts';

/** Highest value of each field, for Quartz `a/b` steps, which croner spells `a-max/b`. */
const MAX_6 = [59, 59, 23, 31, 12, 7, 2099];
const MAX_5 = [59, 23, 31, 12, 7];

/** A parsed crontab: next fire time strictly after a given instant. */
export interface CronSchedule {
  next(afterMs: number): number | undefined;
}

/** Parsed schedules by time zone and expression: jobs share a handful of expressions, and ticks re-read them. */
const parsed = new Map<string, CronSchedule>();
const MAX_PARSED = 10_000;

/**
 * Parses a crontab expression; E18614 with croner's reason when it is not
 * one. Memoised: a parse costs ~0.15 ms, paid by each job at every tick
 * otherwise, and a schedule remembers its last answer, since the jobs
 * sharing an expression ask for the same instant at a tick.
 */
export function parseCrontab(expr: string, timeZone: string): CronSchedule {
  const k = `${timeZone}\u0000${expr}`;
  let s = parsed.get(k);
  if (!s) {
    s = parseUncached(expr, timeZone);
    if (parsed.size >= MAX_PARSED) parsed.clear();
    parsed.set(k, s);
  }
  return s;
}

function parseUncached(expr: string, timeZone: string): CronSchedule {
  const fields = expr.trim().split(/\s+/);
  if (fields.length < 5 || fields.length > 7) throw new ApiError('E18614', `crontab "${expr}" must have 5, 6 (Quartz, with seconds) or 7 (with year) fields`);
  const max = fields.length === 5 ? MAX_5 : MAX_6;
  const norm = fields.map((f, i) => f.replace(/(^|,)(\d+)\/(\d+)/g, (_m, lead: string, a: string, b: string) => `${lead}${a}-${max[i] ?? 59}/${b}`));
  let cron: Cron;
  try {
    // Quartz numbers weekdays 1 (Sunday) .. 7; classic 5-field cron 0 .. 6.
    cron = new Cron(norm.join(' '), { paused: true, timezone: timeZone, alternativeWeekdays: fields.length >= 6 });
  } catch (err) {
    throw new ApiError('E18614', `crontab "${expr}": ${(err as Error).message}`);
  }
  if (!cron.nextRun(new Date())) throw new ApiError('E18614', `crontab "${expr}" never fires`);
  let lastAfter = NaN;
  let last: number | undefined;
  return {
    next: (after) => {
      if (after !== lastAfter) {
        last = cron.nextRun(new Date(after))?.getTime();
        lastAfter = after;
      }
      return last;
    },
  };
}

/** Parses a loop interval (`5m`, `1h`, `30s`; '' or `0` = back to back) to ms. */
export function parseLoop(v: unknown): number {
  if (v === undefined || v === null || v === '' || v === 0 || v === '0') return 0;
  const m = typeof v === 'string' ? /^(\d+)\s*(s|m|h|d)$/.exec(v.trim()) : null;
  if (!m) throw new ApiError('E18614', `loop "${String(v)}" must be a number with unit s, m, h or d (e.g. 5m, 1h), or 0`);
  return Number(m[1]) * ({ s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as Record<string, number>)[m[2] as string]!;
}
