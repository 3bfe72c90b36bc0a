/** `deploy init`: write a commented deploy.yaml to start from. */
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { GlobalOptions, Io } from '../src/cli/context.js';
import { ExitCode, UsageError } from '../src/errors.js';

/** Options of init. */
export interface InitOptions extends GlobalOptions {
  force?: boolean;
}

/** The starting config: every field commented, the default canary written out. */
export const TEMPLATE = `# Cutover rollout config. \`deploy schema\` prints the JSON Schema for editors.
service: patient-api          # name of the service being released

# Every version that may serve traffic, with the servers running it.
versions:
  v1:
    endpoints: ["127.0.0.1:9001"]
  v2:
    endpoints: ["127.0.0.1:9002"]
stable: v1                    # the version serving users before the first rollout

# Where traffic is split. nginx: Cutover owns an nginx config in \`prefix\`; weights and org
# pins change through a loopback admin endpoint, without reloads.
router:
  type: nginx
  listen: 127.0.0.1:8080      # where users reach the service
  admin: 127.0.0.1:8081       # routing admin endpoint (loopback only)
  prefix: .deploy/nginx
  orgHeader: X-Org-Id

# Where the rollout's state, driver lock and audit log live.
state:
  type: local
  dir: .deploy
  lease: 30s                  # a killed driver's lock is taken over after this

# Gates read Prometheus. Without them nothing rolls back by itself: uncomment this section
# and the gates below once Prometheus scrapes the service (\`deploy plan\` checks every query).
# prometheus:
#   url: http://127.0.0.1:9090
#   labels: { job: patient-api }  # added to every built-in query
#
# gates:
#   # Rolls back on evidence that the candidate fails more requests than stable; passes each
#   # step on a margin derived from the traffic, +0.1 points before 100%.
#   - name: errors
#     type: errorRate
#     maxIncrease: 0.1%
#   - name: p99
#     type: latencyP99
#     max: 500ms

# The steps: a share of traffic on the candidate, held while gates are checked.
strategy:
  canary:
    checkInterval: 10s
    steps:
      - weight: 1
        hold: 30m
      - weight: 5
        hold: 10m
      - weight: 25
        hold: 10m
      - weight: 50
        hold: 10m
        pause: true           # wait for \`deploy promote\` before going on
        # margin: 0.1%        # the increase this step rules out (default: from the traffic)
      - weight: 100
`;

/** Write the template to -f (default deploy.yaml). */
export async function run(opts: InitOptions, io: Io): Promise<number> {
  if (existsSync(opts.file) && !opts.force) {
    throw new UsageError(`${opts.file} exists already`, 'pass --force to overwrite it, or -f to write another file');
  }
  const folder = dirname(resolve(opts.file));
  if (!existsSync(folder)) throw new UsageError(`cannot write ${opts.file}: the folder ${folder} does not exist`, `create it first (mkdir -p ${folder}), or choose another path with -f`);
  writeFileSync(opts.file, TEMPLATE, { mode: 0o644 });
  io.out.result({ event: 'init', file: opts.file }, `wrote ${opts.file}; check it with \`deploy plan -f ${opts.file}\``);
  return ExitCode.Done;
}
