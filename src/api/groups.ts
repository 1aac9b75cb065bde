import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { afterMarker, listPage, sendPage } from './list.ts';
import { ApiError } from '../errors.ts';
import type { GroupRow } from '../storage/meta.ts';
import { groupSlots, parseContainer } from '../services/capacity.ts';
import { jsonBody, NAME_RE, sendJson } from './http.ts';

function groupName(name: string): string {
  if (!NAME_RE.test(name)) throw new ApiError('E18221', `"${name.slice(0, 64)}" must match ^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`);
  return name;
}

const wireStatus = (g: GroupRow): string => (g.state === 'running' ? 'running' : 'idle');

/** Resource groups: capacity pools for transforms and exports. */
export async function groupRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { meta } = ctx;
  const must = (account: string, name: string): GroupRow => {
    const g = meta.getGroup(account, groupName(name));
    if (!g) throw new ApiError('E18120', name);
    return g;
  };
  const changed = (account: string, name: string): void => {
    for (const fn of ctx.hooks.groupStateChanged) fn(account, name);
  };

  app.post<{ Params: { name: string } }>('/v2/groups/:name', async (req, reply) => {
    const name = groupName(req.params.name);
    const body = jsonBody(req);
    const region = body.region ?? ctx.config.regions[0];
    if (typeof region !== 'string' || !ctx.config.regions.includes(region)) {
      throw new ApiError('E18212', `"${String(region)}"; this server serves ${ctx.config.regions.join(', ')}`);
    }
    const container = parseContainer(body.container);
    if (body.allocateOnStart !== undefined && typeof body.allocateOnStart !== 'boolean') {
      throw new ApiError('E18007', 'allocateOnStart must be a boolean');
    }
    const allocate = body.allocateOnStart === true;
    const now = new Date().toISOString();
    meta.tx(() => {
      if (meta.getGroup(req.account, name)) throw new ApiError('E18218', name);
      meta.insertGroup(req.account, {
        name, region, containerType: container.type, containerCount: container.count,
        allocateOnStart: allocate, state: allocate ? 'running' : 'idle', createTime: now, updateTime: now,
      });
    });
    return reply.send();
  });

  app.put<{ Params: { name: string } }>('/v2/groups/:name', async (req, reply) => {
    const body = jsonBody(req);
    const container = parseContainer(body.container);
    meta.tx(() => {
      const g = must(req.account, req.params.name);
      meta.updateGroup(req.account, { ...g, containerType: container.type, containerCount: container.count, updateTime: new Date().toISOString() });
    });
    changed(req.account, req.params.name);
    return reply.send();
  });

  app.get<{ Params: { name: string } }>('/v2/groups/:name', async (req, reply) => {
    const g = must(req.account, req.params.name);
    return sendJson(reply, {
      name: g.name,
      region: g.region,
      container: { type: g.containerType, count: g.containerCount, status: wireStatus(g) },
      allocateOnStart: g.allocateOnStart,
      slots: groupSlots(g),
      createTime: g.createTime,
      updateTime: g.updateTime,
    });
  });

  app.get('/v2/groups', async (req, reply) => {
    const page = listPage(req);
    return sendPage(reply, 'groups', afterMarker(meta.listGroups(req.account), page), page, (g) => ({
      name: g.name,
      region: g.region,
      container: { type: g.containerType, count: g.containerCount, status: wireStatus(g) },
      allocateOnStart: g.allocateOnStart,
      createTime: g.createTime,
      updateTime: g.updateTime,
    }));
  });

  app.delete<{ Params: { name: string } }>('/v2/groups/:name', async (req, reply) => {
    meta.tx(() => {
      must(req.account, req.params.name);
      if (meta.groupInUse(req.account, req.params.name)) throw new ApiError('E18215', `${req.params.name} is still used by repos or transforms`);
      meta.deleteGroup(req.account, req.params.name);
    });
    changed(req.account, req.params.name);
    return reply.send();
  });

  for (const action of ['start', 'stop'] as const) {
    app.post<{ Params: { name: string } }>(`/v2/groups/:name/actions/${action}`, async (req, reply) => {
      meta.tx(() => {
        const g = must(req.account, req.params.name);
        meta.updateGroup(req.account, { ...g, state: action === 'start' ? 'running' : 'stopped', updateTime: new Date().toISOString() });
      });
      changed(req.account, req.params.name);
      return reply.send();
    });
  }
}
