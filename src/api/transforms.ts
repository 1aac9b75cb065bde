import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import type { TransformRow } from '../storage/meta.ts';
import type { TransformRunner } from '../transforms/runner.ts';
import type { TransformService } from '../transforms/service.ts';
import { afterMarker, listPage, sendPage } from './list.ts';
import { sendJson, specBody } from './http.ts';

type Ctx = AppContext & { transforms: TransformService; runner: TransformRunner };

/** Streaming transforms of a repo: create (to a destination), get with status, list, update, delete, exists. */
export async function transformRoutes(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const { transforms, runner, meta } = ctx;
  const view = async (account: string, t: TransformRow) => ({
    name: t.name,
    to: t.destRepo,
    spec: t.spec,
    createTime: t.createTime,
    updateTime: t.updateTime,
    status: await runner.status(account, t),
  });

  app.post<{ Params: { repo: string; name: string; dest: string } }>('/v2/repos/:repo/transforms/:name/to/:dest', async (req, reply) => {
    await transforms.create(req.account, req.params.repo, req.params.name, req.params.dest, specBody(req));
    return reply.send();
  });

  app.get<{ Params: { repo: string; name: string } }>('/v2/repos/:repo/transforms/:name', async (req, reply) => {
    const t = transforms.must(req.account, req.params.repo, req.params.name);
    void reply.header('Transform-Type', `application/${t.spec.code ? 'sql' : 'plugin'}`);
    return sendJson(reply, await view(req.account, t));
  });

  app.get<{ Params: { repo: string; name: string } }>('/v2/repos/:repo/transforms/:name/exists', async (req, reply) => {
    return sendJson(reply, { exist: meta.getTransform(req.account, req.params.repo, req.params.name) !== undefined });
  });

  app.get<{ Params: { repo: string } }>('/v2/repos/:repo/transforms', async (req, reply) => {
    ctx.repos.must(req.account, req.params.repo);
    const page = listPage(req);
    const rows = afterMarker(meta.listTransforms(req.account, req.params.repo), page);
    const views = new Map(await Promise.all(rows.slice(0, page.limit).map(async (t) => [t.name, await view(req.account, t)] as const)));
    return sendPage(reply, 'transforms', rows, page, (t) => views.get(t.name));
  });

  app.put<{ Params: { repo: string; name: string } }>('/v2/repos/:repo/transforms/:name', async (req, reply) => {
    await transforms.update(req.account, req.params.repo, req.params.name, specBody(req));
    return reply.send();
  });

  app.delete<{ Params: { repo: string; name: string } }>('/v2/repos/:repo/transforms/:name', async (req, reply) => {
    await transforms.delete(req.account, req.params.repo, req.params.name);
    return reply.send();
  });
}
