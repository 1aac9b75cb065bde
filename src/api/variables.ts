import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import type { OfflineService } from '../offline/service.ts';
import { sendJson, specBody } from './http.ts';
import { afterMarker, listPage, sendPage } from './list.ts';
import { variableSchemas } from './bodies.ts';

/** User variables for offline jobs (`$(name)`). */
export async function variableRoutes(app: FastifyInstance, _ctx: AppContext, offline: OfflineService): Promise<void> {
  const { variables } = offline;
  type P = { Params: { name: string } };
  app.post<P>('/v2/variables/:name', variableSchemas.write, async (req, reply) => {
    variables.create(req.account, req.params.name, specBody(req));
    return reply.send();
  });
  app.put<P>('/v2/variables/:name', variableSchemas.write, async (req, reply) => {
    variables.update(req.account, req.params.name, specBody(req));
    return reply.send();
  });
  app.get<P>('/v2/variables/:name', variableSchemas.one, async (req, reply) => sendJson(reply, variables.must(req.account, req.params.name)));
  app.delete<P>('/v2/variables/:name', variableSchemas.one, async (req, reply) => {
    variables.delete(req.account, req.params.name);
    return reply.send();
  });
  app.get<{ Querystring: { type?: string } }>('/v2/variables', variableSchemas.list, async (req, reply) => {
    const type = req.query.type;
    if (type !== undefined && type !== 'system' && type !== 'user') throw new ApiError('E18007', 'type must be system or user');
    // The system variables come first on the first page, in their documented order; user ones are paged by name.
    const all = variables.list(req.account, type) as Array<{ name: string; type: string }>;
    const page = listPage(req);
    const system = page.marker ? [] : all.filter((v) => v.type === 'system');
    const rows = [...system, ...afterMarker(all.filter((v) => v.type !== 'system'), page)];
    return sendPage(reply, 'variables', rows, { ...page, limit: page.limit + system.length }, (v) => v);
  });
}
