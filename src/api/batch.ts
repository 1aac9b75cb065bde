import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import type { OfflineService } from '../offline/service.ts';
import { jsonBody, sendJson } from './http.ts';
import { batchSchema } from './bodies.ts';

/** `{jobName, runId}` with runId a number or a numeric string (docs quote it, the SDK sends a number). */
function target(body: Record<string, unknown>): { job: string; runId: number } {
  if (typeof body.jobName !== 'string' || body.jobName === '') throw new ApiError('E18007', 'jobName is required');
  const runId = typeof body.runId === 'string' ? Number(body.runId) : body.runId;
  if (typeof runId !== 'number' || !Number.isInteger(runId) || runId < 1) throw new ApiError('E18007', 'runId must be a positive integer (number or string)');
  return { job: body.jobName, runId };
}

/** Stop and rerun of one batch of an offline job. */
export async function batchRoutes(app: FastifyInstance, _ctx: AppContext, offline: OfflineService): Promise<void> {
  app.post('/v2/batch/actions/stop', batchSchema, async (req, reply) => {
    const t = target(jsonBody(req));
    offline.jobs.must(req.account, t.job);
    return sendJson(reply, await offline.scheduler.stopRun(req.account, t.job, t.runId));
  });
  app.post('/v2/batch/actions/rerun', batchSchema, async (req, reply) => {
    const t = target(jsonBody(req));
    offline.jobs.must(req.account, t.job);
    return sendJson(reply, offline.scheduler.rerun(req.account, t.job, t.runId));
  });
}
