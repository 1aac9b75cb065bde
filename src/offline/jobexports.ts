/**
 * Job export create/update/get/delete. The body is checked against the
 * job's result schema and stored as sent, so GET returns what the client
 * wrote; each run validates it again against the job as it is then.
 */
import { ApiError } from '../errors.ts';
import { checkName, type OfflineDeps } from './datasources.ts';
import { parseExportSpec } from './exportspec.ts';
import type { JobService } from './jobs.ts';
import { checkDefined } from './magic.ts';
import { bucketProblem, objectStoreFor } from '../objectstore/index.ts';
import { onS3 } from './s3sources.ts';
import type { JobExportRow } from './store.ts';

export class JobExportService {
  constructor(private readonly deps: OfflineDeps, private readonly jobs: JobService) {}

  must(account: string, job: string, name: string): JobExportRow {
    this.jobs.must(account, job);
    const e = this.deps.store.getExport(account, job, name);
    if (!e) throw new ApiError('E18611', `${job}/${name}`);
    return e;
  }

  private async check(account: string, job: string, type: unknown, spec: unknown): Promise<void> {
    const j = this.jobs.must(account, job);
    const { config } = this.deps;
    const parsed = parseExportSpec(config, this.deps.account(account), type, spec, j.spec.schema ?? []);
    if (parsed.type === 'kodo' && onS3(config)) {
      // On S3 buckets are made by the operator, not by the first upload: say so now rather than at the first run.
      const bad = bucketProblem(parsed.bucket as string);
      if (bad) throw new ApiError('E18651', bad);
      if (!(await objectStoreFor(config).bucketExists(parsed.bucket as string))) throw new ApiError('E18619', `bucket "${parsed.bucket}" does not exist at the S3 endpoint ${config.s3.endpoint}`);
    }
    const eff = this.jobs.effective(account, j);
    const known = new Set([...eff.params.map((p) => p.name), ...this.deps.store.listVariables(account).map((v) => v.name)]);
    checkDefined([parsed.keyPrefix], known, 'keyPrefix');
  }

  async create(account: string, job: string, name: string, body: Record<string, unknown>): Promise<void> {
    checkName(name, 'E18609');
    await this.check(account, job, body.type, body.spec);
    const now = new Date().toISOString();
    this.deps.store.tx(() => {
      if (this.deps.store.getExport(account, job, name)) throw new ApiError('E18610', `${job}/${name}`);
      this.deps.store.putExport(account, { job, name, type: String(body.type).toLowerCase(), spec: body.spec as Record<string, unknown>, createTime: now, updateTime: now });
    });
  }

  /** PUT changes the spec (the type stays). */
  async update(account: string, job: string, name: string, body: Record<string, unknown>): Promise<void> {
    const cur = this.must(account, job, name);
    if (body.type !== undefined && String(body.type).toLowerCase() !== cur.type) throw new ApiError('E18651', `type cannot change (${cur.type})`);
    await this.check(account, job, cur.type, body.spec);
    this.deps.store.putExport(account, { ...cur, spec: body.spec as Record<string, unknown>, updateTime: new Date().toISOString() });
  }

  delete(account: string, job: string, name: string): void {
    this.must(account, job, name);
    this.deps.store.deleteExport(account, job, name);
  }

  static view(e: JobExportRow): Record<string, unknown> {
    return { type: e.type, spec: e.spec, createTime: e.createTime, updateTime: e.updateTime };
  }
}
