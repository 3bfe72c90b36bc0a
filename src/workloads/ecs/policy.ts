/**
 * The least-privilege IAM statements the `ecs` workload needs for the services in deploy.yaml.
 * Service calls are limited to the named services; the task-definition calls cannot be (ECS
 * authorizes DescribeTaskDefinition and RegisterTaskDefinition on `*` only), and ListTasks only
 * by a condition on the cluster. iam:PassRole is granted on the roles listed under `passRoles`,
 * to ECS tasks only: the task definition is read at run time, so its roles cannot be known here.
 */
import type { PolicyStatement } from '../../aws/iam.js';
import type { EcsWorkloadConfig } from './index.js';

const ecs = (...actions: string[]) => actions.map((a) => `ecs:${a}`);

/** Partition, region, account and name of the cluster; `*` where a bare name does not say. */
export function clusterParts(cluster: string, region: string | undefined): { partition: string; region: string; account: string; name: string } {
  const arn = /^arn:(aws[a-z-]*):ecs:([a-z0-9-]+):(\d{12}):cluster\/(.+)$/.exec(cluster);
  if (arn) return { partition: arn[1]!, region: arn[2]!, account: arn[3]!, name: arn[4]! };
  return { partition: 'aws', region: region ?? '*', account: '*', name: cluster };
}

/** The statements for `w`; `region` is aws.region, when set. */
export function ecsStatements(w: EcsWorkloadConfig, region: string | undefined): PolicyStatement[] {
  const c = clusterParts(w.cluster, region);
  const base = `arn:${c.partition}:ecs:${c.region}:${c.account}`;
  const services = [...new Set(Object.values(w.services))].map((name) => `${base}:service/${c.name}/${name}`);
  const statements: PolicyStatement[] = [
    { Sid: 'EcsReadAndUpdateServices', Effect: 'Allow', Action: ecs('DescribeServices', 'UpdateService'), Resource: services },
    // The tag cutover:stable says which side serves, so a later process knows which to scale down.
    { Sid: 'EcsMarkServingSide', Effect: 'Allow', Action: ecs('TagResource'), Resource: services },
    { Sid: 'EcsCandidateTaskDefinition', Effect: 'Allow', Action: ecs('DescribeTaskDefinition', 'RegisterTaskDefinition'), Resource: '*' },
    // Why a candidate's tasks stopped, told when its deployment struggles.
    { Sid: 'EcsListStoppedTasks', Effect: 'Allow', Action: ecs('ListTasks'), Resource: '*', Condition: { ArnLike: { 'ecs:cluster': `${base}:cluster/${c.name}` } } },
    { Sid: 'EcsDescribeStoppedTasks', Effect: 'Allow', Action: ecs('DescribeTasks'), Resource: [`${base}:task/${c.name}/*`] },
  ];
  if (w.passRoles?.length) {
    statements.push({ Sid: 'EcsPassTaskRoles', Effect: 'Allow', Action: ['iam:PassRole'], Resource: w.passRoles, Condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } } });
  }
  return statements;
}
