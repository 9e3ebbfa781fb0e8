import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';
import { HeraldError } from '../../errors.js';
import type { RouteContext } from './context.js';

/** The minified @herald/client bundle, or null when it was not built. */
function readClientBundle(): Buffer | null {
  try {
    return readFileSync(createRequire(import.meta.url).resolve('@herald/client/bundle'));
  } catch {
    return null;
  }
}

/** The files of the dashboard page, served at /dashboard/<file>. */
const DASHBOARD_ASSETS = new Set(['dashboard.js', 'dashboard.css', 'rate.js', 'style.css']);

/** Pages and files: the operations dashboard, the browser SDK (`/client.js`), and the demo pages at `/` when on. */
export function assetRoutes(app: FastifyInstance, { herald }: RouteContext, options: { demoDir: string | null; dashboardDir: string | null }): void {
  // The operations dashboard: a page of the product, served whatever `demo`
  // says. Its figures come from the guarded API above, so it shows nothing to
  // a caller the API would refuse.
  const { dashboardDir } = options;
  if (dashboardDir) {
    app.get('/dashboard', async (_request, reply) => reply.sendFile('dashboard.html', dashboardDir));
    app.get('/dashboard/:file', async (request, reply) => {
      const { file } = request.params as { file: string };
      if (!DASHBOARD_ASSETS.has(file)) throw new HeraldError('not_found', `no route GET /dashboard/${file}`);
      return reply.sendFile(file, dashboardDir);
    });
  } else {
    app.get('/dashboard', async () => {
      throw new HeraldError('not_found', 'the dashboard page is not installed (the demo/ folder of the Herald checkout is missing)');
    });
  }

  // The browser SDK as one ES module: `import { HeraldClient } from 'https://herald.example/client.js'`.
  // A module script from another origin (or a file:// page, origin "null")
  // loads only with CORS: the bundle is public code, readable by any origin.
  const clientBundle = readClientBundle();
  app.get('/client.js', async (_request, reply) => {
    reply.header('access-control-allow-origin', '*').header('cross-origin-resource-policy', 'cross-origin');
    if (!clientBundle) return reply.status(404).send({ ok: false, error: { code: 'not_found', message: 'the client bundle is not built: run npm run build' } });
    return reply.header('content-type', 'text/javascript; charset=utf-8').header('cache-control', 'public, max-age=300').send(clientBundle);
  });

  // reply.sendFile for the dashboard; the demo pages' folder is served at `/` only with demo.enabled.
  const staticRoot = options.demoDir ?? dashboardDir;
  if (staticRoot) app.register(fastifyStatic, { root: staticRoot, serve: false });
  if (options.demoDir) {
    app.register(fastifyStatic, { root: options.demoDir, prefix: '/', index: 'index.html', decorateReply: false });
  } else {
    app.get('/', async () => ({ name: 'herald', ok: true, websocket: herald.config.wsPath }));
  }

}
