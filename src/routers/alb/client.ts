/**
 * A narrow domain client over the ELBv2 SDK: the handful of calls the `alb` router needs, spoken
 * in its terms (forward weights, org rules, target health), after Argo Rollouts' three-method
 * `aws.Client`. The router and the unit tests depend on the `AlbClient` interface only, so a fake
 * stands in for AWS; integration tests use this class against a local ELBv2 endpoint.
 *
 * Calls go out as every AWS provider's do (src/aws/call.ts): one bounded attempt at a time,
 * transient failures retried with backoff and reported; anything else is permanent and becomes
 * an `AlbApiError` naming the ARN and what to check.
 */
import {
  AddTagsCommand,
  CreateRuleCommand,
  DeleteRuleCommand,
  DescribeTagsCommand,
  DescribeListenersCommand,
  DescribeRulesCommand,
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  ModifyListenerCommand,
  ModifyRuleCommand,
  type Action,
  type RuleCondition,
} from '@aws-sdk/client-elastic-load-balancing-v2';
import { attemptSignal, AWS_REQUEST_TIMEOUT_MS, sdkClientSettings, withRetries, type CallBounds } from '../../aws/call.js';
import { AlbApiError } from './errors.js';

/** A rule condition as ELBv2 defines it: weighted-rule conditions pass through the router unchanged. */
export type { RuleCondition } from '@aws-sdk/client-elastic-load-balancing-v2';

/** One target group of a forward action and its relative weight (0–999). */
export interface TargetWeight {
  targetGroupArn: string;
  weight: number;
}

/** A forward action: weighted target groups, with the stickiness settings they had. */
export interface ForwardAction {
  targetGroups: TargetWeight[];
  /** Target-group stickiness as live; written back unchanged. */
  stickiness?: { enabled: boolean; durationSeconds?: number };
}

/** One action of a listener or rule; only forward actions are understood, the rest pass through. */
export interface AlbAction {
  type: string;
  order?: number;
  forward?: ForwardAction;
  /** The action as the API gave it, written back as is when it is not the forward action. */
  raw: Action;
}

/** A listener and its default actions. */
export interface AlbListener {
  arn: string;
  loadBalancerArn: string;
  actions: AlbAction[];
}

/** A listener rule. */
export interface AlbRule {
  arn: string;
  /** `default` for the listener's default rule. */
  priority: number | 'default';
  conditions: RuleCondition[];
  actions: AlbAction[];
}

/** The health of one registered target. */
export interface TargetHealth {
  id: string;
  port?: number;
  /** initial, healthy, unhealthy, unused, draining or unavailable. */
  state: string;
  reason?: string;
}

/** The ELBv2 calls the `alb` router makes. */
export interface AlbClient {
  /** The listener and its default actions. */
  describeListener(listenerArn: string): Promise<AlbListener>;
  /** Every rule of the listener, the default rule included, in priority order. */
  describeRules(listenerArn: string): Promise<AlbRule[]>;
  /** One rule. */
  describeRule(ruleArn: string): Promise<AlbRule>;
  /** Fails with a not-found error naming the first target group that does not exist. */
  describeTargetGroups(targetGroupArns: string[]): Promise<void>;
  /** Health of every target registered in the group. */
  describeTargetHealth(targetGroupArn: string): Promise<TargetHealth[]>;
  /** Replace the listener's default actions (one ModifyListener). */
  setListenerActions(listenerArn: string, actions: AlbAction[]): Promise<void>;
  /** Replace a rule's actions, conditions unchanged (one ModifyRule). */
  setRuleActions(ruleArn: string, actions: AlbAction[]): Promise<void>;
  /** Replace a rule's conditions, actions unchanged (one ModifyRule). */
  setRuleConditions(ruleArn: string, conditions: RuleCondition[]): Promise<void>;
  /** Create a rule, tagged with `tags` when given; returns its ARN. */
  createRule(listenerArn: string, priority: number, conditions: RuleCondition[], actions: AlbAction[], tags?: Record<string, string>): Promise<string>;
  /** Delete a rule. */
  deleteRule(ruleArn: string): Promise<void>;
  /** The tags of each resource (listeners, rules), in as few calls as the API allows. */
  describeTags(arns: string[]): Promise<Record<string, Record<string, string>>>;
  /** Add or overwrite tags on one resource. */
  addTags(arn: string, tags: Record<string, string>): Promise<void>;
}

/** Where and how to reach ELBv2. Credentials always come from the default provider chain. */
export interface AlbClientOptions extends CallBounds {
  region: string;
  /** A profile of the shared config files; absent means AWS_PROFILE or `default`. */
  profile?: string;
  /** A compatible endpoint instead of AWS's. */
  endpointUrl?: string;
}

/** Longest one ELBv2 attempt may take by default. */
export const ALB_REQUEST_TIMEOUT_MS = AWS_REQUEST_TIMEOUT_MS;

