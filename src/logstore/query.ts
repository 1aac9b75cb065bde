import lucene from 'lucene';
import { ApiError } from '../errors.ts';
import { parseDate } from './convert.ts';
import { ALL_FIELD, type Column, type LogRepo } from './repo.ts';

/**
 * A query compiled to a set of document ids: a compound SELECT of `id`s
 * (FTS5 matches, index lookups, INTERSECT / UNION / EXCEPT), so counting
 * never touches the documents (decision 015). `set` is undefined when the
 * query matches everything. Every user value is a bound parameter.
 */
export interface CompiledQuery {
  set: string | undefined;
  params: Record<string, unknown>;
  /** Searched words per field path ('*' = any field), for highlighting. */
  terms: Map<string, string[]>;
}

interface TermNode {
  field: string;
  term: string;
  quoted: boolean;
  regex: boolean;
  proximity?: number | null;
  prefix?: string | null;
  termLocation?: { start: { offset: number } } | null;
}
interface RangeNode { field: string; term_min: string; term_max: string; inclusive: 'both' | 'left' | 'right' | 'none' }
interface AstNode { left?: Ast; right?: Ast; operator?: string; start?: string; field?: string }
type Ast = AstNode | TermNode | RangeNode;

const DAY = 86_400_000;
const IMPLICIT = '<implicit>';
const SEGMENT = /^[A-Za-z0-9_]+$/;
/** Longest query string (longer ones are E8202). */
const MAX_QUERY = 4096;
/** Calls the time-limit check on about one scanned row in 1024 (a JS call per row would cost more than the scan). */
export const DEADLINE = '((d.id & 1023) != 0 OR pl_deadline())';
const ALL = 'SELECT id FROM docs';
const sub = (set: string): string => `SELECT id FROM (${set})`;
const combine = (op: 'INTERSECT' | 'UNION' | 'EXCEPT', sets: string[]): string => sets.map(sub).join(` ${op} `);
/** Documents matching a condition on `docs d` (answered from an index where there is one). */
const rows = (expr: string): string => `SELECT d.id AS id FROM docs d WHERE ${DEADLINE} AND ${expr}`;

