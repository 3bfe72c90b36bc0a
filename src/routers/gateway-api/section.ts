/** The `gateway-api` router's section of deploy.yaml, loaded only when a config is validated. */
import { z } from 'zod';
import { kubeName } from '../../config/fields.js';
import { kubeServiceFields as kubeService } from '../kube-service-fields.js';

export const schema = z.strictObject({
  type: z.literal('gateway-api'),
  httpRoute: kubeName('HTTPRoute').meta({ description: 'The HTTPRoute carrying the weights (created when missing, with parentRefs)' }),
  parentRefs: z.array(z.strictObject({ name: kubeName('Gateway'), namespace: kubeName('namespace').optional(), sectionName: z.string().min(1).optional() })).optional()
    .meta({ description: 'Gateways the HTTPRoute attaches to, when Cutover creates it' }),
  hostnames: z.array(z.string().min(1)).optional(),
  ...kubeService,
});

/** The gateway-api router section. */
export type GatewayApiRouterConfig = z.output<typeof schema>;
