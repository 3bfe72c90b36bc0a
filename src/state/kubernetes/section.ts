/** The `kubernetes` state section of deploy.yaml, loaded only when a config is validated. */
import { z } from 'zod';
import { kubeName, lease } from '../../config/fields.js';

export const schema = z.strictObject({
  type: z.literal('kubernetes'),
  name: kubeName('ConfigMap').optional().meta({ description: 'Name prefix of the ConfigMaps and the Lease (default cutover-<service>)' }),
  lease: lease.optional().meta({ description: 'Driver Lease duration (default 30s), renewed at a third of it' }),
  auditMaxBytes: z.number().int().min(16_384).max(100 * 1024 * 1024).optional()
    .meta({ description: 'Bound of the audit log kept in the cluster (default 8 MiB); at the bound new rollouts are refused until `deploy history --archive`' }),
});

/** The kubernetes state section. */
export type KubeStateConfig = z.output<typeof schema>;
