/**
 * Process entry: the only place that exits. It waits for stdout and stderr to drain first so
 * JSON lines are never cut off when output is piped, then exits even if a keep-alive socket or
 * timer of a library is still open.
 */
import { main } from './main.js';

const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }, process.stdin);
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
