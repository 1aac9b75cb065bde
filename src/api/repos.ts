import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.ts';
import type { RepoRow } from '../storage/meta.ts';
import { jsonBody, sendJson } from './http.ts';
import { listPage, sendPage } from './list.ts';

/** The wire shape of a repo (GET one, list entries). */
export function repoView(r: RepoRow): Record<string, unknown> {
  return {
    name: r.name,
    region: r.region,
    group: r.group ?? '',
    derivedFrom: r.derivedFrom ?? '',
    schema: r.schema,
    ...r.extra,
    createTime: r.createTime,
    updateTime: r.updateTime,
  };
}

/** Repos: create, read, list (optionally with lineage), update schema, delete, exists. */
export async function repoRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { repos, meta } = ctx;

  app.post<{ Params: { repo: string } }>('/v2/repos/:repo', async (req, reply) => {
    repos.create(req.account, req.params.repo, jsonBody(req));
    return reply.send();
  });

  app.get<{ Params: { repo: string } }>('/v2/repos/:repo', async (req, reply) => {
    const row = repos.must(req.account, req.params.repo);
    return sendJson(reply, { ...repoView(row), stats: await repos.stats(req.account, row) });
  });

  app.get<{ Params: { repo: string } }>('/v2/repos/:repo/exists', async (req, reply) => {
    return sendJson(reply, { exist: meta.getRepo(req.account, req.params.repo) !== undefined });
  });

  app.get<{ Querystring: { withDag?: string } }>('/v2/repos', async (req, reply) => {
    const withDag = req.query.withDag === 'true';
    const page = listPage(req);
    const rows = meta.listRepos(req.account, { after: page.marker, limit: page.limit + 1 });
    return sendPage(reply, 'repos', rows, page, (r) => {
      const view = repoView(r);
      if (!withDag) return view;
      // Lineage: what this repo came from and what hangs off it.
      const transforms = meta.listTransforms(req.account, r.name).map((t) => ({ name: t.name, to: t.destRepo }));
      const exports = meta.listExports(req.account, r.name).map((e) => ({ name: e.name, type: e.type }));
      const writer = meta.transformWriting(req.account, r.name);
      return {
        ...view,
        dag: {
          upstream: writer ? { repo: writer.repo, transform: writer.name } : null,
          transforms,
          exports,
        },
      };
    }, (r) => ({ ...repoView({ ...r, extra: {} }), error: 'stored options cannot be encoded' }));
  });

  app.put<{ Params: { repo: string } }>('/v2/repos/:repo', async (req, reply) => {
    repos.updateSchema(req.account, req.params.repo, jsonBody(req).schema);
    return reply.send();
  });

  app.delete<{ Params: { repo: string } }>('/v2/repos/:repo', async (req, reply) => {
    await repos.delete(req.account, req.params.repo);
    return reply.send();
  });
}
