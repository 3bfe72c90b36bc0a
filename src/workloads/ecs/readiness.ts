/**
 * Whether a service has rolled out: read from DescribeServices alone, without I/O. A service is
 * ready when it runs the wanted task definition, its PRIMARY deployment is COMPLETED (ECS's own
 * word that it reached steady state), no older deployment still has tasks, and as many tasks run
 * as were asked for. A FAILED rollout (ECS's deployment circuit breaker) or one still in progress
 * past the deadline is `stuck`: waiting longer will not help.
 *
 * The tasks counted are the PRIMARY deployment's when it names the wanted task definition, as AWS
 * reports it; an endpoint that keeps no deployment per UpdateService (moto keeps the one
 * CreateService made) leaves only the service's own counts, which are the same thing once no
 * older deployment has tasks.
 */
import { formatDuration } from '../../config/units.js';
import type { TargetReadiness } from '../../routers/router.js';
import type { EcsService } from './client.js';
import { shortName } from './task-definition.js';

/** What the readiness of a service is judged against. */
export interface Wanted {
  taskDefinition: string;
  /** Tasks that must run. */
  count: number;
  /** How long a deployment may stay in progress. */
  deadlineMs: number;
  now: number;
}

/**
 * The readiness of `service` for `wanted`. `stopped` is why its latest tasks stopped, when known,
 * told with a slow or failed rollout because it is usually the cause (an image that cannot be
 * pulled, a container that exits).
 */
export function serviceReadiness(service: EcsService, wanted: Wanted, stopped: string[] = []): TargetReadiness {
  const td = shortName(wanted.taskDefinition);
  const primary = service.deployments.find((d) => d.status === 'PRIMARY');
  const older = service.deployments.filter((d) => d !== primary && d.runningCount + d.desiredCount > 0);
  const state = primary?.rolloutState ?? 'COMPLETED';
  const running = primary?.taskDefinition === wanted.taskDefinition ? primary.runningCount : service.runningCount;
  const because = [primary?.rolloutStateReason, stopped[0] ? `last stopped task: ${stopped[0]}` : undefined, service.lastEvent].filter(Boolean).join('; ');
  const detail = `${running}/${wanted.count} tasks of ${service.name} running on ${td}${service.pendingCount ? `, ${service.pendingCount} pending` : ''}${
    older.length ? `, ${older.length} older deployment${older.length > 1 ? 's' : ''} still running` : ''
  }${state !== 'COMPLETED' ? ` (deployment ${state.toLowerCase().replace('_', ' ')})` : ''}`;
  if (service.taskDefinition !== wanted.taskDefinition) {
    return { ready: false, detail: `${service.name} runs ${shortName(service.taskDefinition)}, not ${td}` };
  }
  if (state === 'FAILED') {
    return { ready: false, detail, stuck: `the deployment of ${td} to ${service.name} failed${because ? `: ${because}` : ''}` };
  }
  const ready = state === 'COMPLETED' && older.length === 0 && running >= wanted.count;
  if (ready) return { ready, detail };
  const since = primary?.createdAt?.getTime();
  if (state === 'IN_PROGRESS' && since !== undefined && wanted.now - since > wanted.deadlineMs) {
    return { ready, detail, stuck: `the deployment of ${td} to ${service.name} has not completed in ${formatDuration(wanted.deadlineMs)}${because ? `: ${because}` : ''}` };
  }
  return { ready, detail: primary?.failedTasks && because ? `${detail}; ${primary.failedTasks} failed: ${because}` : detail };
}
