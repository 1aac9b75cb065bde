/**
 * Entry of a query-check process (check-pool.ts): checks user SQL with a
 * DuckDB instance of its own, so that planning an expensive constant folds
 * it here, under the process's RLIMIT_AS and the pool's kill on timeout,
 * and not in the server, whose DuckDB shares Node's thread pool with
 * ingest. Speaks one JSON request / reply per line on stdin / stdout.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { ApiError, ERRORS } from '../errors.ts';
import type { SchemaField } from '../ingest/types.ts';
import { checkQuery, executableSql } from './check.ts';
import { createTableSql, quoteIdent } from './types.ts';

/** One check: the source table's name and schema, the SQL and the budget. */
export interface CheckRequest {
  id: number;
  table: string;
  schema: SchemaField[];
  sql: string;
  timeoutMs: number;
}

/** `fields` for a valid query, else `error` (E18209 text) with `kind`. */
export type CheckReply =
  | { id: number; fields: SchemaField[] }
  | { id: number; error: string; kind: 'invalid' | 'timeout' | 'memory' };

/** DuckDB reports allocations past memory_limit (or refused by RLIMIT_AS) like this. */
const OOM = /Out of Memory|bad allocation|bad_alloc|failed to allocate/i;

async function check(inst: DuckDBInstance, req: CheckRequest): Promise<CheckReply> {
  const conn = await inst.connect();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.interrupt();
  }, req.timeoutMs);
  try {
    await conn.run(createTableSql(req.table, req.schema));
    const plan = await checkQuery(conn, req.sql);
    // A trial over one row of NULLs evaluates what folding left for run
    // time: a constant too big for the check's memory is no transform. Other
    // errors depend on data that the trial row does not have, so they pass.
    await conn.run(`INSERT INTO ${quoteIdent(req.table)} DEFAULT VALUES`);
    try {
      await conn.run(executableSql(req.sql, plan));
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (timedOut) throw err;
      if (OOM.test(msg)) return { id: req.id, kind: 'memory', error: firstLine(msg) };
    }
    if (timedOut) throw new Error('interrupted');
    return { id: req.id, fields: plan.fields };
  } catch (err) {
    if (timedOut) return { id: req.id, kind: 'timeout', error: `checking the query took more than ${req.timeoutMs} ms` };
    const msg = err instanceof ApiError ? err.message.replace(`${ERRORS.E18209[1]}: `, '') : err instanceof Error ? err.message : String(err);
    return { id: req.id, kind: OOM.test(msg) ? 'memory' : 'invalid', error: firstLine(msg) };
  } finally {
    clearTimeout(timer);
    conn.closeSync();
  }
}

const firstLine = (s: string): string => s.split('\n')[0] ?? s;

/**
 * Sets RLIMIT_AS to what the process maps now plus `headroomMb`, with
 * prlimit (util-linux). Done after start-up because Node reserves address
 * space for WebAssembly up front (about 10 GiB under tsx), so a fixed limit
 * set before exec either kills start-up or limits nothing.
 */
function limitAddressSpace(headroomMb: number): void {
  const m = /VmSize:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error('cannot read VmSize from /proc/self/status');
  const bytes = Number(m[1]) * 1024 + headroomMb * 1024 * 1024;
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--as=${bytes}:${bytes}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    // Without util-linux the check still has DuckDB's memory_limit and the kill on timeout.
    process.stderr.write(`query check without RLIMIT_AS: prlimit failed: ${err instanceof Error ? err.message : String(err)}\n`);
  }
}

async function main(): Promise<void> {
  const memory = process.env.CHECK_MEMORY ?? '256MB';
  const inst = await DuckDBInstance.create(':memory:', {
    enable_external_access: 'false',
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
    memory_limit: memory,
    threads: '1',
  });
  const setup = await inst.connect();
  await setup.run("SET GLOBAL TimeZone = 'UTC'");
  await setup.run('SET lock_configuration = true');
  setup.closeSync();
  limitAddressSpace(Number(process.env.CHECK_HEADROOM_MB ?? '1024'));
  process.stdout.write('{"ready":true}\n');
  // One request at a time: the pool never sends the next before the reply.
  for await (const line of createInterface({ input: process.stdin })) {
    if (!line) continue;
    const reply = await check(inst, JSON.parse(line) as CheckRequest);
    process.stdout.write(JSON.stringify(reply) + '\n');
  }
}

await main();
