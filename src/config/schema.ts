/**
 * The schema of deploy.yaml, written once with zod: it validates the file, types the result and
 * generates the JSON Schema that `deploy schema` prints for editors.
 */
import { z } from 'zod';
import { parseDuration } from './units.js';

/** Version and service names: safe in file names, nginx upstream names and label values. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const name = (what: string) =>
  z.string().regex(NAME_PATTERN, `must be a ${what} name: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`);

const duration = z
  .union([z.string(), z.literal(0)])
  .transform((value, ctx) => {
    const ms = typeof value === 'number' ? 0 : parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `must be a duration with a unit, like 30s, 10m or 1h30m (got "${value}")` });
      return z.NEVER;
    }
    return ms;
  })
  .meta({ description: 'A duration: 500ms, 30s, 10m, 1h30m', examples: ['30m'] });

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'must be host:port, like 127.0.0.1:9001');

const step = z.strictObject({
  weight: z.number().min(0, 'must be between 0 and 100').max(100, 'must be between 0 and 100')
    .meta({ description: 'Share of traffic on the candidate, in percent' }),
  hold: duration.optional().meta({ description: 'How long to hold at this weight with gates checked' }),
  pause: z.boolean().optional().meta({ description: 'After the hold, wait for `deploy promote`' }),
});

const canary = z
  .strictObject({
    steps: z.array(step).min(1, 'must list at least one step').optional(),
    defaultHold: duration.optional().meta({ description: 'Hold for steps that give none (default 10m)' }),
    checkInterval: duration.optional().meta({ description: 'How often a driver wakes during a hold (default 10s)' }),
  })
  .superRefine((c, ctx) => {
    c.steps?.forEach((s, i) => {
      const prev = c.steps![i - 1];
      if (prev && s.weight <= prev.weight) {
        ctx.addIssue({
          code: 'custom',
          path: ['steps', i, 'weight'],
          message: `must be greater than the previous step (${prev.weight})`,
        });
      }
    });
  });

const version = z.strictObject({
  endpoints: z.array(hostPort).min(1, 'must list at least one endpoint')
    .meta({ description: 'host:port of the servers running this version (nginx upstream)' }),
});

const nginxRouter = z.strictObject({
  type: z.literal('nginx'),
  listen: hostPort.meta({ description: 'Where nginx serves users' }),
  admin: hostPort.meta({ description: 'Loopback address of the routing admin endpoint' }),
  prefix: z.string().min(1).optional().meta({ description: 'Folder Cutover owns for nginx (default .deploy/nginx)' }),
  binary: z.string().min(1).optional(),
  modulesDir: z.string().min(1).optional(),
  workerProcesses: z.number().int().min(1).max(64).optional(),
  orgHeader: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be an HTTP header name').optional(),
  orgCookie: z.string().regex(/^[A-Za-z0-9_]+$/, 'must be a cookie name of letters, digits or _').optional(),
});

const noRouter = z.strictObject({ type: z.literal('none') });

const localState = z.strictObject({
  type: z.literal('local'),
  dir: z.string().min(1).optional().meta({ description: 'Folder for state, lock and audit log (default .deploy)' }),
  lease: duration.optional().meta({ description: 'Driver lock lease (default 30s)' }),
});

/** The whole deploy.yaml. */
export const configSchema = z
  .strictObject({
    service: name('service'),
    stable: name('version').meta({ description: 'The version serving users before the first rollout' }),
    versions: z.record(name('version'), version).refine((v) => Object.keys(v).length >= 1, 'must list at least one version'),
    router: z.discriminatedUnion('type', [nginxRouter, noRouter], {
      error: (issue) =>
        issue.code === 'invalid_union'
          ? `must be one of: nginx, none (got ${JSON.stringify((issue.input as { type?: unknown } | undefined)?.type ?? null)})`
          : undefined,
    }),
    state: localState.optional(),
    strategy: z.strictObject({ canary: canary.optional() }).optional(),
  })
  .superRefine((c, ctx) => {
    if (!(c.stable in c.versions)) {
      ctx.addIssue({
        code: 'custom',
        path: ['stable'],
        message: `must be one of the versions listed under versions: (${Object.keys(c.versions).join(', ')})`,
      });
    }
  });

/** deploy.yaml as written (durations still strings). */
export type ConfigInput = z.input<typeof configSchema>;
/** deploy.yaml validated, durations in milliseconds. */
export type Config = z.output<typeof configSchema>;
/** The nginx router section. */
export type NginxRouterConfig = z.output<typeof nginxRouter>;

/** JSON Schema of deploy.yaml (input form), for editors. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
