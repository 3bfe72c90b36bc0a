/**
 * The `group` workload: a release group, several workloads of one service moved to a version as
 * one rollout — an API with traffic, its event consumers and workers, its CronJobs. See
 * workload.ts for how it moves, shares.ts for how members share a step, section.ts for deploy.yaml,
 * members.ts for the rules across sections.
 */
import type { GateConfig } from '../../config/schema.js';
import type { PolicyRule } from '../../kube/rbac.js';
import type { WorkloadProvider } from '../../providers/provider.js';
import { imageOf, runsCandidateAt, validateGroup } from './members.js';
import type { groupSchema, GroupConfig, MemberConfig } from './section.js';

export type { GroupConfig } from './section.js';

/** A Deployment member's canary Deployment, with its default. */
function canaryOf(m: Extract<MemberConfig, { deployment: string }>): string {
  return m.canaryDeployment ?? `${m.deployment}-canary`;
}

/** The Role rules every member needs: its Deployments (or CronJob), and the Jobs a CronJob starts. */
function groupRules(w: GroupConfig): PolicyRule[] {
  const deployments = w.members.flatMap((m) => (m.role === 'cron' ? [] : [m.deployment, canaryOf(m)]));
  const cronJobs = w.members.flatMap((m) => (m.role === 'cron' ? [m.cronJob] : []));
  const stopsJobs = w.members.some((m) => m.role === 'cron' && m.runningJobs === 'stop');
  return [
    ...(deployments.length
      ? [
          { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'update'], resourceNames: [...new Set(deployments)] },
          // `create` cannot be limited to names (the object does not exist yet when RBAC is asked).
          { apiGroups: ['apps'], resources: ['deployments'], verbs: ['create'] },
        ]
      : []),
    ...(cronJobs.length
      ? [
          { apiGroups: ['batch'], resources: ['cronjobs'], verbs: ['get', 'update'], resourceNames: [...new Set(cronJobs)] },
          // The Jobs a CronJob starts have names nobody knows beforehand.
          { apiGroups: ['batch'], resources: ['jobs'], verbs: ['get', 'list', ...(stopsJobs ? ['delete'] : [])] },
        ]
      : []),
  ];
}

/** The group workload's descriptor. */
export const groupWorkload: WorkloadProvider<typeof groupSchema> = {
  type: 'group',
  schema: () => import('./section.js').then((m) => m.groupSchema),
  platforms: ['kubernetes'],
  roles: true,
  makesCanaryService: true,
  readinessTimeout: (w) => w.progressDeadline,
  validate: validateGroup,
  rbac: groupRules,
  members: (w) => w.members.map((m) => m.name),
  gatesAt(w, config, step) {
    return step.gates.filter((name) => {
      const gate = config.gates?.find((g: GateConfig) => g.name === name);
      const member = gate?.type === 'errorRate' && gate.member !== undefined ? w.members.find((m) => m.name === gate.member) : undefined;
      return !member || runsCandidateAt(member, step.weight);
    });
  },
  async create(w, { config, chosen, clock }) {
    const [{ GroupWorkload }, { DeploymentMember }, { CronJobMember }, { connectKube }] = await Promise.all([
      import('./workload.js'),
      import('./deployment-member.js'),
      import('./cronjob-member.js'),
      import('../../kube/connect.js'),
    ]);
    const kube = () => connectKube(config.kubernetes ?? {});
    const services = chosen.router.services?.(config.router);
    const images = (m: MemberConfig) => Object.fromEntries(Object.keys(config.versions).map((v) => [v, imageOf(m, config, v)]));
    const members = w.members.map((m) => {
      const shared = { name: m.name, kube, images: images(m), ...(m.container ? { container: m.container } : {}) };
      if (m.role === 'cron') {
        return new CronJobMember({
          ...shared,
          cronJob: m.cronJob,
          clock,
          ...(m.switchAt !== undefined && m.switchAt !== 'promotion' ? { switchWeight: m.switchAt } : {}),
          ...(m.runningJobs ? { runningJobs: m.runningJobs } : {}),
        });
      }
      return new DeploymentMember({
        ...shared,
        role: m.role,
        deployment: m.deployment,
        canaryDeployment: canaryOf(m),
        ...(m.replicas ? { replicas: m.replicas } : {}),
        ...(m.role !== 'traffic' && m.firstCandidateStep !== undefined ? { firstCandidateWeight: m.firstCandidateStep } : {}),
        ...(m.role === 'traffic' && services ? { service: services.service, canaryService: services.canaryService } : {}),
      });
    });
    return new GroupWorkload({ members, ...(w.order ? { order: w.order } : {}) });
  },
};
