import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ApiError } from '../errors.ts';
import type { JsPluginRuntime } from '../plugins/js-runtime.ts';
import type { Point } from '../ingest/types.ts';
import { checkSourceBean, resolveOutput } from '../plugins/contract.ts';
import type { JvmPluginInfo, JvmPluginRuntime } from '../plugins/jvm-runtime.ts';
import { PluginInvalidError, PluginUnavailableError } from '../plugins/errors.ts';
import type { OutputField } from '../plugins/output.ts';
import type { MetaStore, PluginRow, RepoRow } from '../storage/meta.ts';
import type { PluginSpec } from '../transforms/spec.ts';

export const PLUGIN_NAME_RE = /^[a-zA-Z][a-zA-Z0-9_.]{0,127}[a-zA-Z0-9_]$/;

/** A zip file (jar) starts with "PK\x03\x04". */
const isJar = (b: Buffer): boolean => b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;

/** Limits and grants of {@link PluginService}. */
export interface PluginPolicy {
  /** Largest package accepted by upload (the route's body limit). */
  maxBytes: number;
  /** Whether the operator granted Java (jar) plugins to this account. */
  jarAllowed: (account: string) => boolean;
}

/** A stored plugin as checked against its contract. */
export interface PluginCheck {
  row: PluginRow;
  /** Java plugins only: the contract the parser class follows and, for the official one, its beans. */
  java?: JvmPluginInfo;
}

const JAR_DENIED = 'Java (jar) plugins are not enabled for this account; the operator grants them with "jarPlugins": true in its account entry';

/**
 * Uploaded plugins: bytes under <dataDir>/plugins/<account>/, metadata in the
 * meta store. Any body is stored (as the official server did); a jar is a
 * Java plugin (class = plugin name), anything else is taken for a JavaScript
 * ES module. Packages are checked against their contract when a transform
 * uses them and by verify.
 */
export class PluginService {
  constructor(
    private readonly meta: MetaStore,
    private readonly dir: string,
    readonly js: JsPluginRuntime,
    readonly jvm: JvmPluginRuntime,
    private readonly policy: PluginPolicy,
  ) {}

  get maxBytes(): number {
    return this.policy.maxBytes;
  }

  validName(name: string): string {
    if (!PLUGIN_NAME_RE.test(name)) throw new ApiError('E18117', `"${name.slice(0, 64)}" must match ^[a-zA-Z][a-zA-Z0-9_.]{0,127}[a-zA-Z0-9_]$`);
    return name;
  }

  file(account: string, p: Pick<PluginRow, 'name' | 'kind'>): string {
    return path.join(this.dir, account, `${p.name}.${p.kind === 'java' ? 'jar' : 'mjs'}`);
  }

  must(account: string, name: string): PluginRow {
    const p = this.meta.getPlugin(account, this.validName(name));
    if (!p) throw new ApiError('E18216', name);
    return p;
  }

  /** E18665 unless the account may use Java plugins. */
  private allowJar(account: string): void {
    if (!this.policy.jarAllowed(account)) throw new ApiError('E18665', JAR_DENIED);
  }