/** Sends one SDK command; injectable so tests can put throttling in front of a real endpoint. */
export type SendFn = (command: { constructor: { name: string }; input: unknown }) => Promise<unknown>;

/** The SDK behind the `AlbClient` interface, with retries and clear errors. */
export class SdkAlbClient implements AlbClient {
  /** Logical calls per operation (a retried call counts once). */
  readonly calls: Record<string, number> = {};
  /** Attempts per operation (each retry counts). */
  readonly attempts: Record<string, number> = {};
  private readonly send: SendFn;

  /** @param send defaults to an SDK client built from `options` with the SDK's own retry off. */
  constructor(
    private readonly options: AlbClientOptions,
    send?: SendFn,
    private readonly onRetry?: (operation: string, error: Error, delayMs: number) => void,
  ) {
    if (send) this.send = send;
    else {
      const sdk = new ElasticLoadBalancingV2Client({
        region: options.region,
        ...sdkClientSettings(options),
        ...(options.profile ? { profile: options.profile } : {}),
        ...(options.endpointUrl ? { endpoint: options.endpointUrl } : {}),
      });
      // The socket timeouts end a silent connection; the signal bounds the whole attempt.
      this.send = (command) => sdk.send(command as never, { abortSignal: attemptSignal(options) });
    }
  }

  /** The listener and its default actions. */
  async describeListener(listenerArn: string): Promise<AlbListener> {
    const out = (await this.call(new DescribeListenersCommand({ ListenerArns: [listenerArn] }), listenerArn)) as { Listeners?: { ListenerArn?: string; LoadBalancerArn?: string; DefaultActions?: Action[] }[] };
    const l = out.Listeners?.[0];
    if (!l) throw new AlbApiError('ListenerNotFound', listenerArn, 'DescribeListeners', 'the listener does not exist');
    return { arn: l.ListenerArn ?? listenerArn, loadBalancerArn: l.LoadBalancerArn ?? '', actions: (l.DefaultActions ?? []).map(toAction) };
  }

  /** Every rule of the listener, following the pages. */
  async describeRules(listenerArn: string): Promise<AlbRule[]> {
    const rules: AlbRule[] = [];
    let marker: string | undefined;
    do {
      const out = (await this.call(new DescribeRulesCommand({ ListenerArn: listenerArn, PageSize: 400, ...(marker ? { Marker: marker } : {}) }), listenerArn)) as RulesPage;
      rules.push(...(out.Rules ?? []).map(toRule));
      marker = out.NextMarker;
    } while (marker);
    return rules.sort((a, b) => (a.priority === 'default' ? 1 : b.priority === 'default' ? -1 : a.priority - b.priority));
  }

  /** One rule. */
  async describeRule(ruleArn: string): Promise<AlbRule> {
    const out = (await this.call(new DescribeRulesCommand({ RuleArns: [ruleArn] }), ruleArn)) as RulesPage;
    const rule = out.Rules?.[0];
    if (!rule) throw new AlbApiError('RuleNotFound', ruleArn, 'DescribeRules', 'the rule does not exist');
    return toRule(rule);
  }

  /** One call per target group, so a missing one is named. */
  async describeTargetGroups(targetGroupArns: string[]): Promise<void> {
    for (const arn of targetGroupArns) await this.call(new DescribeTargetGroupsCommand({ TargetGroupArns: [arn] }), arn);
  }

  /** Health of every registered target. */
  async describeTargetHealth(targetGroupArn: string): Promise<TargetHealth[]> {
    const out = (await this.call(new DescribeTargetHealthCommand({ TargetGroupArn: targetGroupArn }), targetGroupArn)) as {
      TargetHealthDescriptions?: { Target?: { Id?: string; Port?: number }; TargetHealth?: { State?: string; Reason?: string } }[];
    };
    return (out.TargetHealthDescriptions ?? []).map((d) => ({
      id: d.Target?.Id ?? '?',
      ...(d.Target?.Port !== undefined ? { port: d.Target.Port } : {}),
      state: d.TargetHealth?.State ?? 'unavailable',
      ...(d.TargetHealth?.Reason ? { reason: d.TargetHealth.Reason } : {}),
    }));
  }

  /** One ModifyListener with the whole default action list. */
  async setListenerActions(listenerArn: string, actions: AlbAction[]): Promise<void> {
    await this.call(new ModifyListenerCommand({ ListenerArn: listenerArn, DefaultActions: actions.map(toSdkAction) }), listenerArn);
  }

  /** One ModifyRule with the whole action list. */
  async setRuleActions(ruleArn: string, actions: AlbAction[]): Promise<void> {
    await this.call(new ModifyRuleCommand({ RuleArn: ruleArn, Actions: actions.map(toSdkAction) }), ruleArn);
  }

  /** One ModifyRule with the whole condition list. */
  async setRuleConditions(ruleArn: string, conditions: RuleCondition[]): Promise<void> {
    await this.call(new ModifyRuleCommand({ RuleArn: ruleArn, Conditions: conditions }), ruleArn);
  }

