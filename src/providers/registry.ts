/**
 * Every provider Cutover has, by kind. The config schema, the factories, `deploy rbac`,
 * `deploy iam-policy` and `deploy plan` are assembled from these lists: a new provider is a
 * folder of its own and one line here.
 */
import { fleetRouter, fleetWorkload } from '../fleet/index.js';
import { albRouter } from '../routers/alb/index.js';
import { gatewayApiRouter } from '../routers/gateway-api/index.js';
import { ingressNginxRouter } from '../routers/ingress-nginx/index.js';
import { nginxRouter } from '../routers/nginx/index.js';
import { noRouter } from '../routers/none/index.js';
import { cloudwatchMetrics } from '../metrics/cloudwatch/index.js';
import { prometheusMetrics } from '../metrics/prometheus/index.js';
import { kubernetesState } from '../state/kubernetes/index.js';
import { localState } from '../state/local/index.js';
import { s3State } from '../state/s3/index.js';
import { ecsWorkload } from '../workloads/ecs/index.js';
import { groupWorkload } from '../workloads/group/index.js';
import { kubernetesWorkload } from '../workloads/kubernetes/index.js';
import { noWorkload } from '../workloads/none/index.js';

/** Traffic routers (`router.type`). */
export const routers = [nginxRouter, albRouter, gatewayApiRouter, ingressNginxRouter, noRouter, fleetRouter] as const;

/** Workloads (`workload.type`). */
export const workloads = [kubernetesWorkload, groupWorkload, ecsWorkload, noWorkload, fleetWorkload] as const;

/** State backends (`state.type`); the first is the default. */
export const states = [localState, kubernetesState, s3State] as const;

/** Metrics sources, each its own top-level section (`prometheus:`). */
export const metricsSources = [prometheusMetrics, cloudwatchMetrics] as const;
