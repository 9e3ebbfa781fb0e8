import type { FastifyInstance } from 'fastify';
import type { HttpMetrics, RouteContext } from './context.js';

/** Operations: liveness (`/healthz`), readiness (`/readyz`: 503 while the broker is not ready or the node drains) and Prometheus metrics (`/metrics`, guarded). */
export function opsRoutes(app: FastifyInstance, { herald, guard }: RouteContext, metrics: HttpMetrics): void {
  app.get('/healthz', async () => ({ ok: true }));

  app.get('/readyz', async (_request, reply) => {
    if (herald.ready) return { ok: true, broker: herald.broker.state };
    const why = herald.closing ? 'shutting down' : `broker is ${herald.broker.state}`;
    return reply.status(503).send({ ok: false, error: { code: 'unavailable', message: why } });
  });

  app.get('/metrics', { onRequest: guard }, async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

}
