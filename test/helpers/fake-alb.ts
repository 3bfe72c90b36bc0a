/**
 * An in-memory ALB listener behind the `AlbClient` interface, for unit tests of the router's
 * logic. It evaluates rules as ALB does (lowest priority first, http-header values matched
 * case-insensitively), so a test can ask where an org's request goes after every single call.
 */
import type { AlbAction, AlbClient, AlbListener, AlbRule, RuleCondition, TargetHealth } from '../../src/routers/alb/client.js';
import { AlbApiError } from '../../src/routers/alb/errors.js';

export const LISTENER = 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/patient-api/50dc6c495c0c9188/f2f7dc8efc522ab2';
export const TG = {
  v1: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/patient-api-v1/943f017f100becff',
  v2: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/patient-api-v2/a1b2c3d4e5f60718',
  v3: 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/patient-api-v3/0011223344556677',
};

/** Forward everything to one target group. */
export const forwardTo = (arn: string, weight = 1): AlbAction => ({ type: 'forward', forward: { targetGroups: [{ targetGroupArn: arn, weight }] }, raw: { Type: 'forward' } });

/** A fake listener: default actions, rules, target health; every call is logged. */
export class FakeAlbClient implements AlbClient {
  defaultActions: AlbAction[] = [forwardTo(TG.v1)];
  rules: AlbRule[] = [];
  /** Tags by resource ARN. */
  tags: Record<string, Record<string, string>> = {};
  health: Record<string, TargetHealth[]> = { [TG.v1]: [{ id: '10.0.0.1', port: 80, state: 'healthy' }], [TG.v2]: [{ id: '10.0.0.2', port: 80, state: 'healthy' }] };
  /** Operation names, in order. */
  log: string[] = [];
  /** Called after every write, to observe the routing between the calls of one apply. */
  afterWrite?: () => void;
  /** Writes are accepted but not kept, as a listener that does not read back as written. */
  dropWrites = false;
  private next = 1;

  async describeListener(arn: string): Promise<AlbListener> {
    this.log.push('DescribeListeners');
    if (arn !== LISTENER) throw new AlbApiError('ListenerNotFound', arn, 'DescribeListeners', 'One or more listeners not found');
    return { arn, loadBalancerArn: 'lb', actions: structuredClone(this.defaultActions) };
  }
  async describeRules(): Promise<AlbRule[]> {
    this.log.push('DescribeRules');
    return structuredClone([...this.rules].sort((a, b) => (a.priority as number) - (b.priority as number)));
  }
  async describeRule(arn: string): Promise<AlbRule> {
    this.log.push('DescribeRules');
    const rule = this.rules.find((r) => r.arn === arn);
    if (!rule) throw new AlbApiError('RuleNotFound', arn, 'DescribeRules', 'One or more rules not found');
    return structuredClone(rule);
  }
  async describeTargetGroups(arns: string[]): Promise<void> {
    this.log.push('DescribeTargetGroups');
    const missing = arns.find((a) => !Object.values(TG).includes(a));
    if (missing) throw new AlbApiError('TargetGroupNotFound', missing, 'DescribeTargetGroups', 'One or more target groups not found');
  }
  async describeTargetHealth(arn: string): Promise<TargetHealth[]> {
    this.log.push('DescribeTargetHealth');
    return this.health[arn] ?? [];
  }
  async setListenerActions(_arn: string, actions: AlbAction[]): Promise<void> {
    this.write('ModifyListener', () => (this.defaultActions = structuredClone(actions)));
  }
  async setRuleActions(arn: string, actions: AlbAction[]): Promise<void> {
    this.write('ModifyRule', () => (this.rule(arn).actions = structuredClone(actions)));
  }
  async setRuleConditions(arn: string, conditions: RuleCondition[]): Promise<void> {
    this.write('ModifyRule', () => (this.rule(arn).conditions = structuredClone(conditions)));
  }
  async createRule(_listener: string, priority: number, conditions: RuleCondition[], actions: AlbAction[], tags?: Record<string, string>): Promise<string> {
    if (this.rules.some((r) => r.priority === priority)) throw new AlbApiError('PriorityInUse', LISTENER, 'CreateRule', `priority ${priority} is in use`);
    const arn = `${LISTENER.replace(':listener/', ':listener-rule/')}/r${this.next++}`;
    this.write('CreateRule', () => {
      this.rules.push({ arn, priority, conditions: structuredClone(conditions), actions: structuredClone(actions) });
      if (tags) this.tags[arn] = { ...tags };
    });
    return arn;
  }
  async describeTags(arns: string[]): Promise<Record<string, Record<string, string>>> {
    this.log.push('DescribeTags');
    return Object.fromEntries(arns.map((arn) => [arn, { ...this.tags[arn] }]));
  }
  async addTags(arn: string, tags: Record<string, string>): Promise<void> {
    this.write('AddTags', () => (this.tags[arn] = { ...this.tags[arn], ...tags }));
  }
  async deleteRule(arn: string): Promise<void> {
    this.write('DeleteRule', () => (this.rules = this.rules.filter((r) => r.arn !== arn)));
  }

  /** Writes only, in order. */
  get writes(): string[] {
    return this.log.filter((op) => !op.startsWith('Describe'));
  }

  /**
   * Where a request goes: the target group of the first rule (by priority) whose conditions all
   * match, else the default action's (a weighted split shows as `weighted`).
   */
  routeOf(headers: Record<string, string>, path = '/'): string {
    for (const r of [...this.rules].sort((a, b) => (a.priority as number) - (b.priority as number))) {
      if (r.conditions.every((c) => matches(c, headers, path))) return targetOf(r.actions);
    }
    return targetOf(this.defaultActions);
  }

  private rule(arn: string): AlbRule {
    const rule = this.rules.find((r) => r.arn === arn);
    if (!rule) throw new AlbApiError('RuleNotFound', arn, 'ModifyRule', 'One or more rules not found');
    return rule;
  }
  private write(op: string, change: () => void): void {
    this.log.push(op);
    if (!this.dropWrites) change();
    this.afterWrite?.();
  }
}

function targetOf(actions: AlbAction[]): string {
  const groups = actions.find((a) => a.forward)?.forward?.targetGroups.filter((g) => g.weight > 0) ?? [];
  if (groups.length !== 1) return 'weighted';
  return Object.entries(TG).find(([, arn]) => arn === groups[0]!.targetGroupArn)?.[0] ?? groups[0]!.targetGroupArn;
}

function matches(c: RuleCondition, headers: Record<string, string>, path: string): boolean {
  const glob = (pattern: string, value: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i').test(value);
  if (c.Field === 'http-header') {
    const name = c.HttpHeaderConfig!.HttpHeaderName!.toLowerCase();
    const value = Object.entries(headers).find(([k]) => k.toLowerCase() === name)?.[1];
    return value !== undefined && (c.HttpHeaderConfig!.Values ?? []).some((p) => glob(p, value));
  }
  if (c.Field === 'path-pattern') return (c.PathPatternConfig?.Values ?? []).some((p) => glob(p, path));
  return false;
}
