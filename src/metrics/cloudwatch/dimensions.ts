/**
 * Which CloudWatch series are a version's traffic: the ALB publishes its per-target-group metrics
 * under two dimensions, `LoadBalancer` (`app/<name>/<id>`) and `TargetGroup`
 * (`targetgroup/<name>/<id>`). Both are the tail of an ELBv2 ARN, so a config with the `alb`
 * router already names them: the load balancer in its listener ARN, each version's target group
 * in its target group ARNs. The cloudwatch section may name them itself (a config whose router
 * is not the ALB's, or metrics of another load balancer); what it names wins.
 */
import { UsageError } from '../../errors.js';

/** A load balancer's dimension value. */
export const LOAD_BALANCER_DIMENSION = /^app\/[A-Za-z0-9-]{1,32}\/[0-9a-f]+$/;
/** A target group's dimension value. */
export const TARGET_GROUP_DIMENSION = /^targetgroup\/[A-Za-z0-9-]{1,32}\/[0-9a-f]+$/;

const ELB_ARN = /^arn:aws[a-z-]*:elasticloadbalancing:([a-z0-9-]+):\d{12}:(.+)$/;

/** The resource part of an ELBv2 ARN (`listener/app/…`), or undefined when `text` is not one. */
function resourceOf(text: string): string | undefined {
  return ELB_ARN.exec(text)?.[2];
}

/** The region of an ELBv2 ARN, or undefined when `text` is not one. */
export function regionOfArn(text: string): string | undefined {
  return ELB_ARN.exec(text)?.[1];
}

/**
 * `app/<name>/<id>` from itself, a load balancer ARN or a listener (or listener rule) ARN of it;
 * undefined when it is none of these.
 */
export function loadBalancerDimension(text: string): string | undefined {
  const resource = resourceOf(text) ?? text;
  const m = /^(?:loadbalancer|listener|listener-rule)\/(app\/[^/]+\/[^/]+)/.exec(resource) ?? /^(app\/[^/]+\/[^/]+)$/.exec(resource);
  return m && LOAD_BALANCER_DIMENSION.test(m[1]!) ? m[1] : undefined;
}

/** `targetgroup/<name>/<id>` from itself or a target group ARN; undefined when it is neither. */
export function targetGroupDimension(text: string): string | undefined {
  const resource = resourceOf(text) ?? text;
  return TARGET_GROUP_DIMENSION.test(resource) ? resource : undefined;
}

/** The dimensions of every version's series. */
export interface AlbDimensions {
  loadBalancer: string;
  /** Version → `targetgroup/<name>/<id>`. */
  targetGroups: Record<string, string>;
}

/** The alb router's section as far as this source reads it. */
interface AlbRouterSection {
  type: string;
  listenerArn?: unknown;
  targetGroups?: unknown;
  region?: unknown;
  profile?: unknown;
  endpointUrl?: unknown;
}

/** The alb router section of a config, when its router is the ALB's. */
export function albRouterOf(router: { type: string }): AlbRouterSection | undefined {
  return router.type === 'alb' ? (router as AlbRouterSection) : undefined;
}

/**
 * The dimensions of the section, completed from the alb router's ARNs.
 * @throws UsageError naming `cloudwatch.loadBalancer` or `cloudwatch.targetGroups` when neither
 *   the section nor the router gives them.
 */
export function resolveDimensions(
  section: { loadBalancer?: string | undefined; targetGroups?: Record<string, string> | undefined },
  router: { type: string },
  versions: string[],
): AlbDimensions {
  const alb = albRouterOf(router);
  const loadBalancer = section.loadBalancer ?? (typeof alb?.listenerArn === 'string' ? loadBalancerDimension(alb.listenerArn) : undefined);
  if (!loadBalancer) {
    throw new UsageError(
      `cloudwatch.loadBalancer is not set, and the ${router.type} router names no ALB listener to take it from`,
      'set cloudwatch.loadBalancer to the ALB dimension value app/<name>/<id> (the tail of its ARN)',
    );
  }
  const fromRouter: Record<string, string> = {};
  if (alb && typeof alb.targetGroups === 'object' && alb.targetGroups !== null) {
    for (const [v, arn] of Object.entries(alb.targetGroups as Record<string, unknown>)) {
      const dimension = typeof arn === 'string' ? targetGroupDimension(arn) : undefined;
      if (dimension) fromRouter[v] = dimension;
    }
  }
  const targetGroups = { ...fromRouter, ...section.targetGroups };
  const missing = versions.filter((v) => !targetGroups[v]);
  if (missing.length) {
    throw new UsageError(
      `cloudwatch.targetGroups names no target group for ${missing.join(', ')}${alb ? ', nor does router.targetGroups' : ''}`,
      `set cloudwatch.targetGroups: { ${missing[0]}: targetgroup/<name>/<id> } (the tail of the target group's ARN)`,
    );
  }
  return { loadBalancer, targetGroups };
}
