// The CLI as one bundle: the compiled entry (dist/src/cli/entry.js) and everything it imports,
// split into chunks along its dynamic imports, in dist/bundle/. Loading a few chunks is much
// faster than resolving hundreds of modules one by one, which is most of a short command's time.
// The SDKs, the Kubernetes client, the console's ink/react and uPlot stay in node_modules: they
// load only in the commands that need them. A build id (a digest of the chunks) is written beside
// them; the CLI keys caches on it.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

const out = 'dist/bundle';
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: { deploy: 'dist/src/cli/entry.js' },
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  external: ['@aws-sdk/*', '@smithy/*', '@kubernetes/client-node', 'ink', 'react', 'react/*', 'uplot'],
  // CommonJS dependencies bundled into ES modules still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __cutoverRequire } from 'node:module'; const require = __cutoverRequire(import.meta.url);" },
  legalComments: 'none',
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
});
const digest = createHash('sha256');
for (const file of readdirSync(out).sort()) digest.update(file).update(readFileSync(join(out, file)));
writeFileSync(join(out, 'build-id'), `${digest.digest('hex').slice(0, 16)}\n`);
