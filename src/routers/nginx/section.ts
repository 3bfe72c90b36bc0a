/** The `nginx` router's section of deploy.yaml, loaded only when a config is validated. */
import { z } from 'zod';
import { hostPort } from '../../config/fields.js';

export const schema = z.strictObject({
  type: z.literal('nginx'),
  listen: hostPort.meta({ description: 'Where nginx serves users' }),
  admin: hostPort.meta({ description: 'Loopback address of the routing admin endpoint' }),
  prefix: z.string().min(1).optional().meta({ description: 'Folder Cutover owns for nginx (default .deploy/nginx)' }),
  binary: z.string().min(1).optional(),
  modulesDir: z.string().min(1).optional(),
  workerProcesses: z.number().int().min(1).max(64).optional(),
  orgHeader: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be an HTTP header name').optional(),
  orgCookie: z.string().regex(/^[A-Za-z0-9_]+$/, 'must be a cookie name of letters, digits or _').optional(),
  orgFrom: z.enum(['header', 'cookie', 'signedCookie']).optional()
    .meta({ description: 'Where the org id is read: header (default; the cookie when the header is absent), cookie, or signedCookie (an HMAC-signed cookie set by your app or trusted proxy; forged or expired ones count as no org)' }),
  orgKeyEnv: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name').optional()
    .meta({ description: 'With orgFrom: signedCookie, the environment variable holding the HMAC key (default CUTOVER_ORG_KEY); the key is never written to deploy.yaml' }),
  exposeRoute: z.boolean().optional()
    .meta({ description: 'Answer every request with X-Cutover-Route: <version> g<generation> (default false: it tells the world your versions; the sandbox and tests turn it on)' }),
});

/** The nginx router section. */
export type NginxRouterConfig = z.output<typeof schema>;
