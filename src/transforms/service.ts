import { ApiError } from '../errors.ts';
import type { SchemaField } from '../ingest/types.ts';
import type { PluginService } from '../services/plugins.ts';
import type { RepoService } from '../services/repos.ts';
import type { SqlEngine } from '../sql/engine.ts';
import type { MetaStore, RepoRow, TransformRow } from '../storage/meta.ts';
import { consumerId } from './execute.ts';
import type { TransformRunner } from './runner.ts';
import { checkOnlyAdded, parseCreate, parseUpdate, sqlInputSchema, type TransformSpec } from './spec.ts';

const NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,127}$/;

/** Whether a value of type `from` may be stored in a field of type `to`. */
const fits = (from: SchemaField, to: SchemaField): boolean =>
  from.valtype === to.valtype || (from.valtype === 'long' && to.valtype === 'float');

/** Transform lifecycle: validation, destination repos, and keeping the runner in step. */
export class TransformService {
  constructor(
    private readonly meta: MetaStore,
    private readonly repos: RepoService,
    private readonly sql: SqlEngine,
    private readonly plugins: PluginService,
    private readonly runner: TransformRunner,
  ) {}

  must(account: string, repo: string, name: string): TransformRow {
    this.repos.must(account, repo);
    const t = this.meta.getTransform(account, repo, name);
    if (!t) throw new ApiError('E18202', `${repo}/${name}`);
    return t;
  }

  /** The output schema of a spec over a source repo: SQL result columns, else the plugin output. */
  async outputSchema(account: string, source: RepoRow, spec: TransformSpec): Promise<SchemaField[]> {
    if (spec.plugin) this.plugins.must(account, spec.plugin.name);
    if (spec.code) return this.sql.describe(source.name, sqlInputSchema(spec, source.schema), spec.code);
    return sqlInputSchema(spec, source.schema);
  }

  async create(account: string, repo: string, name: string, destName: string, body: Record<string, unknown>): Promise<TransformRow> {
    if (!NAME_RE.test(name)) throw new ApiError('E18207', `transform name "${name.slice(0, 64)}" must match ^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`);
    if (!NAME_RE.test(destName)) throw new ApiError('E18103', `"${destName.slice(0, 64)}" must match ^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`);
    const source = this.repos.must(account, repo);
    if (destName === repo) throw new ApiError('E18204', repo);
    this.checkNoCycle(account, repo, destName);
    if (this.meta.getTransform(account, repo, name)) throw new ApiError('E18201', `${repo}/${name}`);
    const spec = parseCreate(body);
    // The plugin is checked against its contract and the source (an omitted output is derived here).
    if (spec.plugin) spec.plugin = await this.plugins.resolve(account, spec.plugin, source);
    const output = await this.outputSchema(account, source, spec);
    const dest = this.meta.getRepo(account, destName);
    if (dest) this.checkDestination(account, dest, output);
    const srcLog = await this.repos.log(account, source);
    const now = new Date().toISOString();
    const row: TransformRow = {
      repo, name, destRepo: destName, spec: spec as unknown as Record<string, unknown>,
      createdDest: !dest, createTime: now, updateTime: now,
    };
    this.meta.tx(() => {
      if (this.meta.getTransform(account, repo, name)) throw new ApiError('E18201', `${repo}/${name}`);
      this.checkNoCycle(account, repo, destName);
      if (!dest) {
        this.repos.create(account, destName, { region: source.region, group: source.group, schema: output }, { derivedFrom: name });
      } else if (this.meta.transformWriting(account, destName)) {
        throw new ApiError('E18205', destName);
      }
      this.meta.insertTransform(account, row);
      // whence is applied once, here: the transform then only moves from its committed offset.
      if (spec.whence === 'newest') {
        this.meta.setOffset(account, consumerId(row), { logKey: `${source.name}.${source.uid}`, nextOffset: srcLog.endOffset(), state: {} });
      }
      // A group that allocates on first use starts with its first transform.
      const g = source.group ? this.meta.getGroup(account, source.group) : undefined;
      if (g && g.state === 'idle') this.meta.updateGroup(account, { ...g, state: 'running', updateTime: now });
    });
    this.runner.add(account, row);
    return row;
  }

