import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { DatasourceService } from '../offline/datasources.ts';
import type { OfflineService } from '../offline/service.ts';
import { sendJson, specBody } from './http.ts';
import { sendList } from './list.ts';
import { datasourceSchemas } from './bodies.ts';

/** Offline datasources and schema inference. */
export async function datasourceRoutes(app: FastifyInstance, _ctx: AppContext, offline: OfflineService): Promise<void> {
  const { datasources, store } = offline;
  type P = { Params: { name: string } };

  app.post<P>('/v2/datasources/:name', datasourceSchemas.write, async (req, reply) => {
    await datasources.create(req.account, req.params.name, specBody(req));
    return reply.send();
  });
  app.put<P>('/v2/datasources/:name', datasourceSchemas.write, async (req, reply) => {
    await datasources.update(req.account, req.params.name, specBody(req));
    return reply.send();
  });
  app.get<P>('/v2/datasources/:name', datasourceSchemas.one, async (req, reply) => sendJson(reply, DatasourceService.view(datasources.must(req.account, req.params.name))));
  app.get<P>('/v2/datasources/:name/exists', datasourceSchemas.one, async (req, reply) => sendJson(reply, { exist: store.getDatasource(req.account, req.params.name) !== undefined }));
  app.get('/v2/datasources', datasourceSchemas.list, async (req, reply) =>
    sendList(req, reply, 'datasources', store.listDatasources(req.account), (d) => ({ name: d.name, ...DatasourceService.view(d) })));
  app.delete<P>('/v2/datasources/:name', datasourceSchemas.one, async (req, reply) => {
    datasources.delete(req.account, req.params.name);
    return reply.send();
  });

  app.post('/v2/schemas', datasourceSchemas.infer, async (req, reply) => {
    const body = specBody(req);
    return sendJson(reply, { schema: await datasources.infer(req.account, body.type, body.spec) });
  });
}
