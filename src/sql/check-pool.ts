/**
 * Query checks (describe) in child processes with hard OS limits: each
 * child runs check-child.ts under RLIMIT_AS (set with prlimit, so a value
 * too big to allocate fails there) and is killed once a check overruns its budget.
 * Planning user SQL in the server folded constants on Node's thread pool,
 * which also runs the log's fsyncs, and grew the server's memory without
 * bound (docs/decisions/018-isolating-accounts.md).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { setPriority } from 'node:os';
import { createInterface } from 'node:readline';
import { ApiError } from '../errors.ts';
import type { SchemaField } from '../ingest/types.ts';
import type { CheckReply, CheckRequest } from './check-child.ts';

/** Limits of the check processes. */
export interface CheckPoolOptions {
  /** Child processes at most (checks beyond wait in line). */
  processes: number;
  /** Address space each child may map beyond what it maps once started, in MiB (RLIMIT_AS). */
  headroomMb: number;
  /** DuckDB memory_limit inside each child, e.g. '256MB'. */
  memoryLimit: string;
}

const UNDER_TSX = import.meta.url.endsWith('.ts');
const ENTRY = new URL(UNDER_TSX ? './check-child.ts' : './check-child.js', import.meta.url);
/** Scheduling niceness of check processes (the server's is usually 0). */
const CHILD_NICE = 10;
/** Starting Node and DuckDB; a child that is not ready by then is killed. */
const START_MS = 20_000;

interface Slot {
  child: ChildProcessWithoutNullStreams;
  ready: Promise<void>;
  busy: boolean;
  started: boolean;
  pending?: { id: number; resolve: (r: CheckReply) => void; reject: (e: Error) => void };
  dead: boolean;
}

/** A small pool of check processes, started on demand and replaced when killed. */
export class CheckPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Array<() => void> = [];
  private seq = 0;
  private closed = false;

  constructor(private readonly opts: CheckPoolOptions) {}

  /**
   * The output fields of `sql` over a table `table` of `schema`.
   * @throws ApiError E18209 for invalid SQL, a check past `timeoutMs`, or a
   *   query that needs more memory than a check may use.
   */
  async describe(table: string, schema: SchemaField[], sql: string, timeoutMs: number): Promise<SchemaField[]> {
    const slot = await this.acquire();
    try {
      const reply = await this.ask(slot, { id: ++this.seq, table, schema, sql, timeoutMs }, timeoutMs);
      if ('fields' in reply) return reply.fields;
      if (reply.kind === 'memory') {
        throw new ApiError('E18209', `the query needs more memory than a check may use (${this.opts.memoryLimit}): ${reply.error}`);
      }
      throw new ApiError('E18209', reply.error);
    } finally {
      this.release(slot);
    }
  }

  /** Kills the children. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.slots.splice(0)) this.kill(s);
    for (const w of this.waiting.splice(0)) w();
  }

  private async acquire(): Promise<Slot> {
    for (;;) {
      if (this.closed) throw new Error('CheckPool is closed');
      const idle = this.slots.find((s) => !s.busy && !s.dead);
      if (idle) {
        idle.busy = true;
        return idle;
      }
      if (this.slots.length < this.opts.processes) {
        const s = this.spawn();
        s.busy = true;
        return s;
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  private release(slot: Slot): void {
    slot.busy = false;
    this.waiting.shift()?.();
  }

  private ask(slot: Slot, req: CheckRequest, timeoutMs: number): Promise<CheckReply> {
    return new Promise<CheckReply>((resolve, reject) => {
      // The child interrupts DuckDB itself at timeoutMs; one expensive value
      // ignores interrupts, so the process is killed a little later.
      const timer = setTimeout(() => {
        this.kill(slot);
        resolve({ id: req.id, kind: 'timeout', error: `checking the query took more than ${timeoutMs} ms` });
      }, timeoutMs + 1_000);
      slot.pending = {
        id: req.id,
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      slot.ready.then(
        () => slot.child.stdin.write(JSON.stringify(req) + '\n'),
        (err: Error) => slot.pending?.reject(err),
      );
    });
  }

  private spawn(): Slot {
    const args = [...(UNDER_TSX ? ['--import', import.meta.resolve('tsx')] : []), ENTRY.pathname];
    // The child limits its own address space once started (check-child.ts).
    const child = spawn(process.execPath, args, {
      env: { CHECK_MEMORY: this.opts.memoryLimit, CHECK_HEADROOM_MB: String(this.opts.headroomMb), PATH: process.env.PATH ?? '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // Below the server's priority: starting Node + DuckDB and a hostile
    // check cost a core for a second or more, which ingest should not pay.
    if (child.pid !== undefined) {
      try {
        setPriority(child.pid, CHILD_NICE);
      } catch {
        // not allowed here: the check still runs, at normal priority
      }
    }
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (stderr = (stderr + d).slice(-2_000)));
    let onReady!: () => void;
    let onFail!: (e: Error) => void;
    const slot: Slot = {
      child, busy: false, dead: false, started: false,
      ready: new Promise<void>((res, rej) => ((onReady = res), (onFail = rej))),
    };
    slot.ready.catch(() => undefined);
    const startTimer = setTimeout(() => this.kill(slot), START_MS);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const msg = JSON.parse(line) as CheckReply | { ready: true };
      if ('ready' in msg) {
        clearTimeout(startTimer);
        slot.started = true;
        return onReady();
      }
      if (slot.pending?.id === msg.id) {
        const p = slot.pending;
        slot.pending = undefined;
        p.resolve(msg);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(startTimer);
      slot.dead = true;
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      const err = new Error(`query check process exited (${signal ?? code}): ${stderr.trim().split('\n').pop() ?? ''}`);
      onFail(err);
      const p = slot.pending;
      slot.pending = undefined;
      // Killed mid-check by the OS (memory) rather than by us: refuse the query
      // as too big. A child that never started is the server's problem, not the query's.
      if (p && slot.started) p.resolve({ id: p.id, kind: 'memory', error: err.message });
      else p?.reject(err);
    });
    child.stdin.on('error', () => undefined); // a dead child: 'exit' reports it
    this.slots.push(slot);
    return slot;
  }

  private kill(slot: Slot): void {
    if (slot.dead) return;
    slot.dead = true;
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    slot.child.kill('SIGKILL');
  }
}
