/**
 * The section fields both Kubernetes routers share: the stable and canary Services they route to
 * and the org header, loaded only when a config is validated.
 */
import { z } from 'zod';
import { kubeName } from '../config/fields.js';

/** The fields, spread into each router's schema. */
export const kubeServiceFields = {
  service: kubeName('Service').meta({ description: 'Service of the stable version' }),
  canaryService: kubeName('Service').optional().meta({ description: 'Service of the candidate (default <service>-canary)' }),
  port: z.number().int().min(1).max(65535).optional().meta({ description: 'Service port (default 80)' }),
  orgHeader: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be an HTTP header name').optional()
    .meta({ description: 'Header carrying the org id, matched by org rules (default X-Org-Id)' }),
};