  /**
   * A transform into a repo that (through transforms) feeds its source would
   * close a cycle: every point would go round for ever. Each repo has one
   * writer at most, so the source's upstream is a chain (E18204, as for a
   * transform into its own source).
   */
  private checkNoCycle(account: string, repo: string, destName: string): void {
    const seen = new Set<string>([repo]);
    for (let w = this.meta.transformWriting(account, repo); w; w = this.meta.transformWriting(account, w.repo)) {
      if (w.repo === destName) throw new ApiError('E18204', `${destName} feeds ${repo} through transform ${w.repo}/${w.name}: the transform would close a cycle`);
      if (seen.has(w.repo)) break;
      seen.add(w.repo);
    }
  }

  /** An existing destination must take every output field with a compatible type. */
  private checkDestination(account: string, dest: RepoRow, output: SchemaField[]): void {
    const writer = this.meta.transformWriting(account, dest.name);
    if (writer) throw new ApiError('E18205', `${dest.name} is written by transform ${writer.repo}/${writer.name}`);
    if (dest.derivedFrom) throw new ApiError('E18205', `${dest.name} is derived from transform ${dest.derivedFrom}`);
    const fields = new Map(dest.schema.map((f) => [f.key, f]));
    for (const o of output) {
      const f = fields.get(o.key);
      if (!f) throw new ApiError('E18229', `repo ${dest.name} has no field "${o.key}"`);
      if (!fits(o, f)) throw new ApiError('E18229', `field "${o.key}" is ${f.valtype} in ${dest.name}, the output is ${o.valtype}`);
    }
    const out = new Set(output.map((o) => o.key));
    const missing = dest.schema.filter((f) => f.required && !out.has(f.key));
    if (missing.length) throw new ApiError('E18229', `required fields ${missing.map((f) => f.key).join(', ')} of ${dest.name} are not in the output`);
  }

  async update(account: string, repo: string, name: string, body: Record<string, unknown>): Promise<TransformRow> {
    const cur = this.must(account, repo, name);
    const source = this.repos.must(account, repo);
    const curSpec = cur.spec as unknown as TransformSpec;
    const next = parseUpdate(curSpec, body);
    if (next.plugin && next.plugin !== curSpec.plugin) {
      next.plugin = await this.plugins.resolve(account, next.plugin, source);
      if (curSpec.plugin) checkOnlyAdded(curSpec.plugin.output.map((o) => ({ key: o.name, valtype: o.type })), next.plugin.output.map((o) => ({ key: o.name, valtype: o.type })), 'plugin output');
    }
    const before = await this.outputSchema(account, source, curSpec).catch(() => undefined);
    const after = await this.outputSchema(account, source, next);
    if (before) checkOnlyAdded(before, after, 'output');
    const dest = this.repos.must(account, cur.destRepo);
    const added = after.filter((f) => !dest.schema.some((d) => d.key === f.key));
    if (added.length && !cur.createdDest) throw new ApiError('E18229', `repo ${dest.name} has no field ${added.map((f) => `"${f.key}"`).join(', ')}`);
    const now = new Date().toISOString();
    this.meta.tx(() => {
      this.meta.updateTransformSpec(account, repo, name, next as unknown as Record<string, unknown>, now);
      this.repos.growSchema(account, cur.destRepo, added);
    });
    const row = { ...cur, spec: next as unknown as Record<string, unknown>, updateTime: now };
    this.runner.update(account, row);
    return row;
  }

  /** Deletes the transform and the destination repo it created (E18112 while that repo still feeds others). */
  async delete(account: string, repo: string, name: string): Promise<void> {
    const t = this.must(account, repo, name);
    if (t.createdDest) {
      const deps = this.meta.dependents(account, t.destRepo);
      if (deps.transforms.length || deps.exports.length) {
        throw new ApiError('E18112', `repo ${t.destRepo} created by this transform still feeds ${[...deps.transforms, ...deps.exports].join(', ')}`);
      }
    }
    await this.runner.remove(account, repo, name);
    this.meta.tx(() => {
      this.meta.deleteTransform(account, repo, name);
      this.meta.deleteOffset(account, consumerId(t));
    });
    this.runner.sourceChanged(account, repo);
    if (t.createdDest && this.meta.getRepo(account, t.destRepo)) await this.repos.delete(account, t.destRepo, { viaTransform: true });
  }
}
