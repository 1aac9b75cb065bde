import type { FastifyInstance } from 'fastify';
import { verifyBearer } from '../auth/bearer.ts';
import type { AppContext } from '../context.ts';
import { UNMATCHED_ROUTE } from '../telemetry/metrics.ts';

/** The data push route, whose refusals are counted by error code. */
const PUSH_ROUTE = '/v2/repos/:repo/data';

/**
 * Counts every answered request by route pattern (never the path, which holds
 * resource names), method and status class, and refused data pushes by
 * E-code. Registered on the root instance so it sees every route.
 */
export function registerRequestMetrics(app: FastifyInstance, ctx: AppContext): void {
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? UNMATCHED_ROUTE;
    ctx.metrics.request(route, req.method, reply.statusCode, reply.elapsedTime / 1000);
    if (reply.statusCode >= 400 && route === PUSH_ROUTE && req.method === 'POST') ctx.metrics.pushRefused(req.errorCode || String(reply.statusCode));
  });
}

/**
 * GET /metrics: the Prometheus text exposition for the operator. It spans
 * accounts, so it takes the operator's bearer token (metricsToken), not an
 * account signature; without a configured token it answers 404 like an
 * unknown route.
 */
export async function metricsRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get('/metrics', async (req, reply) => {
    const token = ctx.config.metricsToken;
    if (!token) return reply.callNotFound();
    verifyBearer(req.headers.authorization, token);
    const body = await ctx.metrics.scrape();
    return reply.header('content-type', ctx.metrics.contentType).header('cache-control', 'no-store').send(body);
  });
}
