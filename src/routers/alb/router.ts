/**
 * The `alb` router: weights between target groups on an Application Load Balancer listener's
 * default action, or on one listener rule, and org pins as listener rules with http-header
 * conditions on the org header. After Argo Rollouts' alb.go: compute the desired state, diff it
 * against what is live, write only what differs, read back, and report done only when the read
 * agrees.
 *
 * What is atomic here: a weight shift or a rollback is one ModifyListener (or ModifyRule) call,
 * so every request sees either the old or the new split. An org move that fits in existing rules
 * or one new rule is one call too; a larger one is several calls, ordered so that each org
 * switches version exactly once and is never routed by the weighted default on the way (see
 * `planOrgRules`) — but different orgs of one move switch at different calls, seconds apart.
 * Every ALB node applies a change a little after the API accepts it, so "read back" proves the
 * configuration, not that the last node has it.
 *
 * ALB cannot hash a header, so `unpinned: weighted` is the weighted split per request (or per
 * client with target-group stickiness), not sticky per org as on nginx.
 */
import { LockedError, OperationError, UsageError } from '../../errors.js';
import type { AlbAction, AlbClient, AlbRule, RuleCondition } from './client.js';
import { AlbApiError } from './errors.js';
import { ALB_LIMITS, albWeights, conditionValues, liveOrgRoutes, managedOrgRules, orgRuleConditions, percentWeights, planOrgRules, type OrgRule, type RuleWrite } from './routes.js';
import { sameRoutes, sameWeights, type ApplyResult, type LiveRoutes, type RouteSpec, type Router, type Verification } from '../router.js';

/** What the router needs to know about the ALB. */
export interface AlbRouterOptions {
  listenerArn: string;
  /** Weights on this rule instead of the default action: by ARN, or by priority (created with these conditions when missing). */
  rule?: { arn: string } | { priority: number; conditions?: RuleCondition[] };
  /** Target group ARN of each version. */
  targetGroups: Record<string, string>;
  orgHeader: string;
  /** Rules the load balancer may hold (the ALB quota, default 100). */
  maxRules: number;
  /**
   * Whether Cutover routes orgs here (deploy.yaml has an orgs: section). Without it, no rule is
   * Cutover's: org-header rules someone else made are never read as pins, changed or deleted.
   */
  manageOrgs?: boolean;
  /**
   * The service this router writes for. With it, every rule Cutover creates is tagged
   * `cutover:owner=<service>` in its CreateRule, only rules so tagged are read as pins, changed or
   * deleted, and writes carry the driver's fencing token in the listener tag
   * `cutover:fence:<service>`.
   */
  owner?: string;
}

/** Tag on every rule Cutover creates: the service it was made for. */
export const OWNER_TAG = 'cutover:owner';
/** Listener tag holding the newest fencing token a driver of `service` wrote under. */
export const fenceTag = (service: string): string => `cutover:fence:${service}`;

/** Everything read live in one pass. */
interface LiveView {
  weighted: { kind: 'listener'; actions: AlbAction[] } | { kind: 'rule'; rule: AlbRule } | { kind: 'missing'; priority: number };
  rules: AlbRule[];
  base: RuleCondition[];
  orgRules: OrgRule[];
  /** Rules of the org-rule shape that Cutover did not make (no owner tag of this service). */
  foreignOrgRules: OrgRule[];
}

/** Router over one ALB listener. */
export class AlbRouter implements Router {
  /** Provider name as in config. */
  readonly type = 'alb';
  private readonly versionByArn: Map<string, string>;

  /** @param client the ELBv2 calls (the SDK in production, a fake in unit tests). */
  constructor(
    private readonly options: AlbRouterOptions,
    private readonly client: AlbClient,
  ) {
    this.versionByArn = new Map(Object.entries(options.targetGroups).map(([v, arn]) => [arn, v]));
  }

  /** The listener, the rule (if by ARN) and every target group must exist and be readable. */
  async preflight(): Promise<void> {
    try {
      await this.client.describeListener(this.options.listenerArn);
      if (this.options.rule && 'arn' in this.options.rule) await this.client.describeRule(this.options.rule.arn);
      await this.client.describeTargetGroups(Object.values(this.options.targetGroups));
    } catch (e) {
      if (e instanceof AlbApiError && (e.notFound || e.accessDenied)) throw new UsageError(e.message, e.hint);
      throw e;
    }
  }

