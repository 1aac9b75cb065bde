import { randomBytes } from 'node:crypto';
import { ApiError } from '../errors.ts';
import type { LogRepo } from './repo.ts';
import type { PageState, View } from './search.ts';

/** A search being paged through with scroll (official-extensions 3.5); pages are read by query workers. */
export interface ScrollState extends PageState {
  account: string;
  repo: LogRepo;
  total: number;
  view: View;
  expires: number;
  /** A page of this scroll is being read (pages of one scroll are read one at a time). */
  busy?: boolean;
}

const MAX_PER_ACCOUNT = 100;
const MAX_KEEPALIVE = 3_600_000;
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Keep-alive like `1m`, `30s` (at most 1 h); E8201 otherwise. */
export function parseKeepAlive(v: string): number {
  const m = /^(\d{1,7})(ms|s|m|h)$/.exec(v);
  if (!m) throw new ApiError('E8201', `scroll ${JSON.stringify(v)} must look like 1m, 30s or 1h`);
  return Math.min(Number(m[1]) * UNITS[m[2]!]!, MAX_KEEPALIVE);
}

/** Open scrolls, by id; expired ones are swept on access and by the retention timer. */
export class ScrollCache {
  private readonly map = new Map<string, ScrollState>();

  open(state: ScrollState, now: number): string {
    this.sweep(now);
    let n = 0;
    for (const s of this.map.values()) if (s.account === state.account) n++;
    if (n >= MAX_PER_ACCOUNT) throw new ApiError('E8113', `at most ${MAX_PER_ACCOUNT} open scrolls per account`);
    const id = randomBytes(16).toString('hex');
    this.map.set(id, state);
    return id;
  }

  /** The scroll of this account and repo, or E8211. */
  take(id: string, account: string, repo: LogRepo, now: number): ScrollState {
    this.sweep(now);
    const s = this.map.get(id);
    if (!s || s.account !== account || s.repo !== repo) throw new ApiError('E8211', 'scroll_id does not exist, expired, or belongs to another repo');
    return s;
  }

  close(id: string): void {
    this.map.delete(id);
  }

  dropRepo(repo: LogRepo): void {
    for (const [id, s] of this.map) if (s.repo === repo) this.map.delete(id);
  }

  sweep(now: number): void {
    for (const [id, s] of this.map) if (s.expires <= now) this.map.delete(id);
  }
}
