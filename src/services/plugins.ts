import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ApiError } from '../errors.ts';
import type { JsPluginRuntime } from '../plugins/js-runtime.ts';
import type { JvmPluginRuntime } from '../plugins/jvm-runtime.ts';
import { PluginInvalidError, PluginUnavailableError } from '../plugins/errors.ts';
import type { MetaStore, PluginRow } from '../storage/meta.ts';

export const PLUGIN_NAME_RE = /^[a-zA-Z][a-zA-Z0-9_.]{0,127}[a-zA-Z0-9_]$/;
export const MAX_PLUGIN_BYTES = 20 * 1024 * 1024;

/** A zip file (jar) starts with "PK\x03\x04". */
const isJar = (b: Buffer): boolean => b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;

/**
 * Uploaded plugins: bytes under <dataDir>/plugins/<account>/, metadata in the
 * meta store. A jar is a Java plugin (class = plugin name); anything else must
 * be a JavaScript ES module that loads in the sandbox.
 */
export class PluginService {
  constructor(
    private readonly meta: MetaStore,
    private readonly dir: string,
    readonly js: JsPluginRuntime,
    readonly jvm: JvmPluginRuntime,
  ) {}

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

  /** Stores a plugin after checking its MD5 (base64 of the digest), size and that it loads. */
  async upload(account: string, name: string, body: Buffer, contentMd5?: string, contentLength?: number): Promise<PluginRow> {
    this.validName(name);
    if (this.meta.getPlugin(account, name)) throw new ApiError('E18217', name);
    if (body.length === 0) throw new ApiError('E18006');
    if (contentLength !== undefined && contentLength !== body.length) throw new ApiError('E18219', `Content-Length ${contentLength}, received ${body.length} bytes`);
    const md5 = createHash('md5').update(body).digest('base64');
    if (contentMd5 !== undefined && contentMd5 !== md5) throw new ApiError('E18220', `expected ${contentMd5}, content has ${md5}`);
    const kind = isJar(body) ? 'java' : 'js';
    const row: PluginRow = { name, kind, size: body.length, md5, createTime: new Date().toISOString() };
    const file = this.file(account, row);
    mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.upload-${process.pid}`;
    writeFileSync(tmp, body, { flag: 'w', mode: 0o600 });
    try {
      await this.verifyFile(row, tmp, body);
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

  private async verifyFile(row: PluginRow, file: string, body: Buffer): Promise<void> {
    try {
      if (row.kind === 'java') await this.jvm.verify(file, row.name);
      else await this.js.verify(body.toString('utf8'));
    } catch (err) {
      if (err instanceof PluginInvalidError || err instanceof PluginUnavailableError) throw new ApiError('E18617', err.message);
      throw err;
    }
  }

  /** Re-checks a stored plugin (POST /v2/verify/plugins/<name>). */
  async verify(account: string, name: string): Promise<PluginRow> {
    const p = this.must(account, name);
    const file = this.file(account, p);
    await this.verifyFile(p, file, readFileSync(file));
    return p;
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