  /** Write what differs (weights first, then org rules in their safe order), then read back and verify. */
  async apply(spec: RouteSpec): Promise<ApplyResult> {
    const desired = albWeights(spec.weights);
    for (const v of Object.keys(desired)) this.targetGroupOf(v);
    const live = await this.readLive();
    const ruleWrites = this.planRules(live, spec);
    const weightsDiffer = live.weighted.kind === 'missing' || !sameWeights(this.weightsOf(live), spec.weights);
    if (!weightsDiffer && ruleWrites.length === 0) return { changed: false };
    await this.fence(spec.fence);
    let changed = false;
    const drifts: string[] = [];
    if (live.foreignOrgRules.length > 0) {
      drifts.push(`${live.foreignOrgRules.length} rule(s) on the org header not made by Cutover (priorities ${live.foreignOrgRules.map((r) => r.priority).join(', ')}) route orgs ${live.foreignOrgRules.flatMap((r) => r.values).slice(0, 5).join(', ')}; they were left alone`);
    }
    if (live.weighted.kind === 'missing') {
      await this.createWeightedRule(live.weighted.priority, desired, live.base);
      changed = true;
    } else if (!sameWeights(this.weightsOf(live), spec.weights)) {
      const liveActions = live.weighted.kind === 'listener' ? live.weighted.actions : live.weighted.rule.actions;
      // Target groups someone else put into the forward action are not Cutover's to keep
      // weighting, but their removal is said (event and audit record), never silent.
      const foreign = (liveActions.find((a) => a.forward)?.forward?.targetGroups ?? []).filter((t) => !this.versionByArn.has(t.targetGroupArn));
      if (foreign.length) drifts.push(`the forward action held target group${foreign.length > 1 ? 's' : ''} not under router.targetGroups (${foreign.map((t) => `${t.targetGroupArn} weight ${t.weight}`).join(', ')}); this write left ${foreign.length > 1 ? 'them' : 'it'} out`);
      const actions = this.withForward(liveActions, desired);
      if (live.weighted.kind === 'listener') await this.client.setListenerActions(this.options.listenerArn, actions);
      else await this.client.setRuleActions(live.weighted.rule.arn, actions);
      changed = true;
    }
    for (const w of ruleWrites) await this.writeRule(w, live.base);
    changed ||= ruleWrites.length > 0;
    if (!changed) return { changed };
    const check = await this.verify(spec, ruleWrites.length === 0);
    if (check.status !== 'verified') {
      throw new OperationError(`the ALB listener ${this.options.listenerArn} does not read back as written: ${check.detail}`, '`deploy resume` writes it again');
    }
    return { changed, ...(drifts.length ? { drift: drifts.join('; ') } : {}) };
  }

  /**
   * Refuse a write under an older fencing token than the listener's tag holds, and raise the tag
   * to ours before writing, so a driver that lost its lock sees the newer token at its next
   * write. ELBv2 has no conditional write: a stale write already past this check can still land,
   * which is why every attempt is also bounded well inside the lease the newer holder waited out.
   */
  private async fence(token: number | undefined): Promise<void> {
    if (token === undefined || !this.options.owner) return;
    const key = fenceTag(this.options.owner);
    const tags = (await this.client.describeTags([this.options.listenerArn]))[this.options.listenerArn] ?? {};
    const live = Number(tags[key]);
    if (Number.isSafeInteger(live) && live > token) {
      throw new LockedError(
        `lock lost: the listener was last written under fencing token ${live}, newer than this driver's ${token}; nothing was written`,
        'another driver now drives this rollout: stop here and run `deploy status` to see where it stands',
      );
    }
    if (live !== token) await this.client.addTags(this.options.listenerArn, { [key]: String(token) });
  }

  /** The live routing: weights of the weighted route, pins and the unpinned rule. */
  async read(): Promise<LiveRoutes> {
    return this.routesOf(await this.readLive());
  }

  /** Compare the live routing with `spec`. */
  async verify(spec: RouteSpec, weightsOnly = false): Promise<Verification> {
    const live = await this.readLive(weightsOnly);
    const routes = this.routesOf(live);
    const compared = weightsOnly ? { ...spec, orgs: routes.orgs ?? {}, unpinned: routes.unpinned ?? { mode: 'weighted' } } : spec;
    if (sameRoutes(routes, compared)) return { status: 'verified', live: routes };
    return { status: 'mismatch', live: routes, detail: `live ${JSON.stringify(routes)} differs from ${JSON.stringify(spec)}` };
  }

  /** Delete every org rule and send all weight to `fallbackVersion`. */
  async removeManaged(fallbackVersion: string): Promise<void> {
    await this.apply({ weights: { [fallbackVersion]: 100 }, orgs: {}, unpinned: { mode: 'weighted' } });
  }

