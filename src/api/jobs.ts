import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { JobExportService } from '../offline/jobexports.ts';
import type { OfflineService } from '../offline/service.ts';
import type { HistoryQuery, RunRow } from '../offline/store.ts';
import { jsonBody, sendJson, specBody } from './http.ts';
import { LIST_MAX_ENTRIES, afterMarker, listPage, sendList, sendPage } from './list.ts';
import { jobSchemas } from './bodies.ts';

/** Reference spellings of statuses (Success, Fail, Cancel) -> the official ones. */
const STATUS_ALIASES: Record<string, string> = {
  ready: 'Ready', running: 'Running', success: 'Successful', successful: 'Successful', fail: 'Failed', failed: 'Failed',
  cancel: 'Canceled', canceled: 'Canceled', cancelled: 'Canceled', cancelling: 'Cancelling', restarting: 'Restarting',
};
const SORTS = ['runId', 'batchTime', 'startTime', 'endTime', 'duration'] as const;

function intParam(v: unknown, name: string, def: number, min: number, max: number): number {
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new ApiError('E18007', `${name} must be an integer from ${min} to ${max}`);
  return n;
}

/** History query string -> HistoryQuery (reference `order=asc|desc`, SDK `sortBy=-endTime`). */
export function historyQuery(q: Record<string, string | undefined>): HistoryQuery {
  let sortBy = q.sortBy ?? 'runId';
  let desc = true;
  if (sortBy.startsWith('-')) sortBy = sortBy.slice(1);
  else if (q.sortBy !== undefined) desc = false;
  if (q.order !== undefined) {
    if (q.order !== 'asc' && q.order !== 'desc') throw new ApiError('E18007', 'order must be asc or desc');
    desc = q.order === 'desc';
  }
  const sort = SORTS.find((s) => s.toLowerCase() === sortBy.toLowerCase() || (sortBy === 'id' && s === 'runId'));
  if (!sort) throw new ApiError('E18007', `sortBy must be one of ${SORTS.join(', ')}`);
  let status: string | undefined;
  if (q.status) {
    status = STATUS_ALIASES[q.status.toLowerCase()];
    if (!status) throw new ApiError('E18007', `status must be one of Ready, Running, Successful, Failed, Canceled, Cancelling, Restarting`);
  }
  const rid = q.runId ?? q.runid;
  return {
    sortBy: sort, desc, status,
    runId: rid === undefined || rid === '' ? undefined : intParam(rid, 'runId', -1, -1, Number.MAX_SAFE_INTEGER),
    page: intParam(q.page, 'page', 1, 1, 1_000_000),
    size: intParam(q.size, 'size', 20, 1, 1000),
  };
}

const iso = (ms: number | null): string => (ms === null ? '' : new Date(ms).toISOString());

/** A history entry; a running batch's endTime is now. */
export function historyEntry(r: RunRow, now: number): Record<string, unknown> {
  const end = r.endTime ?? (r.status === 'Running' || r.status === 'Cancelling' ? now : null);
  return {
    id: r.runId, runId: r.runId, batchTime: iso(r.batchTime), startTime: iso(r.startTime), endTime: iso(end),
    duration: r.startTime !== null && end !== null ? Math.round((end - r.startTime) / 1000) : 0,
    status: r.status, message: r.message, rerunCount: r.rerunCount, params: r.params,
  };
}

/** Parses a backfill bound: RFC 3339 text or epoch milliseconds. */
function instant(v: unknown, name: string): number {
  const ms = typeof v === 'number' ? v : typeof v === 'string' ? Date.parse(v) : NaN;
  if (!Number.isFinite(ms)) throw new ApiError('E18614', `${name} must be an RFC 3339 time (2026-01-01T00:00:00Z) or epoch milliseconds`);
  return ms;
}

