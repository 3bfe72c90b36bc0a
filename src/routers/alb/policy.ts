/**
 * The least-privilege IAM policy the `alb` router needs for the resources in deploy.yaml. The
 * Describe calls cannot be limited to resources (ELBv2 authorizes them on `*`); every write is
 * limited to the configured listener, its rules, or the one weighted rule.
 */
import type { PolicyDocument, PolicyStatement } from '../../aws/iam.js';
import type { Config } from '../../config/schema.js';
import type { AlbRouterConfig } from './index.js';

export type { PolicyDocument, PolicyStatement } from '../../aws/iam.js';

const elb = (...actions: string[]) => actions.map((a) => `elasticloadbalancing:${a}`);

/** `arn:…:listener/app/lb/id/listener-id` → `arn:…:listener-rule/app/lb/id/listener-id/*`. */
export function listenerRulesArn(listenerArn: string): string {
  return `${listenerArn.replace(':listener/', ':listener-rule/')}/*`;
}

/**
 * The policy for `r`. Org rules (when `orgs:` is configured) and a weighted rule chosen by
 * priority need CreateRule, ModifyRule and DeleteRule on the listener's rules; weights on the
 * default action need ModifyListener on that listener only.
 */
export function albIamPolicy(r: AlbRouterConfig, config: Pick<Config, 'orgs'>): PolicyDocument {
  return { Version: '2012-10-17', Statement: albStatements(r, config) };
}

/** The statements of `albIamPolicy`. */
export function albStatements(r: AlbRouterConfig, config: Pick<Config, 'orgs'>): PolicyStatement[] {
  const statements: PolicyStatement[] = [
    {
      Sid: 'ReadListenerRulesAndTargetHealth',
      Effect: 'Allow',
      Action: elb('DescribeListeners', 'DescribeRules', 'DescribeTargetGroups', 'DescribeTargetHealth', 'DescribeTags'),
      Resource: '*',
    },
    // The fencing token lives in a listener tag; rules Cutover creates are tagged in CreateRule.
    { Sid: 'FenceTokenOnListener', Effect: 'Allow', Action: elb('AddTags'), Resource: [r.listenerArn] },
  ];
  if (!r.rule) statements.push({ Sid: 'ShiftWeightsOnDefaultAction', Effect: 'Allow', Action: elb('ModifyListener'), Resource: [r.listenerArn] });
  else if ('arn' in r.rule) statements.push({ Sid: 'ShiftWeightsOnRule', Effect: 'Allow', Action: elb('ModifyRule'), Resource: [r.rule.arn] });
  const managesRules = Boolean(config.orgs) || (r.rule !== undefined && !('arn' in r.rule));
  if (managesRules) {
    statements.push(
      { Sid: 'CreateRulesOnListener', Effect: 'Allow', Action: elb('CreateRule', 'AddTags'), Resource: [r.listenerArn, listenerRulesArn(r.listenerArn)] },
      { Sid: 'ChangeRulesOfListener', Effect: 'Allow', Action: elb('ModifyRule', ...(config.orgs ? ['DeleteRule'] : [])), Resource: [listenerRulesArn(r.listenerArn)] },
    );
  }
  return statements;
}
