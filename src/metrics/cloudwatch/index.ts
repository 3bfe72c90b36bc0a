/**
 * The `cloudwatch:` metrics source: the built-in gates on an Application Load Balancer's own
 * per-target-group metrics through GetMetricData, for teams that run no Prometheus. See
 * metrics.ts (the measurements), queries.ts (what is sent) and dimensions.ts (whose series).
 *
 * Which series are a version's: with the `alb` router, deploy.yaml already names the load
 * balancer (in the listener ARN) and each version's target group (in its ARN), so by default they
 * are taken from there and the section may be empty (`cloudwatch: {}`). `loadBalancer` and
 * `targetGroups` name them when the router is not the ALB's, or to read another load balancer;
 * either takes a dimension value or the whole ARN.
 */
import type { PolicyStatement } from '../../aws/iam.js';
import type { MetricsSourceProvider } from '../../providers/provider.js';
import { albRouterOf, regionOfArn, resolveDimensions } from './dimensions.js';
import type { schema } from './section.js';

export type { CloudWatchConfig } from './section.js';

/** The ALB's namespace. */
export const ALB_NAMESPACE = 'AWS/ApplicationELB';
/** The ALB publishes a datapoint a minute. */
const DEFAULT_PERIOD_MS = 60_000;

/** The CloudWatch source's descriptor. */
export const cloudwatchMetrics: MetricsSourceProvider<typeof schema, 'cloudwatch'> = {
  section: 'cloudwatch',
  schema: () => import('./section.js').then((m) => m.schema),
  platforms: ['aws'],
  describe: (c) =>
    `CloudWatch ${c.namespace ?? ALB_NAMESPACE} metrics of ${c.loadBalancer ?? "the alb router's load balancer"}, by target group, per ${(c.period ?? DEFAULT_PERIOD_MS) / 1000}s`,
  iam(): PolicyStatement[] {
    // GetMetricData takes no resource ARN and no condition keys: IAM can grant it on '*' only.
    return [{ Sid: 'GateMetrics', Effect: 'Allow', Action: ['cloudwatch:GetMetricData'], Resource: '*' }];
  },
  async create(c, { config }) {
    const dimensions = resolveDimensions(c, config.router, Object.keys(config.versions));
    // The SDK loads only here, so commands that evaluate no gate never pay for it.
    const [{ SdkMetricDataReader }, { CloudWatchMetrics }] = await Promise.all([import('./client.js'), import('./metrics.js')]);
    // The aws: section (with --region, --profile, --endpoint-url) first; an alb router's own fields next.
    const alb = albRouterOf(config.router);
    const own = (key: 'region' | 'profile' | 'endpointUrl') => config.aws?.[key] ?? (typeof alb?.[key] === 'string' ? (alb[key] as string) : undefined);
    const region = own('region') ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? (typeof alb?.listenerArn === 'string' ? regionOfArn(alb.listenerArn) : undefined);
    const profile = own('profile');
    const endpointUrl = own('endpointUrl');
    const reader = new SdkMetricDataReader({ ...(region ? { region } : {}), ...(profile ? { profile } : {}), ...(endpointUrl ? { endpointUrl } : {}) });
    return new CloudWatchMetrics(reader, { namespace: c.namespace ?? ALB_NAMESPACE, dimensions, periodSeconds: (c.period ?? DEFAULT_PERIOD_MS) / 1000 });
  },
};