  /** Stores any body as a plugin after checking its MD5 (base64 of the digest) and size; jars need the account's grant. */
  async upload(account: string, name: string, body: Buffer, contentMd5?: string, contentLength?: number): Promise<PluginRow> {
    this.validName(name);
    if (this.meta.getPlugin(account, name)) throw new ApiError('E18217', name);
    if (body.length === 0) throw new ApiError('E18006');
    if (body.length > this.policy.maxBytes) throw new ApiError('E18005', `a plugin may have at most ${this.policy.maxBytes} bytes`);
    if (contentLength !== undefined && contentLength !== body.length) throw new ApiError('E18219', `Content-Length ${contentLength}, received ${body.length} bytes`);
    const md5 = createHash('md5').update(body).digest('base64');
    if (contentMd5 !== undefined && contentMd5 !== md5) throw new ApiError('E18220', `expected ${contentMd5}, content has ${md5}`);
    const kind = isJar(body) ? 'java' : 'js';
    if (kind === 'java') this.allowJar(account);
    const row: PluginRow = { name, kind, size: body.length, md5, createTime: new Date().toISOString() };
    const file = this.file(account, row);
    mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.upload-${process.pid}`;
    writeFileSync(tmp, body, { flag: 'w', mode: 0o600 });
    try {
      this.meta.tx(() => {
        if (this.meta.getPlugin(account, name)) throw new ApiError('E18217', name);
        this.meta.insertPlugin(account, row);
      });
      renameSync(tmp, file);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    return row;
  }

  /**
   * Checks a stored plugin against its contract (loads it in its runtime).
   * @throws E18216 missing, E18665 jar without the grant, E18617 naming what is wrong.
   */
  async check(account: string, name: string): Promise<PluginCheck> {
    const row = this.must(account, name);
    if (row.kind === 'java') this.allowJar(account);
    const file = this.file(account, row);
    try {
      if (row.kind === 'java') return { row, java: await this.jvm.verify(file, row.name) };
      await this.js.verify(readFileSync(file, 'utf8'));
      return { row };
    } catch (err) {
      if (err instanceof PluginInvalidError || err instanceof PluginUnavailableError) {
        throw new ApiError('E18617', `plugin ${name}: ${row.kind === 'js' ? 'not a jar, and not a JavaScript module that loads: ' : ''}${err.message}`);
      }
      throw err;
    }
  }

  /**
   * The plugin part of a transform, checked against the plugin and the source
   * repo; an omitted output is derived from the official contract's OutputData.
   * @throws E18207 output omitted for a plugin it cannot be derived from; E18617, E18665, E18216.
   */
  async resolve(account: string, spec: PluginSpec, source: Pick<RepoRow, 'name' | 'schema'>): Promise<PluginSpec> {
    const { java } = await this.check(account, spec.name);
    try {
      if (java?.form === 'bean') checkSourceBean(java, source.name, source.schema);
      const output = resolveOutput(java, spec.output);
      if (!output) {
        throw new ApiError('E18207', `plugin.output must list the output fields: plugin ${spec.name} does not follow the official Java contract (userWrite.bean.OutputData), so its output cannot be derived`);
      }
      return { name: spec.name, output };
    } catch (err) {
      if (err instanceof PluginInvalidError) throw new ApiError('E18617', `plugin ${spec.name}: ${err.message}`);
      throw err;
    }
  }

  /** POST /v2/verify/plugins/<name>: the output fields a transform would get (declared ones checked when given). */
  async verify(account: string, name: string, declared?: PluginSpec['output']): Promise<{ row: PluginRow; form: string; outputFields: OutputField[] }> {
    const { row, java } = await this.check(account, name);
    let outputFields: OutputField[] = declared ?? [];
    try {
      outputFields = resolveOutput(java, outputFields) ?? [];
    } catch (err) {
      if (err instanceof PluginInvalidError) throw new ApiError('E18617', `plugin ${name}: ${err.message}`);
      throw err;
    }
    return { row, form: java?.form ?? 'js', outputFields };
  }

  /**
   * Runs a transform's plugin over points (the grant is checked again: it may
   * have been withdrawn since the transform was made).
   */
  async run(account: string, spec: PluginSpec, points: Point[], maxOut?: number): Promise<Point[]> {
    const p = this.must(account, spec.name);
    const id = `${account}/${p.name}`;
    if (p.kind !== 'java') return this.js.run(id, this.code(account, p), points, spec.output, maxOut);
    this.allowJar(account);
    return this.jvm.run(id, this.file(account, p), p.name, points, spec.output);
  }

  code(account: string, p: PluginRow): string {
    return readFileSync(this.file(account, p), 'utf8');
  }

  delete(account: string, name: string): void {
    this.meta.tx(() => {
      const p = this.must(account, name);
      const users = this.meta.listTransforms(account).filter((t) => (t.spec.plugin as { name?: string } | undefined)?.name === name);
      if (users.length) throw new ApiError('E18112', `plugin ${name} is used by transform ${users.map((t) => `${t.repo}/${t.name}`).join(', ')}`);
      this.meta.deletePlugin(account, name);
      rmSync(this.file(account, p), { force: true });
    });
  }
}
