import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import type { ExportEngine } from '../exports/engine.ts';
import type { ExportService } from '../exports/service.ts';
import type { ExportRow } from '../storage/meta.ts';
import { sendJson, specBody } from './http.ts';
import { sendList } from './list.ts';
import { exportSchemas } from './bodies.ts';

type Ctx = AppContext & { exports: ExportService; exportEngine: ExportEngine };
type One = { Params: { repo: string; name: string } };

const view = (e: ExportRow) => ({ name: e.name, type: e.type, spec: e.spec, whence: e.whence, createTime: e.createTime, updateTime: e.updateTime });

/** Exports of a repo: create, get with status, list, update the spec, delete, exists, preview. */
export async function exportRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const { exports, exportEngine, meta } = ctx;

  app.post<One>('/v2/repos/:repo/exports/:name', exportSchemas.write, async (req, reply) => {
    await exports.create(req.account, req.params.repo, req.params.name, specBody(req));
    return reply.send();
  });

  app.get<One>('/v2/repos/:repo/exports/:name', exportSchemas.one, async (req, reply) => {
    const e = exports.must(req.account, req.params.repo, req.params.name);
    return sendJson(reply, { ...view(e), status: await exportEngine.status(req.account, e) });
  });

  app.get<One>('/v2/repos/:repo/exports/:name/exists', exportSchemas.one, async (req, reply) => {
    return sendJson(reply, { exist: meta.getExport(req.account, req.params.repo, req.params.name) !== undefined });
  });

  app.get<{ Params: { repo: string } }>('/v2/repos/:repo/exports', exportSchemas.list, async (req, reply) => {
    return sendList(req, reply, 'exports', exports.list(req.account, req.params.repo), view);
  });

  app.put<One>('/v2/repos/:repo/exports/:name', exportSchemas.update, async (req, reply) => {
    await exports.update(req.account, req.params.repo, req.params.name, specBody(req));
    return reply.send();
  });

  app.delete<One>('/v2/repos/:repo/exports/:name', exportSchemas.one, async (req, reply) => {
    await exports.delete(req.account, req.params.repo, req.params.name);
    return reply.send();
  });

  app.post<One>('/v2/repos/:repo/exports/:name/preview', exportSchemas.preview, async (req, reply) => {
    return sendJson(reply, await exports.preview(req.account, req.params.repo, req.params.name, specBody(req)));
  });
}