/** Offline jobs, their exports, runs and history. */
export async function jobRoutes(app: FastifyInstance, _ctx: AppContext, offline: OfflineService): Promise<void> {
  const { jobs, store, scheduler, exports } = offline;
  type P = { Params: { name: string } };
  type PE = { Params: { name: string; exp: string } };

  app.post<P>('/v2/jobs/:name', jobSchemas.write, async (req, reply) => {
    await offline.createJob(req.account, req.params.name, specBody(req));
    return reply.send();
  });
  app.put<P>('/v2/jobs/:name', jobSchemas.write, async (req, reply) => {
    await offline.replaceJob(req.account, req.params.name, specBody(req));
    return reply.send();
  });
  app.get<P>('/v2/jobs/:name', jobSchemas.one, async (req, reply) => {
    const j = jobs.must(req.account, req.params.name);
    const next = scheduler.nextBatch(req.account, j.name);
    const last = store.latestRun(req.account, j.name);
    return sendJson(reply, {
      ...jobs.view(req.account, j),
      ...(next !== undefined ? { nextBatchTime: iso(next) } : {}),
      ...(last ? { lastRun: historyEntry(last, scheduler.now()) } : {}),
    });
  });
  app.get<P>('/v2/jobs/:name/exists', jobSchemas.one, async (req, reply) => sendJson(reply, { exist: store.getJob(req.account, req.params.name) !== undefined }));
  app.get<P>('/v2/jobs/:name/schema', jobSchemas.one, async (req, reply) => {
    const j = jobs.must(req.account, req.params.name);
    return sendJson(reply, { schema: (j.spec.schema ?? []).map((f) => ({ key: f.key, valtype: f.valtype })) });
  });
  app.delete<P>('/v2/jobs/:name', jobSchemas.one, async (req, reply) => {
    await offline.deleteJob(req.account, req.params.name);
    return reply.send();
  });
  app.get<{ Querystring: Record<string, string | undefined> }>('/v2/jobs', jobSchemas.list, async (req, reply) => {
    const q = req.query;
    const ds = q.srcDatasource ?? q.parentRepo;
    const jb = q.srcJob ?? q.parentJob;
    if (ds && jb) throw new ApiError('E18007', 'give srcDatasource (parentRepo) or srcJob (parentJob), not both');
    let list = store.listJobs(req.account);
    if (ds) list = list.filter((j) => j.spec.srcs.some((s) => s.type === 'datasource' && s.name === ds));
    if (jb) list = list.filter((j) => j.spec.srcs.some((s) => s.type === 'job' && s.name === jb));
    const jobView = (j: (typeof list)[number]) => ({ name: j.name, ...jobs.view(req.account, j) });
    // `?marker=` pages by name (as every list); page/size keep working for the reference clients.
    // Either way one answer holds at most LIST_MAX_ENTRIES jobs and about LIST_MAX_BYTES of JSON.
    if (q.marker !== undefined || q.limit !== undefined) {
      const p = listPage(req);
      return sendPage(reply, 'jobs', afterMarker(list, p), p, jobView, undefined, { total: list.length });
    }
    const size = intParam(q.size, 'size', LIST_MAX_ENTRIES, 1, LIST_MAX_ENTRIES);
    const page = intParam(q.page, 'page', 1, 1, 1_000_000);
    const slice = list.slice((page - 1) * size, page * size);
    return sendPage(reply, 'jobs', slice, { limit: size, marker: '' }, jobView, undefined, { total: list.length });
  });

  app.post<P>('/v2/jobs/:name/actions/start', jobSchemas.start, async (req, reply) => {
    offline.startJob(req.account, req.params.name, specBody(req));
    return reply.send();
  });
  app.post<P>('/v2/jobs/:name/actions/stop', jobSchemas.one, async (req, reply) => {
    jobs.must(req.account, req.params.name);
    await scheduler.stopJob(req.account, req.params.name);
    return reply.send();
  });
  app.post<P>('/v2/jobs/:name/actions/backfill', jobSchemas.backfill, async (req, reply) => {
    const job = jobs.must(req.account, req.params.name);
    const body = jsonBody(req);
    const from = instant(body.from, 'from');
    const to = instant(body.to, 'to');
    if (to < from) throw new ApiError('E18614', 'to must not be before from');
    const runs = scheduler.backfill(req.account, job, from, to);
    return sendJson(reply, { runs: runs.map((r) => ({ runId: r.runId, batchTime: iso(r.batchTime) })) });
  });
  app.get<P & { Querystring: Record<string, string | undefined> }>('/v2/jobs/:name/history', jobSchemas.history, async (req, reply) => {
    jobs.must(req.account, req.params.name);
    const h = store.history(req.account, req.params.name, historyQuery(req.query));
    const now = scheduler.now();
    return sendJson(reply, { total: h.total, history: h.runs.map((r) => historyEntry(r, now)) });
  });

  app.post<PE>('/v2/jobs/:name/exports/:exp', jobSchemas.exportWrite, async (req, reply) => {
    await exports.create(req.account, req.params.name, req.params.exp, specBody(req));
    return reply.send();
  });
  app.put<PE>('/v2/jobs/:name/exports/:exp', jobSchemas.exportWrite, async (req, reply) => {
    await exports.update(req.account, req.params.name, req.params.exp, specBody(req));
    return reply.send();
  });
  app.get<PE>('/v2/jobs/:name/exports/:exp', jobSchemas.exportOne, async (req, reply) => sendJson(reply, JobExportService.view(exports.must(req.account, req.params.name, req.params.exp))));
  app.get<PE>('/v2/jobs/:name/exports/:exp/exists', jobSchemas.exportOne, async (req, reply) => sendJson(reply, { exist: store.getExport(req.account, req.params.name, req.params.exp) !== undefined }));
  app.get<P>('/v2/jobs/:name/exports', jobSchemas.exportList, async (req, reply) => {
    jobs.must(req.account, req.params.name);
    return sendList(req, reply, 'exports', store.listExports(req.account, req.params.name), (e) => ({ name: e.name, ...JobExportService.view(e) }));
  });
  app.delete<PE>('/v2/jobs/:name/exports/:exp', jobSchemas.exportOne, async (req, reply) => {
    exports.delete(req.account, req.params.name, req.params.exp);
    return reply.send();
  });
}
