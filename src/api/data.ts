import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.ts';
import { ApiError } from '../errors.ts';
import { decodeTags } from '../ingest/points.ts';
import { sendJson } from './http.ts';

const gunzipAsync = promisify(gunzip);

/** The request body, gunzipped when sent so (bounded); UTF-8 is checked where it is parsed. */
async function bodyBytes(req: FastifyRequest, maxBytes: number): Promise<Buffer> {
  if (!Buffer.isBuffer(req.body) || req.body.length === 0) throw new ApiError('E18006');
  let body: Buffer = req.body;
  const enc = String(req.headers['content-encoding'] ?? '').toLowerCase();
  if (enc === 'gzip') {
    try {
      body = await gunzipAsync(body, { maxOutputLength: maxBytes });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new ApiError('E18005', `decompressed body exceeds ${maxBytes} bytes`);
      throw new ApiError('E18125', (err as Error).message);
    }
    if (body.length === 0) throw new ApiError('E18006');
  } else if (enc !== '' && enc !== 'identity') {
    throw new ApiError('E18007', `unsupported Content-Encoding "${enc.slice(0, 32)}"`);
  }
  return body;
}

/** Data push (text point format) and the sample read of the newest points. */
export async function dataRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.post<{ Params: { repo: string }; Querystring: { tags?: string } }>(
    '/v2/repos/:repo/data',
    async (req, reply) => {
      // Check the repo before the body so a wrong name answers E18102 even for a bad body;
      // push() looks it up again after the (async) gunzip, so a repo deleted meanwhile is not written.
      ctx.repos.must(req.account, req.params.repo);
      const raw = await bodyBytes(req, ctx.config.maxBodyBytes);
      const tags = req.query.tags ? decodeTags(req.query.tags) : undefined;
      await ctx.repos.pushBody(req.account, req.params.repo, raw, tags);
      return reply.send();
    },
  );

  app.get<{ Params: { repo: string }; Querystring: { count?: string } }>('/v2/repos/:repo/data', async (req, reply) => {
    const raw = req.query.count ?? '10';
    const count = Number(raw);
    if (!Number.isInteger(count) || count < 1 || count > 10) throw new ApiError('E18007', 'count must be an integer from 1 to 10');
    const records = await ctx.repos.sample(req.account, req.params.repo, count);
    return sendJson(reply, { records });
  });
}
