/**
 * The `alb` router: weights between target groups on an Application Load Balancer listener (its
 * default action or one rule) and org pins as listener rules. See router.ts.
 */
import type { PolicyStatement } from '../../aws/iam.js';
import type { RouterProvider } from '../../providers/provider.js';
import { albStatements } from './policy.js';
import type { schema, AlbRouterConfig } from './section.js';

export type { AlbRouterConfig } from './section.js';

/** The alb router's descriptor. */
export const albRouter: RouterProvider<typeof schema> = {
  type: 'alb',
  schema: () => import('./section.js').then((m) => m.schema),
  platforms: ['aws'],
  validate(r, config, issue) {
    for (const key of ['region', 'profile', 'endpointUrl'] as const) {
      if (r[key] !== undefined && config.aws?.[key] !== undefined && r[key] !== config.aws[key]) issue(['router', key], `is ${r[key]} while aws.${key} is ${config.aws[key]}: set it in one place`);
    }
    for (const v of Object.keys(config.versions)) {
      if (!r.targetGroups[v]) issue(['router', 'targetGroups'], `needs the target group ARN of version ${v}`);
    }
    for (const v of Object.keys(r.targetGroups)) {
      if (!(v in config.versions)) issue(['router', 'targetGroups', v], `is not a version listed under versions: (${Object.keys(config.versions).join(', ')})`);
    }
  },
  iam(r, config): PolicyStatement[] {
    return albStatements(r, config);
  },
  async create(r, { config, leaseMs, report }) {
    // The AWS SDK loads only here, so commands without an ALB never pay for it.
    const { createAlbRouter } = await import('./config.js');
    return createAlbRouter(withConnection(r, config.aws), config.service, process.env, leaseMs, config.orgs !== undefined, report);
  },
};

/**
 * The router section with the connection of the `aws:` section, which also carries the
 * --region, --profile and --endpoint-url flags, so those win over the section's own fields.
 */
export function withConnection(r: AlbRouterConfig, aws: { region?: string | undefined; profile?: string | undefined; endpointUrl?: string | undefined } | undefined): AlbRouterConfig {
  const region = aws?.region ?? r.region;
  const profile = aws?.profile ?? r.profile;
  const endpointUrl = aws?.endpointUrl ?? r.endpointUrl;
  return { ...r, ...(region ? { region } : {}), ...(profile ? { profile } : {}), ...(endpointUrl ? { endpointUrl } : {}) };
}
