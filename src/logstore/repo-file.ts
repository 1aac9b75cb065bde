import Database from 'better-sqlite3';
import { convertDoc, type Row } from './convert.ts';
import { analyzerKind } from './schema.ts';
import { ALL_FIELD, columnSignature, planColumns, type Column, type Layout, type RepoDef } from './repo.ts';

const SQL_TYPE = { string: 'TEXT', long: 'INTEGER', date: 'INTEGER', boolean: 'INTEGER', float: 'REAL', object: '' } as const;

/**
 * The writing side of one log repo file, used only by the writer thread
 * (write-worker.ts): a `docs` table with one typed column per field (b-tree
 * indexes on exact-match fields and the ingest time), FTS5 tables over the
 * analyzed text (external content = the docs table, so text is stored once),
 * an `mv` side table for multi-valued exact fields and the source offsets of
 * exports delivered into it (decision 015).
 */
export class RepoFile {
  readonly db: Database.Database;
  def: RepoDef;
  columns: Column[] = [];
  private colIndex = new Map<string, number>();
  private layout: Layout;
  private insertDoc!: Database.Statement;
  private insertFts: Array<{ table: string; stmt: Database.Statement; cols: Column[]; idx: number[] }> = [];
  private readonly insertMv: Database.Statement;

  constructor(readonly file: string, def?: RepoDef) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('temp_store = MEMORY');
    this.db.exec(`CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS docs (id INTEGER PRIMARY KEY, _t INTEGER NOT NULL, doc TEXT NOT NULL);
      CREATE INDEX IF NOT EXISTS docs_t ON docs(_t);
      CREATE TABLE IF NOT EXISTS mv (f TEXT NOT NULL, v, id INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS mv_fv ON mv(f, v);
      CREATE INDEX IF NOT EXISTS mv_id ON mv(id);
      CREATE TABLE IF NOT EXISTS sources (k TEXT PRIMARY KEY, next INTEGER NOT NULL);`);
    this.insertMv = this.db.prepare('INSERT INTO mv (f, v, id) VALUES (?, ?, ?)');
    const stored = this.db.prepare("SELECT v FROM meta WHERE k = 'def'").get() as { v: string } | undefined;
    if (stored) {
      this.def = JSON.parse(stored.v) as RepoDef;
      this.layout = JSON.parse((this.db.prepare("SELECT v FROM meta WHERE k = 'layout'").get() as { v: string }).v) as Layout;
      this.prepare();
    } else {
      if (!def) throw new Error(`log repo file ${file} has no definition`);
      this.def = def;
      this.layout = { columns: {}, nextCol: 0, multi: [] };
      this.apply(def);
    }
  }

  /** Column names in Row.values order (the main thread converts rows against the same). */
  get signature(): string {
    return columnSignature(this.columns);
  }

  /** Paths that ever held several values. */
  get multi(): readonly string[] {
    return this.layout.multi;
  }

  /**
   * Applies a (new or updated) definition: adds columns and indexes, and
   * rebuilds the FTS tables whose column set or tokenizer changed from the
   * stored text (analyzer changes apply to old documents too).
   */
  apply(def: RepoDef): void {
    const prevFts = new Map<string, string>();
    for (const c of this.columns) if (c.fts) prevFts.set(c.fts, `${prevFts.get(c.fts) ?? ''},${c.col}`);
    const existing = new Set((this.db.prepare('SELECT name FROM pragma_table_info(?)').all('docs') as Array<{ name: string }>).map((r) => r.name));
    const layout = structuredClone(this.layout);
    const cols = planColumns(def, layout);
    this.db.transaction(() => {
      for (const c of cols) {
        if (!existing.has(c.col)) this.db.exec(`ALTER TABLE docs ADD COLUMN ${c.col} ${SQL_TYPE[c.type]}`);
        if (c.indexed) this.db.exec(`CREATE INDEX IF NOT EXISTS ix_${c.col} ON docs(${c.col})`);
        else this.db.exec(`DROP INDEX IF EXISTS ix_${c.col}`);
      }
      const groups = new Map<string, Column[]>();
      for (const c of cols) if (c.fts) groups.set(c.fts, [...(groups.get(c.fts) ?? []), c]);
      for (const g of new Set([...prevFts.keys(), ...groups.keys()])) {
        const members = groups.get(g);
        const sig = members ? members.map((c) => `,${c.col}`).join('') : undefined;
        if (sig === prevFts.get(g) && this.columns.length > 0) continue;
        this.db.exec(`DROP TABLE IF EXISTS fts_${g}`);
        if (!members) continue;
        const kind = analyzerKind(members[0]!.analyzer) as { tokenize: string };
        const tok = kind.tokenize.replace(/"/g, '""');
        this.db.exec(`CREATE VIRTUAL TABLE fts_${g} USING fts5(${members.map((c) => c.col).join(', ')}, content='docs', content_rowid='id', tokenize="${tok}")`);
        this.db.exec(`INSERT INTO fts_${g}(fts_${g}) VALUES ('rebuild')`);
      }
      this.db.prepare("INSERT OR REPLACE INTO meta (k, v) VALUES ('def', ?), ('layout', ?)").run(JSON.stringify(def), JSON.stringify(layout));
    })();
    // Only once committed: a failed apply leaves the file and this object as they were.
    this.def = def;
    this.layout = layout;
    this.prepare();
  }

  private prepare(): void {
    this.columns = planColumns(this.def, this.layout);
    this.colIndex = new Map(this.columns.map((c, i) => [c.path, i]));
    const names = this.columns.map((c) => c.col);
    this.insertDoc = this.db.prepare(`INSERT INTO docs (_t, doc${names.map((n) => `, ${n}`).join('')}) VALUES (?, ?${names.map(() => ', ?').join('')})`);
    const groups = new Map<string, Column[]>();
    for (const c of this.columns) if (c.fts) groups.set(c.fts, [...(groups.get(c.fts) ?? []), c]);
    this.insertFts = [...groups].map(([g, cols]) => ({
      table: `fts_${g}`,
      cols,
      idx: cols.map((c) => this.columns.indexOf(c) + 2),
      stmt: this.db.prepare(`INSERT INTO fts_${g} (rowid${cols.map((c) => `, ${c.col}`).join('')}) VALUES (?${cols.map(() => ', ?').join('')})`),
    }));
  }

  /** Converts documents against the schema: rows in order, or the reason per document. */
  convert(docs: readonly unknown[]): Array<Row | { error: string }> {
    return docs.map((d) => convertDoc(d, this.def.schema, this.colIndex));
  }

  /**
   * Inserts converted rows in one transaction (durable in the WAL, visible to
   * searches at commit). `source` records an export's next offset in the same
   * transaction so a redelivery after a crash is recognised.
   */
  insert(rows: readonly Row[], now: number, source?: { key: string; next: number }): void {
    const allAt = this.def.fullText.enabled ? this.colIndex.get(ALL_FIELD) ?? -1 : -1;
    const n = this.columns.length;
    this.db.transaction(() => {
      const args: unknown[] = new Array(n + 2);
      const ftsArgs = this.insertFts.map((f) => new Array<unknown>(f.idx.length + 1));
      for (const r of rows) {
        args[0] = now;
        args[1] = JSON.stringify(r.doc);
        if (allAt >= 0) r.values[allAt] = allText(r);
        for (let i = 0; i < n; i++) args[i + 2] = r.values[i] ?? null;
        const id = this.insertDoc.run(args).lastInsertRowid;
        for (let g = 0; g < this.insertFts.length; g++) {
          const f = this.insertFts[g]!;
          const a = ftsArgs[g]!;
          let any = false;
          a[0] = id;
          for (let j = 0; j < f.idx.length; j++) {
            const v = args[f.idx[j]!];
            a[j + 1] = v;
            if (v !== null) any = true;
          }
          if (any) f.stmt.run(a);
        }
        if (r.multi) for (const [path, values] of r.multi) {
          if (!this.layout.multi.includes(path)) this.markMulti(path);
          for (const v of values) this.insertMv.run(path, v, id);
        }
      }
      if (source) this.db.prepare('INSERT OR REPLACE INTO sources (k, next) VALUES (?, ?)').run(source.key, source.next);
    })();
  }

  private markMulti(path: string): void {
    this.layout.multi.push(path);
    this.db.prepare("INSERT OR REPLACE INTO meta (k, v) VALUES ('layout', ?)").run(JSON.stringify(this.layout));
  }

  /** The next source offset an export recorded (0 when none). */
  sourceNext(key: string): number {
    const r = this.db.prepare('SELECT next FROM sources WHERE k = ?').get(key) as { next: number } | undefined;
    return r?.next ?? 0;
  }

  /** Deletes documents ingested before `cutoff` (ms); returns how many. */
  expire(cutoff: number): number {
    return this.db.transaction(() => {
      for (const f of this.insertFts) {
        const g = f.table;
        const cols = f.cols.map((c) => c.col).join(', ');
        this.db.prepare(`INSERT INTO ${g} (${g}, rowid, ${cols}) SELECT 'delete', id, ${cols} FROM docs WHERE _t < ?`).run(cutoff);
      }
      this.db.prepare('DELETE FROM mv WHERE id IN (SELECT id FROM docs WHERE _t < ?)').run(cutoff);
      return this.db.prepare('DELETE FROM docs WHERE _t < ?').run(cutoff).changes;
    })();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function allText(r: Row): string | null {
  const parts: string[] = [];
  for (const v of r.values) if (typeof v === 'string') parts.push(v);
  if (r.multi) for (const vs of r.multi.values()) for (const v of vs) if (typeof v === 'string') parts.push(v);
  return parts.length ? parts.join('\n') : null;
}
