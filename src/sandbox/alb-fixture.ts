/**
 * An Application Load Balancer on moto's server, built through the real AWS SDK as an operator
 * would: a VPC, two subnets in two zones, a load balancer, one target group per version with a
 * target registered in each, and an HTTP listener forwarding everything to v1. For the ALB
 * integration tests and `npm run bench`; no command imports it.
 *
 * EC2 comes from `@aws-sdk/client-ec2`, a devDependency only: an ALB needs a VPC and subnets,
 * and moto serves EC2 too, so the tests create them the way a real account has them. Cutover
 * itself never calls EC2.
 */
import { CreateSubnetCommand, CreateVpcCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  CreateListenerCommand,
  CreateLoadBalancerCommand,
  CreateTargetGroupCommand,
  DescribeListenersCommand,
  DescribeRulesCommand,
  ElasticLoadBalancingV2Client,
  RegisterTargetsCommand,
  type Rule,
} from '@aws-sdk/client-elastic-load-balancing-v2';

export const REGION = 'us-east-1';

/**
 * Credentials for the emulator, through the default provider chain's environment step as a
 * real run would use it. Instance metadata is switched off so that the chain never reaches for
 * an address off this machine.
 */
export function useEmulatorCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = 'testing';
  process.env.AWS_SECRET_ACCESS_KEY = 'testing';
  process.env.AWS_EC2_METADATA_DISABLED = 'true';
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_REGION;
  delete process.env.AWS_DEFAULT_REGION;
}

/** What `createAlb` built. */
export interface AlbFixture {
  elb: ElasticLoadBalancingV2Client;
  loadBalancerArn: string;
  listenerArn: string;
  targetGroups: Record<string, string>;
  /** The listener's default forward action as the API reports it: version → weight. */
  listenerWeights(): Promise<Record<string, number>>;
  /** Every non-default rule, by priority. */
  rules(): Promise<Rule[]>;
}

/** Build a load balancer with a target group per version on moto at `endpoint`. */
export async function createAlb(endpoint: string, versions: string[] = ['v1', 'v2'], name = 'patient-api'): Promise<AlbFixture> {
  const config = { region: REGION, endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } };
  const ec2 = new EC2Client(config);
  const elb = new ElasticLoadBalancingV2Client(config);
  const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: '10.10.0.0/16' }));
  const vpcId = vpc.Vpc!.VpcId!;
  const subnets = await Promise.all(
    ['a', 'b'].map(async (zone, i) => (await ec2.send(new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: `10.10.${i}.0/24`, AvailabilityZone: `${REGION}${zone}` }))).Subnet!.SubnetId!),
  );
  const lb = await elb.send(new CreateLoadBalancerCommand({ Name: name, Subnets: subnets, Type: 'application', Scheme: 'internal' }));
  const loadBalancerArn = lb.LoadBalancers![0]!.LoadBalancerArn!;
  const targetGroups: Record<string, string> = {};
  for (const [i, v] of versions.entries()) {
    const tg = await elb.send(new CreateTargetGroupCommand({ Name: `${name}-${v}`, Protocol: 'HTTP', Port: 80, VpcId: vpcId, TargetType: 'ip', HealthCheckPath: '/healthz' }));
    targetGroups[v] = tg.TargetGroups![0]!.TargetGroupArn!;
    await elb.send(new RegisterTargetsCommand({ TargetGroupArn: targetGroups[v], Targets: [{ Id: `10.10.0.${10 + i}`, Port: 80 }] }));
  }
  const listener = await elb.send(
    new CreateListenerCommand({ LoadBalancerArn: loadBalancerArn, Protocol: 'HTTP', Port: 80, DefaultActions: [{ Type: 'forward', TargetGroupArn: targetGroups[versions[0]!] }] }),
  );
  const listenerArn = listener.Listeners![0]!.ListenerArn!;
  const versionOf = new Map(Object.entries(targetGroups).map(([v, arn]) => [arn, v]));
  return {
    elb,
    loadBalancerArn,
    listenerArn,
    targetGroups,
    async listenerWeights() {
      const out = await elb.send(new DescribeListenersCommand({ ListenerArns: [listenerArn] }));
      const forward = out.Listeners![0]!.DefaultActions!.find((a) => a.Type === 'forward')!;
      const groups = forward.ForwardConfig?.TargetGroups ?? [{ TargetGroupArn: forward.TargetGroupArn, Weight: 1 }];
      return Object.fromEntries(groups.map((g) => [versionOf.get(g.TargetGroupArn!) ?? g.TargetGroupArn!, g.Weight ?? 1]));
    },
    async rules() {
      const out = await elb.send(new DescribeRulesCommand({ ListenerArn: listenerArn }));
      return (out.Rules ?? []).filter((r) => !r.IsDefault).sort((a, b) => Number(a.Priority) - Number(b.Priority));
    },
  };
}
