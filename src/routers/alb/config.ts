/**
 * The `alb` router built from its config section: the region it talks to, the profile and
 * endpoint, and the options the router needs. Credentials are never configured here: the AWS
 * SDK's default provider chain finds them (environment, shared profiles, SSO, web identity,
 * container and instance roles).
 */
import type { ProviderEvent } from '../../providers/provider.js';
import type { AlbRouterConfig } from './index.js';
import { UsageError } from '../../errors.js';
import { ALB_REQUEST_TIMEOUT_MS, SdkAlbClient, type AlbClientOptions, type RuleCondition } from './client.js';
import { AlbRouter, type AlbRouterOptions } from './router.js';

/** The region of an ELBv2 ARN (`arn:aws:elasticloadbalancing:<region>:…`). */
export function arnRegion(arn: string): string {
  return arn.split(':')[3] ?? '';
}

/**
 * The region to call: router.region, else AWS_REGION / AWS_DEFAULT_REGION, else the listener
 * ARN's. A listener lives in exactly one region, so any other one is a config error (exit 2)
 * rather than a "not found" from the wrong endpoint.
 */
export function albRegion(r: Pick<AlbRouterConfig, 'region' | 'listenerArn'>, env: NodeJS.ProcessEnv = process.env): string {
  const own = arnRegion(r.listenerArn);
  const chosen = r.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? own;
  if (chosen !== own) {
    const from = r.region ? 'router.region' : env.AWS_REGION ? 'AWS_REGION' : 'AWS_DEFAULT_REGION';
    throw new UsageError(`${from} is ${chosen}, but the listener ${r.listenerArn} is in ${own}`, `set router.region to ${own} (or unset ${from})`);
  }
  return chosen;
}

/** The SDK client's options from the config section. */
export function albClientOptions(r: AlbRouterConfig, env: NodeJS.ProcessEnv = process.env, leaseMs?: number): AlbClientOptions {
  return {
    region: albRegion(r, env),
    ...(r.profile ? { profile: r.profile } : {}),
    ...(r.endpointUrl ? { endpointUrl: r.endpointUrl } : {}),
    // A write must end, retries and all, well inside the driver's lease, which is renewed just
    // before it: a quarter lease an attempt, half a lease for all of them.
    ...(leaseMs ? { requestTimeoutMs: Math.min(ALB_REQUEST_TIMEOUT_MS, leaseMs / 4), maxRetryTimeMs: leaseMs / 2 } : {}),
  };
}

/** The router's options from the config section. */
export function albRouterOptions(r: AlbRouterConfig): AlbRouterOptions {
  let rule: AlbRouterOptions['rule'];
  if (r.rule && 'arn' in r.rule) rule = { arn: r.rule.arn };
  else if (r.rule) {
    const conditions: RuleCondition[] = [];
    if (r.rule.pathPatterns?.length) conditions.push({ Field: 'path-pattern', PathPatternConfig: { Values: r.rule.pathPatterns } });
    if (r.rule.hostHeaders?.length) conditions.push({ Field: 'host-header', HostHeaderConfig: { Values: r.rule.hostHeaders } });
    rule = { priority: r.rule.priority, conditions };
  }
  return {
    listenerArn: r.listenerArn,
    ...(rule ? { rule } : {}),
    targetGroups: r.targetGroups,
    orgHeader: r.orgHeader ?? 'X-Org-Id',
    maxRules: r.maxRules ?? 100,
  };
}

/** The router over the real ELBv2 API. */
export function createAlbRouter(r: AlbRouterConfig, service: string, env: NodeJS.ProcessEnv = process.env, leaseMs?: number, manageOrgs = true, report?: (event: ProviderEvent) => void): AlbRouter {
  // Every retry of a throttled or failed call is told, so a slow step is never a silent one.
  const onRetry = report ? (operation: string, error: Error, delayMs: number) => report({ event: 'retry', provider: 'alb', operation, error: error.message.split('\n')[0]!.slice(0, 200), delayMs: Math.round(delayMs) }) : undefined;
  return new AlbRouter({ ...albRouterOptions(r), manageOrgs, owner: service }, new SdkAlbClient(albClientOptions(r, env, leaseMs), undefined, onRetry));
}
