/** The `none` router's section of deploy.yaml, loaded only when a config is validated. */
import { z } from 'zod';

export const schema = z.strictObject({ type: z.literal('none') });