  /** One CreateRule, its tags in the same call (so a rule never exists untagged). */
  async createRule(listenerArn: string, priority: number, conditions: RuleCondition[], actions: AlbAction[], tags?: Record<string, string>): Promise<string> {
    const Tags = tags ? Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) : undefined;
    const out = (await this.call(new CreateRuleCommand({ ListenerArn: listenerArn, Priority: priority, Conditions: conditions, Actions: actions.map(toSdkAction), ...(Tags ? { Tags } : {}) }), listenerArn)) as RulesPage;
    const arn = out.Rules?.[0]?.RuleArn;
    if (!arn) throw new AlbApiError('InvalidResponse', listenerArn, 'CreateRule', 'the endpoint returned no rule ARN');
    return arn;
  }

  /** One DeleteRule. */
  async deleteRule(ruleArn: string): Promise<void> {
    await this.call(new DeleteRuleCommand({ RuleArn: ruleArn }), ruleArn);
  }

  /** DescribeTags, twenty resources a call (the API's most). */
  async describeTags(arns: string[]): Promise<Record<string, Record<string, string>>> {
    const out: Record<string, Record<string, string>> = {};
    for (let i = 0; i < arns.length; i += 20) {
      const page = arns.slice(i, i + 20);
      const answer = (await this.call(new DescribeTagsCommand({ ResourceArns: page }), page[0]!)) as { TagDescriptions?: { ResourceArn?: string; Tags?: { Key?: string; Value?: string }[] }[] };
      for (const d of answer.TagDescriptions ?? []) {
        if (d.ResourceArn) out[d.ResourceArn] = Object.fromEntries((d.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
      }
    }
    return out;
  }

  /** One AddTags. */
  async addTags(arn: string, tags: Record<string, string>): Promise<void> {
    await this.call(new AddTagsCommand({ ResourceArns: [arn], Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }), arn);
  }

  /** Send with retries for transient failures; permanent ones become AlbApiError naming `arn`. */
  private async call(command: { constructor: { name: string }; input: unknown }, arn: string): Promise<unknown> {
    const operation = command.constructor.name.replace(/Command$/, '');
    this.calls[operation] = (this.calls[operation] ?? 0) + 1;
    try {
      return await withRetries(
        () => {
          this.attempts[operation] = (this.attempts[operation] ?? 0) + 1;
          return this.send(command);
        },
        this.options,
        (error, delayMs) => this.onRetry?.(operation, error, delayMs),
      );
    } catch (e) {
      throw AlbApiError.from(e, arn, operation);
    }
  }
}

type RulesPage = { Rules?: { RuleArn?: string; Priority?: string; IsDefault?: boolean; Conditions?: RuleCondition[]; Actions?: Action[] }[]; NextMarker?: string };

function toRule(r: NonNullable<RulesPage['Rules']>[number]): AlbRule {
  return {
    arn: r.RuleArn ?? '',
    priority: r.IsDefault || r.Priority === 'default' ? 'default' : Number(r.Priority),
    conditions: r.Conditions ?? [],
    actions: (r.Actions ?? []).map(toAction),
  };
}

/** A forward action's target groups, whether written with ForwardConfig or the single TargetGroupArn. */
function toAction(a: Action): AlbAction {
  const action: AlbAction = { type: a.Type ?? 'unknown', raw: a, ...(a.Order !== undefined ? { order: a.Order } : {}) };
  if (a.Type !== 'forward') return action;
  const groups = a.ForwardConfig?.TargetGroups?.length
    ? a.ForwardConfig.TargetGroups.map((t) => ({ targetGroupArn: t.TargetGroupArn ?? '', weight: t.Weight ?? 1 }))
    : a.TargetGroupArn
      ? [{ targetGroupArn: a.TargetGroupArn, weight: 1 }]
      : [];
  const sticky = a.ForwardConfig?.TargetGroupStickinessConfig;
  action.forward = {
    targetGroups: groups,
    ...(sticky ? { stickiness: { enabled: sticky.Enabled ?? false, ...(sticky.DurationSeconds !== undefined ? { durationSeconds: sticky.DurationSeconds } : {}) } } : {}),
  };
  return action;
}

/** Back to the SDK's shape; forward actions are always written with ForwardConfig. */
function toSdkAction(a: AlbAction): Action {
  if (!a.forward) return a.raw;
  const { stickiness } = a.forward;
  return {
    Type: 'forward',
    ...(a.order !== undefined ? { Order: a.order } : {}),
    ForwardConfig: {
      TargetGroups: a.forward.targetGroups.map((t) => ({ TargetGroupArn: t.targetGroupArn, Weight: t.weight })),
      ...(stickiness ? { TargetGroupStickinessConfig: { Enabled: stickiness.enabled, ...(stickiness.durationSeconds !== undefined ? { DurationSeconds: stickiness.durationSeconds } : {}) } } : {}),
    },
  };
}
