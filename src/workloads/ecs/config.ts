/**
 * The `ecs` workload built from its section and the `aws:` connection (region, profile, endpoint,
 * with the --region, --profile and --endpoint-url flags already applied). Loaded only by
 * `create`, so the ECS SDK is paid for only by the commands that drive a rollout.
 */
import type { AwsConnection } from '../../aws/connection.js';
import { boundsForLease } from '../../aws/call.js';
import { UsageError } from '../../errors.js';
import type { ProviderEvent } from '../../providers/provider.js';
import { SdkEcsClient, type EcsClientOptions } from './client.js';
import type { EcsWorkloadConfig } from './index.js';
import { EcsWorkload } from './workload.js';

/** How long a deployment may stay in progress when neither the section nor the strategy says. */
export const DEFAULT_DEADLINE_MS = 5 * 60_000;

/**
 * The region to call: aws.region, else AWS_REGION / AWS_DEFAULT_REGION, else the cluster ARN's,
 * else the profile's (the SDK finds it). A cluster given by ARN lives in one region, so another
 * is a config error (exit 2) rather than a "not found" from the wrong endpoint.
 */
export function ecsRegion(cluster: string, aws: AwsConnection | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const own = cluster.startsWith('arn:') ? cluster.split(':')[3] : undefined;
  const chosen = aws?.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? own;
  if (own && chosen !== own) {
    const from = aws?.region ? 'aws.region' : env.AWS_REGION ? 'AWS_REGION' : 'AWS_DEFAULT_REGION';
    throw new UsageError(`${from} is ${chosen}, but the cluster ${cluster} is in ${own}`, `set aws.region to ${own} (or unset ${from})`);
  }
  return chosen;
}

/** The client's options: where to call, each attempt bounded well inside the driver's lease. */
export function ecsClientOptions(w: EcsWorkloadConfig, aws: AwsConnection | undefined, leaseMs?: number, env: NodeJS.ProcessEnv = process.env): EcsClientOptions {
  const region = ecsRegion(w.cluster, aws, env);
  return {
    ...(region ? { region } : {}),
    ...(aws?.profile ? { profile: aws.profile } : {}),
    ...(aws?.endpointUrl ? { endpointUrl: aws.endpointUrl } : {}),
    ...boundsForLease(leaseMs),
  };
}

/** What the workload is built from besides its section. */
export interface EcsContext {
  aws: AwsConnection | undefined;
  /** Image of each version. */
  images: Record<string, string | undefined>;
  /** deploy.yaml's `stable`. */
  stable: string;
  /** The strategy's readiness deadline (blueGreen.healthTimeout), when the section sets none. */
  strategyDeadlineMs: number | undefined;
  leaseMs?: number;
  clock: () => number;
  report?: (event: ProviderEvent) => void;
}

/** The workload over the real ECS API. */
export function createEcsWorkload(w: EcsWorkloadConfig, ctx: EcsContext, env: NodeJS.ProcessEnv = process.env): EcsWorkload {
  const { report } = ctx;
  // Every retry of a throttled or failed call is told, so a slow step is never a silent one.
  const onRetry = report ? (operation: string, error: Error, delayMs: number) => report({ event: 'retry', provider: 'ecs', operation, error: error.message.split('\n')[0]!.slice(0, 200), delayMs: Math.round(delayMs) }) : undefined;
  const client = new SdkEcsClient(ecsClientOptions(w, ctx.aws, ctx.leaseMs, env), undefined, onRetry);
  return new EcsWorkload(
    {
      cluster: w.cluster,
      services: w.services,
      images: ctx.images,
      ...(w.container ? { container: w.container } : {}),
      deadlineMs: w.deadline ?? ctx.strategyDeadlineMs ?? DEFAULT_DEADLINE_MS,
      stable: ctx.stable,
      clock: ctx.clock,
    },
    client,
  );
}