  /**
   * Health of the version's target group, for the engine's check before weight moves to it.
   * Ready means at least one target registered and every registered one `healthy`.
   */
  async targetsReady(version: string): Promise<{ ready: boolean; detail: string }> {
    const targets = await this.client.describeTargetHealth(this.targetGroupOf(version));
    const healthy = targets.filter((t) => t.state === 'healthy').length;
    const others = targets.filter((t) => t.state !== 'healthy').map((t) => `${t.id}${t.port ? `:${t.port}` : ''} ${t.state}${t.reason ? ` (${t.reason})` : ''}`);
    const ready = targets.length > 0 && healthy === targets.length;
    return { ready, detail: targets.length === 0 ? `no targets registered in ${version}'s target group` : `${healthy}/${targets.length} targets of ${version} healthy${others.length ? `; ${others.slice(0, 5).join(', ')}` : ''}` };
  }

  private targetGroupOf(version: string): string {
    const arn = this.options.targetGroups[version];
    if (!arn) throw new UsageError(`version ${version} has no target group under router.targetGroups`, `add ${version}: <target group ARN> there`);
    return arn;
  }

  /** One pass of reads: the listener (or the weighted rule) and, unless only weights matter, every rule. */
  private async readLive(weightsOnly = false): Promise<LiveView> {
    const { rule } = this.options;
    if (weightsOnly && (!rule || 'arn' in rule)) {
      const weighted = rule ? { kind: 'rule' as const, rule: await this.client.describeRule(rule.arn) } : { kind: 'listener' as const, actions: (await this.client.describeListener(this.options.listenerArn)).actions };
      return { weighted, rules: [], base: weighted.kind === 'rule' ? weighted.rule.conditions : [], orgRules: [], foreignOrgRules: [] };
    }
    const listener = rule ? undefined : await this.client.describeListener(this.options.listenerArn);
    const rules = await this.client.describeRules(this.options.listenerArn);
    let weighted: LiveView['weighted'];
    if (!rule) weighted = { kind: 'listener', actions: listener!.actions };
    else {
      const found = rules.find((r) => ('arn' in rule ? r.arn === rule.arn : r.priority === rule.priority));
      if (found) weighted = { kind: 'rule', rule: found };
      else if ('arn' in rule) throw new AlbApiError('RuleNotFound', rule.arn, 'DescribeRules', 'the weighted rule is not on the listener');
      else if (!rule.conditions?.length) throw new UsageError(`no rule at priority ${rule.priority} on ${this.options.listenerArn}`, 'give router.rule pathPatterns or hostHeaders so Cutover creates it, or its arn');
      else weighted = { kind: 'missing', priority: rule.priority };
    }
    const base = weighted.kind === 'rule' ? weighted.rule.conditions : weighted.kind === 'missing' && rule && !('arn' in rule) ? (rule.conditions ?? []) : [];
    const shaped = this.options.manageOrgs === false ? [] : managedOrgRules(rules, base, this.options.orgHeader, (arn) => this.versionByArn.get(arn)).filter((r) => r.arn !== (weighted.kind === 'rule' ? weighted.rule.arn : ''));
    const { own, foreign } = await this.byOwner(shaped);
    return { weighted, rules, base, orgRules: own, foreignOrgRules: foreign };
  }

  /** Org-shaped rules split into those Cutover made for this service (tagged) and the others. */
  private async byOwner(rules: OrgRule[]): Promise<{ own: OrgRule[]; foreign: OrgRule[] }> {
    if (!this.options.owner || rules.length === 0) return { own: rules, foreign: [] };
    const tags = await this.client.describeTags(rules.map((r) => r.arn));
    const mine = (r: OrgRule) => tags[r.arn]?.[OWNER_TAG] === this.options.owner;
    return { own: rules.filter(mine), foreign: rules.filter((r) => !mine(r)) };
  }

  /** Tags of a rule Cutover creates. */
  private get ownTags(): Record<string, string> | undefined {
    return this.options.owner ? { [OWNER_TAG]: this.options.owner } : undefined;
  }

  private weightsOf(live: LiveView) {
    if (live.weighted.kind === 'missing') return {};
    const actions = live.weighted.kind === 'listener' ? live.weighted.actions : live.weighted.rule.actions;
    return percentWeights(actions.find((a) => a.forward)?.forward, (arn) => this.versionByArn.get(arn));
  }

  private routesOf(live: LiveView): LiveRoutes {
    const { orgs, unpinnedVersion } = liveOrgRoutes(live.orgRules);
    return { weights: this.weightsOf(live), orgs, unpinned: unpinnedVersion === undefined ? { mode: 'weighted' } : { mode: 'version', version: unpinnedVersion } };
  }

