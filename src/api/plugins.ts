import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import { afterMarker, listPage, sendPage } from './list.ts';
import type { PluginService } from '../services/plugins.ts';
import { parsePlugin } from '../transforms/spec.ts';
import { jsonBody, sendJson } from './http.ts';

const view = (p: { name: string; kind: string; size: number; md5: string; createTime: string }) => ({
  name: p.name, kind: p.kind, size: p.size, md5: p.md5, createTime: p.createTime,
});

/** Plugin upload (Content-MD5 checked), list, get, delete and verify. */
export async function pluginRoutes(app: FastifyInstance, ctx: AppContext & { plugins: PluginService }): Promise<void> {
  const { plugins } = ctx;

  app.post<{ Params: { name: string } }>('/v2/plugins/:name', { bodyLimit: plugins.maxBytes }, async (req, reply) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const md5 = req.headers['content-md5'];
    const len = req.headers['content-length'];
    await plugins.upload(req.account, req.params.name, body, typeof md5 === 'string' ? md5 : undefined, len === undefined ? undefined : Number(len));
    return reply.send();
  });

  app.get('/v2/plugins', async (req, reply) => {
    const page = listPage(req);
    return sendPage(reply, 'plugins', afterMarker(ctx.meta.listPlugins(req.account), page), page, view);
  });

  app.get<{ Params: { name: string } }>('/v2/plugins/:name', async (req, reply) => sendJson(reply, view(plugins.must(req.account, req.params.name))));

  app.delete<{ Params: { name: string } }>('/v2/plugins/:name', async (req, reply) => {
    plugins.delete(req.account, req.params.name);
    return reply.send();
  });

  // Checks a stored plugin against its contract. The SDK sends no body and reads
  // {"outputFields":[{name,type}]}: OutputData's fields for the official Java contract,
  // else the `output` given in the body (checked), else none.
  app.post<{ Params: { name: string } }>('/v2/verify/plugins/:name', async (req, reply) => {
    const body = jsonBody(req);
    const declared = body.output === undefined || body.output === null ? undefined : parsePlugin({ name: req.params.name, output: body.output }).output;
    const v = await plugins.verify(req.account, req.params.name, declared);
    return sendJson(reply, { outputFields: v.outputFields, name: v.row.name, kind: v.row.kind, contract: v.form });
  });
}
