/**
 * Process entry: the only place that exits. It waits for stdout and stderr to drain first so
 * JSON lines are never cut off when output is piped, then exits even if a keep-alive socket or
 * timer of a library is still open.
 *
 * Before anything else loads, Node's compile cache is turned on (in ~/.cache/cutover/, or where
 * NODE_COMPILE_CACHE says): every later start reads the modules' compiled code instead of
 * compiling them again, which is most of a short command's time.
 */
import { enableCompileCache } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';

if (!process.env.NODE_COMPILE_CACHE) enableCompileCache(join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cutover', 'compile-cache'));
const { main } = await import('./main.js');

const code = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }, () => process.stdin);
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