const bad = (msg: string, at?: number): ApiError => new ApiError('E8202', at === undefined ? msg : `at offset ${at}: ${msg}`);
const unescape = (s: string): string => s.replace(/\\(.)/g, '$1');
const ftsString = (s: string): string => `"${s.replace(/"/g, '""')}"`;
const hasWildcard = (s: string): boolean => /(^|[^\\])[*?]/.test(s);
/** Lucene wildcard -> GLOB pattern (escaping GLOB's own class syntax). */
const glob = (s: string): string => s.replace(/\[/g, '[[]').replace(/\\([*?])/g, '[$1]');

/**
 * Compiles a Lucene query string (official-extensions 3.3) for a repo.
 * Syntax errors are E8202 with the offset; fields are checked against the
 * schema; FTS expressions, values and JSON paths are bound as named
 * parameters (`@pN`; callers pass the object after their own `?` values).
 */
export function compileQuery(q: string, repo: LogRepo): CompiledQuery {
  const out: CompiledQuery = { set: undefined, params: {}, terms: new Map() };
  const text = q.trim();
  if (text === '' || text === '*' || text === '*:*') return out;
  if (text.length > MAX_QUERY) throw bad(`a query is at most ${MAX_QUERY} characters`);
  let ast: Ast;
  try {
    ast = lucene.parse(text) as Ast;
  } catch (err) {
    if (err instanceof RangeError) throw bad('the query nests too deeply');
    const e = err as { message: string; location?: { start: { offset: number } } };
    throw bad(e.message, e.location?.start.offset);
  }
  out.set = new Compiler(repo, out).node(ast);
  return out;
}

class Compiler {
  /** Sets that are a scan or range condition on `docs d`, by their SQL: their condition. */
  private readonly filters = new Map<string, string>();

  constructor(private readonly repo: LogRepo, private readonly out: CompiledQuery) {}

  /**
   * A condition no index answers in id order (ranges, comparisons, inner
   * wildcards, dynamic keys): alone it scans, and in an AND it filters the
   * other clauses' matches (see and()).
   */
  private filter(expr: string): string {
    const set = rows(expr);
    this.filters.set(set, expr);
    return set;
  }

  /**
   * The intersection of sets. INTERSECT merges id-ordered inputs, so for a
   * range SQLite walks the whole docs table in id order (1M rows read for
   * `request:login AND status:>=400`): instead, ranges and scans are checked
   * on the rows of the other clauses' matches only (decision 015, amendment).
   */
  private and(sets: string[]): string {
    const conds = sets.filter((x) => this.filters.has(x)).map((x) => this.filters.get(x)!);
    const others = sets.filter((x) => !this.filters.has(x));
    if (conds.length === 0) return combine('INTERSECT', others);
    if (others.length === 0) return this.filter(conds.join(' AND '));
    const base = others.length === 1 ? others[0]! : combine('INTERSECT', others);
    return `SELECT d.id AS id FROM (${base}) m CROSS JOIN docs d ON d.id = m.id WHERE ${DEADLINE} AND ${conds.join(' AND ')}`;
  }

  /** Named parameters, so clauses may be reordered after compiling. */
  private bind(v: unknown): string {
    const name = `p${Object.keys(this.out.params).length}`;
    this.out.params[name] = v;
    return `@${name}`;
  }

  /** The id set of a node. */
  node(n: Ast): string {
    // The parser keeps a leading -/+ in the field name (`-host:x`): it is the prefix operator.
    const sign = 'field' in n && typeof n.field === 'string' && /^[-+]/.test(n.field) ? n.field[0] : undefined;
    if (sign) n = { ...n, field: n.field!.slice(1) } as Ast;
    if ('term_min' in n) return sign === '-' ? combine('EXCEPT', [ALL, rows(this.range(n))]) : this.filter(this.range(n));
    if ('term' in n) {
      const set = this.term(n);
      return n.prefix === '-' || sign === '-' ? combine('EXCEPT', [ALL, set]) : set;
    }
    const a = n as AstNode;
    if (!a.left) return ALL;
    if (a.operator === IMPLICIT && a.start !== 'NOT') return this.clauses(a);
    let left = this.node(a.left);
    if (a.start === 'NOT') left = combine('EXCEPT', [ALL, left]);
    if (!a.right) return left;
    const right = this.node(a.right);
    switch (a.operator) {
      case 'AND': case '&&': return this.and([left, right]);
      case 'AND NOT': return combine('EXCEPT', [left, right]);
      case 'OR NOT': return combine('UNION', [left, combine('EXCEPT', [ALL, right])]);
      default: return combine('UNION', [left, right]); // OR, ||, implicit: Lucene's default operator
    }
  }

  /**
   * A chain of clauses without operators, with Lucene's meaning: `+x` must
   * match, `-x` must not, plain clauses are optional when a `+` clause
   * exists and otherwise at least one of them must match.
   */
  private clauses(a: AstNode): string {
    const list: Ast[] = [];
    let cur: Ast | undefined = a;
    while (cur && !('term' in cur) && !('term_min' in cur) && (cur as AstNode).operator === IMPLICIT && (cur as AstNode).start !== 'NOT') {
      list.push((cur as AstNode).left!);
      cur = (cur as AstNode).right;
    }
    if (cur) list.push(cur);
    const must: string[] = [];
    const not: string[] = [];
    const should: string[] = [];
    for (const c of list) {
      const sign = signOf(c);
      const sql = this.node(sign ? strip(c) : c);
      (sign === '+' ? must : sign === '-' ? not : should).push(sql);
    }
    const base = must.length > 0 ? this.and(must) : should.length > 0 ? combine('UNION', should) : ALL;
    return not.length > 0 ? combine('EXCEPT', [base, ...not]) : base;
  }

  /** The columns a field name searches; default field = every analyzed field (or _all with fullText). */
  private columns(field: string, at?: number): Column[] | { json: string } {
    const cols = this.repo.columns;
    if (field === IMPLICIT || field === '*') {
      const all = cols.find((c) => c.path === ALL_FIELD);
      if (all) return [all];
      return cols.filter((c) => c.type === 'string' && (c.fts || c.keyword));
    }
    const hit = cols.find((c) => c.path === field);
    if (hit) {
      if (hit.type === 'string' && !hit.fts && !hit.keyword) throw bad(`field "${field}" is not searchable (analyzer no)`, at);
      return [hit];
    }
    const dyn = cols.find((c) => c.dynamic && field.startsWith(`${c.path}.`));
    if (dyn && field.split('.').every((s) => SEGMENT.test(s))) return { json: `$.${field}` };
    throw bad(`field "${field}" is not in the repo schema`, at);
  }

  private noteTerm(field: string, word: string): void {
    const key = field === IMPLICIT ? '*' : field;
    this.out.terms.set(key, [...(this.out.terms.get(key) ?? []), word.toLowerCase()]);
  }

  private term(n: TermNode): string {
    const at = n.termLocation?.start.offset;
    if (n.regex) throw bad('regular expressions are not supported', at);
    if (n.field === '_exists_') return rows(this.exists(unescape(n.term), at));
    const raw = n.term;
    const value = unescape(raw);
    const target = this.columns(n.field, at);
    if ('json' in target) return this.filter(`json_extract(d.doc, ${this.bind(target.json)}) = ${this.bind(numOr(value))}`);
    if (!n.quoted && raw === '*') return rows(`(${target.map((c) => `d.${c.col} IS NOT NULL`).join(' OR ') || '0'})`);
    const cmp = !n.quoted && /^(>=|<=|>|<)/.exec(value);
    if (cmp) return this.filter(this.compare(target, cmp[1]!, value.slice(cmp[1]!.length), at));
    this.noteTerm(n.field, value.replace(/[*?]/g, ''));
    const parts: string[] = [];
    const fts = new Map<string, Column[]>();
    for (const c of target) {
      if (c.fts) fts.set(c.fts, [...(fts.get(c.fts) ?? []), c]);
      else if (c.type === 'string') parts.push(rows(!n.quoted && hasWildcard(raw) ? `d.${c.col} GLOB ${this.bind(glob(raw))}` : this.exact(c, '=', value)));
      else parts.push(rows(this.typed(c, value, at)));
    }
    for (const [g, cols] of fts) parts.push(this.fts(g, cols, n, raw, value));
    return parts.length ? combine('UNION', parts) : `${ALL} WHERE 0`;
  }

  private fts(group: string, cols: Column[], n: TermNode, raw: string, value: string): string {
    const filter = `{${cols.map((c) => c.col).join(' ')}} : `;
    if (!n.quoted && hasWildcard(raw) && !/^[^*?]*[^\\*?]\*$/.test(raw)) {
      // A wildcard inside a word: no index can answer it; a bounded scan of the text.
      const pat = `*${glob(raw).toLowerCase()}*`;
      return this.filter(`(${cols.map((c) => `lower(d.${c.col}) GLOB ${this.bind(pat)}`).join(' OR ')})`);
    }
    let expr: string;
    if (!n.quoted && raw.endsWith('*')) expr = `${ftsString(unescape(raw.slice(0, -1)))} *`;
    else if (n.quoted && n.proximity) {
      const words = value.split(/\s+/).filter(Boolean).map(ftsString);
      expr = `NEAR(${words.join(' ')}, ${Math.min(Math.max(0, Math.trunc(n.proximity)), 1000)})`;
    } else expr = ftsString(value);
    return `SELECT rowid AS id FROM fts_${group} WHERE fts_${group} MATCH ${this.bind(filter + expr)}`;
  }

  /** Equality (or comparison) on an exact column, including the mv table when the field was multi-valued. */
  private exact(c: Column, op: string, v: unknown): string {
    const base = `d.${c.col} ${op} ${this.bind(v)}`;
    if (!this.repo.isMulti(c.path)) return base;
    return `(${base} OR d.id IN (SELECT id FROM mv WHERE f = ${this.bind(c.path)} AND v ${op} ${this.bind(v)}))`;
  }

  private typed(c: Column, value: string, at?: number): string {
    if (c.type === 'date') {
      const ms = toMs(value);
      if (ms === undefined) throw bad(`field "${c.path}" is a date, "${value}" is not RFC 3339 or YYYY-MM-DD`, at);
      // A bare day matches the whole day.
      if (/^\d{4}-\d{2}-\d{2}$/.test(value)) return `(${this.exact(c, '>=', ms)} AND ${this.exact(c, '<', ms + DAY)})`;
      return this.exact(c, '=', ms);
    }
    return this.exact(c, '=', this.scalar(c, value, at));
  }

  private scalar(c: Column, value: string, at?: number): number | string {
    switch (c.type) {
      case 'long': case 'float': {
        const n = Number(value);
        if (value.trim() === '' || !Number.isFinite(n) || (c.type === 'long' && !/^-?\d+(\.\d+)?$/.test(value))) throw bad(`field "${c.path}" is ${c.type}, "${value}" is not a number`, at);
        return n;
      }
      case 'boolean':
        if (value !== 'true' && value !== 'false') throw bad(`field "${c.path}" is boolean, "${value}" is not true or false`, at);
        return value === 'true' ? 1 : 0;
      case 'date': {
        const ms = toMs(value);
        if (ms === undefined) throw bad(`field "${c.path}" is a date, "${value}" is not RFC 3339 or YYYY-MM-DD`, at);
        return ms;
      }
      default:
        return value;
    }
  }

  private compare(target: Column[], op: string, value: string, at?: number): string {
    const c = one(target, at);
    return this.exact(c, op, this.scalar(c, value, at));
  }

  private range(n: RangeNode): string {
    const target = this.columns(n.field);
    if ('json' in target) throw bad(`ranges on "${n.field}" need a schema field`);
    const c = one(target);
    const parts: string[] = [];
    const lo = unescape(n.term_min);
    const hi = unescape(n.term_max);
    const incl = n.inclusive;
    if (lo !== '*') parts.push(this.exact(c, incl === 'both' || incl === 'left' ? '>=' : '>', this.scalar(c, lo)));
    if (hi !== '*') parts.push(this.exact(c, incl === 'both' || incl === 'right' ? '<=' : '<', this.scalar(c, hi)));
    return parts.length ? `(${parts.join(' AND ')})` : `d.${c.col} IS NOT NULL`;
  }

  private exists(field: string, at?: number): string {
    // An object with a nested schema exists when any of its fields does.
    const under = this.repo.columns.filter((c) => c.path.startsWith(`${field}.`));
    const target = under.length > 0 && !this.repo.columns.some((c) => c.path === field) ? under : this.columns(field, at);
    if ('json' in target) return `json_type(d.doc, ${this.bind(target.json)}) IS NOT NULL`;
    return `(${target.map((c) => {
      if (c.dynamic) return `json_type(d.doc, ${this.bind(`$.${c.path}`)}) IS NOT NULL`;
      const multi = this.repo.isMulti(c.path) ? ` OR d.id IN (SELECT id FROM mv WHERE f = ${this.bind(c.path)})` : '';
      return `d.${c.col} IS NOT NULL${multi}`;
    }).join(' OR ')})`;
  }
}

/** The +/- operator of a clause (in `prefix`, or left in the field name by the parser). */
function signOf(n: Ast): '+' | '-' | undefined {
  if ('term' in n && (n.prefix === '+' || n.prefix === '-')) return n.prefix;
  const f = (n as { field?: unknown }).field;
  if (typeof f === 'string' && (f.startsWith('+') || f.startsWith('-'))) return f[0] as '+' | '-';
  return undefined;
}

function strip(n: Ast): Ast {
  const f = (n as { field?: string }).field;
  const out = { ...n, field: f && /^[-+]/.test(f) ? f.slice(1) : f } as Ast;
  if ('term' in out) (out as TermNode).prefix = null;
  return out;
}

function one(target: Column[], at?: number): Column {
  if (target.length !== 1) throw bad('comparisons and ranges need a field (field:[a TO b], field:>n)', at);
  // Text fields compare the raw value (ranges over analyzed text are lexicographic).
  return target[0]!;
}

function toMs(v: string): number | undefined {
  if (/^-?\d{1,15}$/.test(v)) return Number(v);
  return parseDate(v);
}

function numOr(v: string): string | number {
  return /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
}
