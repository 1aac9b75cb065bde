import Database from 'better-sqlite3';
import { convertDoc, type Row } from './convert.ts';
import { analyzerKind, flatten, type FlatField, type LogField } from './schema.ts';

/** A log repo's definition as stored in its file and answered by GET. */
export interface RepoDef {
  name: string;
  region: string;
  /** "<N>d" as the SDK reads it back ("0d" = keep forever). */
  retention: string;
  coldRetention: string;
  schema: LogField[];
  fullText: { enabled: boolean; analyzer: string };
  description: string | null;
  primaryField: string;
  dateIndexField: string;
  createTime: string;
  updateTime: string;
}

/** Internal bookkeeping kept next to the definition. */
export interface Layout {
  /** Column name per flattened path; never reused, so a file keeps its columns across updates. */
  columns: Record<string, string>;
  nextCol: number;
  /** Paths that ever held several values (their queries also look at the mv table). */
  multi: string[];
}

/** A flattened field with its column and index kind. */
export interface Column extends FlatField {
  col: string;
  /** FTS group (table fts_<group>) for analyzed strings. */
  fts?: string;
  keyword: boolean;
  indexed: boolean;
}

/** Pseudo field holding every string value when fullText is enabled. */
export const ALL_FIELD = '_all';

/** The columns of a definition, assigning new ones to paths not seen before (mutates `layout`). */
export function planColumns(def: RepoDef, layout: Layout): Column[] {
  const flat = flatten(def.schema);
  if (def.fullText.enabled) flat.push({ path: ALL_FIELD, type: 'string', analyzer: def.fullText.analyzer || 'standard', dynamic: false });
  return flat.map((f) => {
    // Own properties only: a path may be "__proto__" or "constructor".
    let col = Object.hasOwn(layout.columns, f.path) ? layout.columns[f.path] : undefined;
    if (col === undefined) {
      col = `c${layout.nextCol++}`;
      Object.defineProperty(layout.columns, f.path, { value: col, enumerable: true, writable: true, configurable: true });
    }
    const kind = f.type === 'string' ? analyzerKind(f.analyzer) : undefined;
    const fts = kind && 'fts' in kind ? kind.fts : undefined;
    const keyword = f.type === 'string' && f.analyzer === 'keyword';
    const indexed = keyword || (f.type !== 'string' && f.type !== 'object');
    return { ...f, col, fts, keyword, indexed };
  });
}

/** The column names in Row.values order, as one string (main thread and writer compare it). */
export const columnSignature = (cols: readonly Column[]): string => cols.map((c) => c.col).join(',');

/**
 * The main thread's view of one log repo file (decision 015): its definition
 * and column layout, used to convert documents and to plan queries. It holds
 * no connection: the writer thread (writer.ts) changes the file, query
 * workers read it. The writer computes the same layout from the same
 * definitions in the same order, so rows converted here fit its statements.
 */
export class LogRepo {
  def: RepoDef;
  columns: Column[] = [];
  /** Column index per path (Row.values order). */
  private colIndex = new Map<string, number>();
  private layout: Layout;
  /** Set when the repo is being deleted: writes issued afterwards answer E8111. */
  deleted = false;

  constructor(readonly file: string, def: RepoDef, layout: Layout = { columns: {}, nextCol: 0, multi: [] }) {
    this.def = def;
    this.layout = layout;
    this.index();
  }

  /** Reads the definition of an existing file (a short read-only connection); undefined when it has none. */
  static load(file: string): LogRepo | undefined {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      const get = (k: string): string | undefined => (db.prepare('SELECT v FROM meta WHERE k = ?').get(k) as { v: string } | undefined)?.v;
      const def = get('def');
      const layout = get('layout');
      return def && layout ? new LogRepo(file, JSON.parse(def) as RepoDef, JSON.parse(layout) as Layout) : undefined;
    } catch {
      // A file still being created has no meta table yet.
      return undefined;
    } finally {
      db.close();
    }
  }

  private index(): void {
    this.columns = planColumns(this.def, this.layout);
    this.colIndex = new Map(this.columns.map((c, i) => [c.path, i]));
  }

  /** Takes a new definition (the writer applies the same one to the file); returns the column signature. */
  setDef(def: RepoDef): string {
    this.def = def;
    this.index();
    return this.signature;
  }

  /** Column names in Row.values order. */
  get signature(): string {
    return columnSignature(this.columns);
  }

  /** A copy of the layout (the writer stores it). */
  layoutCopy(): Layout {
    return structuredClone(this.layout);
  }

  /** Records multi-valued paths the writer found. */
  noteMulti(paths: readonly string[]): void {
    for (const p of paths) if (!this.layout.multi.includes(p)) this.layout.multi.push(p);
  }

  /** The index of a path's column in Row.values (-1 when none). */
  columnIndex(path: string): number {
    return this.colIndex.get(path) ?? -1;
  }

  /** Whether a path ever held several values. */
  isMulti(path: string): boolean {
    return this.layout.multi.includes(path);
  }

  /** Converts documents against the schema: rows in order, or the reason per document. */
  convert(docs: readonly unknown[]): Array<Row | { error: string }> {
    return docs.map((d) => convertDoc(d, this.def.schema, this.colIndex));
  }
}
