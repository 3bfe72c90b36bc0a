/** The `ingress-nginx` router's section of deploy.yaml, loaded only when a config is validated. */
import { z } from 'zod';
import { kubeName } from '../../config/fields.js';
import { kubeServiceFields as kubeService } from '../kube-service-fields.js';

export const schema = z.strictObject({
  type: z.literal('ingress-nginx'),
  ingress: kubeName('Ingress').meta({ description: "The stable Ingress; Cutover manages its canary twin <ingress>-canary" }),
  ...kubeService,
});

/** The ingress-nginx router section. */
export type IngressNginxRouterConfig = z.output<typeof schema>;