  /** The writes that make org rules match `spec`, refused before any write when over a quota. */
  private planRules(live: LiveView, spec: RouteSpec): RuleWrite[] {
    const orgs = spec.orgs ?? {};
    const unpinned = spec.unpinned?.mode === 'version' ? spec.unpinned.version : undefined;
    for (const v of new Set([...Object.values(orgs), ...(unpinned ? [unpinned] : [])])) this.targetGroupOf(v);
    if (Object.keys(orgs).length === 0 && unpinned === undefined && live.orgRules.length === 0) return [];
    const weightedPriority = live.weighted.kind === 'listener' ? ALB_LIMITS.maxPriority + 1 : live.weighted.kind === 'rule' ? (live.weighted.rule.priority as number) : live.weighted.priority;
    const managed = new Set(live.orgRules.map((r) => r.arn));
    const taken = new Set(live.rules.filter((r) => r.priority !== 'default').map((r) => r.priority as number));
    const foreignBelow = live.rules.filter((r) => r.priority !== 'default' && !managed.has(r.arn) && (r.priority as number) < weightedPriority).map((r) => r.priority as number);
    const from = Math.max(0, ...foreignBelow) + 1;
    const freePriorities: number[] = [];
    for (let p = from; p < weightedPriority && freePriorities.length <= this.options.maxRules; p++) if (!taken.has(p)) freePriorities.push(p);
    for (let p = weightedPriority - 1; p >= from; p--) {
      if (!taken.has(p)) {
        if (!freePriorities.includes(p)) freePriorities.push(p);
        break;
      }
    }
    const rulesNow = live.rules.filter((r) => r.priority !== 'default').length + (live.weighted.kind === 'missing' ? 1 : 0);
    const valuesPerRule = ALB_LIMITS.conditionValuesPerRule - conditionValues(live.base);
    return planOrgRules(live.orgRules, orgs, unpinned, { freePriorities, weightedPriority, rulesNow, maxRules: this.options.maxRules, valuesPerRule });
  }

  /** The live actions with the forward action replaced (stickiness kept), other actions untouched. */
  private withForward(actions: AlbAction[], weights: Record<string, number>): AlbAction[] {
    const current = actions.find((a) => a.forward);
    const forward = {
      targetGroups: Object.entries(weights).map(([v, weight]) => ({ targetGroupArn: this.targetGroupOf(v), weight })),
      ...(current?.forward?.stickiness ? { stickiness: current.forward.stickiness } : {}),
    };
    const next: AlbAction = { type: 'forward', forward, raw: { Type: 'forward' }, ...(current?.order !== undefined ? { order: current.order } : {}) };
    if (!current) return [...actions.filter((a) => a.type.startsWith('authenticate')), next];
    return actions.map((a) => (a === current ? next : a));
  }

  private async createWeightedRule(priority: number, weights: Record<string, number>, conditions: RuleCondition[]): Promise<void> {
    await this.client.createRule(this.options.listenerArn, priority, conditions, this.withForward([], weights), this.ownTags);
  }

  private forwardTo(version: string): AlbAction[] {
    return [{ type: 'forward', forward: { targetGroups: [{ targetGroupArn: this.targetGroupOf(version), weight: 1 }] }, raw: { Type: 'forward' } }];
  }

  private async writeRule(w: RuleWrite, base: RuleCondition[]): Promise<void> {
    switch (w.kind) {
      case 'create':
        try {
          await this.client.createRule(this.options.listenerArn, w.priority, orgRuleConditions(base, this.options.orgHeader, w.values), this.forwardTo(w.version), this.ownTags);
        } catch (e) {
          // A create whose answer was lost lands anyway, and its retry then meets its own rule
          // (PriorityInUse): read back before calling it a failure.
          if (!(await this.ruleIsLive(w.priority, w.values, w.version, base))) throw e;
        }
        return;
      case 'conditions':
        await this.client.setRuleConditions(w.arn, orgRuleConditions(base, this.options.orgHeader, w.values));
        return;
      case 'retarget':
        await this.client.setRuleActions(w.arn, this.forwardTo(w.version));
        return;
      case 'delete':
        try {
          await this.client.deleteRule(w.arn);
        } catch (e) {
          // A delete whose answer was lost is retried onto a rule that is gone: that is done.
          if (!(e instanceof AlbApiError && e.notFound)) throw e;
        }
    }
  }

  /** True when the listener has, at `priority`, the org rule for exactly `values` forwarding to `version`. */
  private async ruleIsLive(priority: number, values: string[], version: string, base: RuleCondition[]): Promise<boolean> {
    const rules = await this.client.describeRules(this.options.listenerArn).catch(() => []);
    const shaped = managedOrgRules(rules, base, this.options.orgHeader, (arn) => this.versionByArn.get(arn)).filter((r) => r.priority === priority);
    const found = (await this.byOwner(shaped).catch(() => ({ own: [] as OrgRule[] }))).own[0];
    return found !== undefined && found.version === version && [...found.values].sort().join('\n') === [...values].sort().join('\n');
  }
}
