/**
 * Validation of user SQL and the plan for reading its result: exactly one
 * SELECT, bound against the source table, with its output columns mapped to
 * repo fields (types.ts).
 */
import { StatementType, type DuckDBConnection, type DuckDBPreparedStatement } from '@duckdb/node-api';
import { ApiError } from '../errors.ts';
import type { SchemaField } from '../ingest/types.ts';
import { planType, quoteIdent, quoteLiteral, toField, uniqueKeys, type TypePlan } from './types.ts';

/** A checked query: the repo fields of its result and how to read each column. */
export interface QueryPlan {
  fields: SchemaField[];
  plans: TypePlan[];
  /** The result columns' names as DuckDB gives them (fields have them sanitised). */
  names: string[];
}

/**
 * Statements that DuckDB rewrites into a SELECT (PRAGMA, SHOW, DESCRIBE,
 * SUMMARIZE) report the SELECT statement type, so the leading keyword is
 * checked as well.
 */
const SELECT_LEADS = new Set(['select', 'with', 'from', 'values', 'pivot', 'unpivot', '(']);

/** The first keyword of `sql` (lower case) after whitespace and comments, or '(' . */
export function leadingKeyword(sql: string): string {
  let i = 0;
  for (;;) {
    while (i < sql.length && /\s/.test(sql.charAt(i))) i++;
    if (sql.startsWith('--', i)) {
      const nl = sql.indexOf('\n', i);
      i = nl < 0 ? sql.length : nl + 1;
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else {
      break;
    }
  }
  const m = /^(\(|[a-zA-Z_]+)/.exec(sql.slice(i));
  return m?.[1]?.toLowerCase() ?? '';
}

/** Engine error text without the "Failed to extract statements: " wrapper the binding adds. */
export function engineMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.replace(/^Failed to extract statements: /, '');
}

const invalid = (detail: string, cause?: unknown): ApiError => new ApiError('E18209', detail, { cause });

/**
 * Checks `sql` on a connection where the source table already exists and
 * returns its plan. Throws ApiError E18209 with the engine's message for
 * anything but exactly one parameterless SELECT whose columns map to fields.
 */
export async function checkQuery(conn: DuckDBConnection, sql: string): Promise<QueryPlan> {
  let prepared: DuckDBPreparedStatement;
  try {
    const extracted = await conn.extractStatements(sql);
    if (extracted.count !== 1) throw invalid(`expected exactly one SELECT statement, got ${extracted.count} statements`);
    // Preparing parses and binds without executing, so a refused statement never runs.
    prepared = await extracted.prepare(0);
  } catch (err) {
    throw err instanceof ApiError ? err : invalid(engineMessage(err), err);
  }
  try {
    const type = prepared.statementType;
    if (type !== StatementType.SELECT) throw invalid(`only SELECT statements are allowed, got ${StatementType[type] ?? type}`);
    const lead = leadingKeyword(sql);
    if (!SELECT_LEADS.has(lead)) throw invalid(`only SELECT statements are allowed, got ${lead.toUpperCase()}`);
    if (prepared.parameterCount > 0) throw invalid('query parameters ($1, ?) are not supported');
    const names: string[] = [];
    const plans: TypePlan[] = [];
    for (let i = 0; i < prepared.columnCount; i++) {
      names.push(prepared.columnName(i));
      plans.push(planType(prepared.columnType(i)));
    }
    const keys = uniqueKeys(names);
    return { fields: plans.map((p, i) => toField(keys[i] ?? '', p)), plans, names };
  } finally {
    prepared.destroySync();
  }
}

/**
 * The SQL to execute: the user's own, or, when some column must be converted,
 * a projection over `query(<user sql>)` that CASTs those columns. query()
 * takes the text as a literal, so comments and a trailing ';' in the user's
 * SQL cannot break out of the wrapper, and it accepts only a single SELECT.
 */
export function executableSql(sql: string, plan: QueryPlan, maxRows?: number): string {
  // One row past the limit tells "over" from "exactly at" without DuckDB
  // producing (and holding) the rest of a flood of rows.
  if (maxRows !== undefined) return `SELECT * FROM query(${quoteLiteral(executableSql(sql, plan))}) LIMIT ${maxRows + 1}`;
  if (!plan.plans.some((p) => p.cast)) return sql;
  const aliases = plan.plans.map((_p, i) => quoteIdent(`c${i}`));
  const cols = plan.plans.map((p, i) => (p.cast ? `CAST(${aliases[i]} AS ${p.target}) AS ${aliases[i]}` : aliases[i]));
  return `SELECT ${cols.join(', ')} FROM query(${quoteLiteral(sql)}) AS _pq(${aliases.join(', ')})`;
}
