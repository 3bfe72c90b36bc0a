/** `deploy schema`: the JSON Schema of deploy.yaml, generated from the validating schema. */
import { configJsonSchema } from '../src/config/schema.js';
import type { Io } from '../src/cli/context.js';

/** Print the schema (always JSON). */
export async function run(_opts: unknown, io: Io): Promise<number> {
  io.stdout.write(`${JSON.stringify(configJsonSchema(), null, io.out.format === 'json' ? 0 : 2)}\n`);
  return 0;
}
