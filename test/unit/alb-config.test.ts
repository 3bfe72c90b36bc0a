/** The `alb` router section of deploy.yaml, and `deploy iam-policy` built from it. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { albRouterOptions } from '../../src/routers/alb/config.js';
import { runCli } from '../helpers/cli.js';
import { LISTENER, TG } from '../helpers/fake-alb.js';

const yaml = (router: string, rest = '') => `service: patient-api
stable: v1
versions:
  v1: {}
  v2: {}
router:
  type: alb
  listenerArn: ${LISTENER}
${router}${rest}`;
const groups = `  targetGroups:\n    v1: ${TG.v1}\n    v2: ${TG.v2}\n`;
const problem = (text: string) => {
  try {
    parseConfig(text, 'deploy.yaml');
  } catch (e) {
    return (e as Error).message;
  }
  return 'parsed';
};

describe('alb config', () => {
  let dir: string | undefined;
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('parses the README example and defaults the org header and the rule quota', () => {
    const config = parseConfig(yaml(groups, 'strategy:\n  blueGreen:\n    steps: 2\n    bake: 20m\n'), 'deploy.yaml');
    expect(config.router.type).toBe('alb');
    expect(albRouterOptions(config.router as never)).toEqual({ listenerArn: LISTENER, targetGroups: TG_V12, orgHeader: 'X-Org-Id', maxRules: 100 });
    expect(config.strategy?.blueGreen).toEqual({ steps: 2, bake: 20 * 60_000 });
  });

  it('needs a target group for every version and names the field', () => {
    expect(problem(yaml(`  targetGroups:\n    v1: ${TG.v1}\n`))).toMatch(/^deploy\.yaml:\d+:\d+ router\.targetGroups: needs the target group ARN of version v2$/);
    expect(problem(yaml(`  targetGroups:\n    v1: ${TG.v1}\n    v2: not-an-arn\n`))).toMatch(/router\.targetGroups\.v2: must be an ELBv2 targetgroup ARN/);
    expect(problem(yaml(groups).replace('  type: alb', '  type: alb\n  colour: red'))).toMatch(/router\.colour: unknown field \(allowed here: type, listenerArn, rule, targetGroups, region, profile, endpointUrl, orgHeader, maxRules\)/);
  });

  it('builds weighted-rule conditions from priority, path patterns and host headers', () => {
    const config = parseConfig(yaml(`${groups}  rule: { priority: 20, pathPatterns: ["/api/*"] }\n`), 'deploy.yaml');
    expect(albRouterOptions(config.router as never).rule).toEqual({ priority: 20, conditions: [{ Field: 'path-pattern', PathPatternConfig: { Values: ['/api/*'] } }] });
  });

  it('prints a least-privilege IAM policy for the configured listener', async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cutover-iam-'));
    const file = path.join(dir, 'deploy.yaml');
    writeFileSync(file, yaml(groups, 'orgs:\n  list: [st-marys]\n'));
    const run = await runCli(['iam-policy', '-f', file]);
    expect(run.code).toBe(0);
    const policy = JSON.parse(run.stdout);
    const rules = `${LISTENER.replace(':listener/', ':listener-rule/')}/*`;
    expect(policy.Statement).toEqual([
      { Sid: 'ReadListenerRulesAndTargetHealth', Effect: 'Allow', Action: ['elasticloadbalancing:DescribeListeners', 'elasticloadbalancing:DescribeRules', 'elasticloadbalancing:DescribeTargetGroups', 'elasticloadbalancing:DescribeTargetHealth', 'elasticloadbalancing:DescribeTags'], Resource: '*' },
      { Sid: 'FenceTokenOnListener', Effect: 'Allow', Action: ['elasticloadbalancing:AddTags'], Resource: [LISTENER] },
      { Sid: 'ShiftWeightsOnDefaultAction', Effect: 'Allow', Action: ['elasticloadbalancing:ModifyListener'], Resource: [LISTENER] },
      { Sid: 'CreateRulesOnListener', Effect: 'Allow', Action: ['elasticloadbalancing:CreateRule', 'elasticloadbalancing:AddTags'], Resource: [LISTENER, rules] },
      { Sid: 'ChangeRulesOfListener', Effect: 'Allow', Action: ['elasticloadbalancing:ModifyRule', 'elasticloadbalancing:DeleteRule'], Resource: [rules] },
    ]);
    writeFileSync(file, yaml(groups));
    expect(JSON.parse((await runCli(['iam-policy', '-f', file])).stdout).Statement).toHaveLength(3);
  });
});

const TG_V12 = { v1: TG.v1, v2: TG.v2 };
