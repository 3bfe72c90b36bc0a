/** `deploy rbac`: the minimal Role and RoleBinding the configured Kubernetes objects need, as YAML. */
import { stringify } from 'yaml';
import { openProject, type GlobalOptions, type Io } from '../src/cli/context.js';
import { ExitCode, UsageError } from '../src/errors.js';
import { rbacObjects, rbacRules, type RbacSubject } from '../src/kube/rbac.js';

/** Options of rbac. */
export interface RbacOptions extends GlobalOptions {
  serviceAccount?: string;
  user?: string;
  group?: string;
}

const NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

/** Print the objects (YAML for `kubectl apply -f -`; JSON lines with -o json). */
export async function run(opts: RbacOptions, io: Io): Promise<number> {
  const { config, path } = await openProject(opts, io.clock);
  if (rbacRules(config).length === 0) {
    throw new UsageError(`${path} uses no Kubernetes router, workload or state, so it needs no Role`, 'the Kubernetes routers (gateway-api, ingress-nginx), workload kubernetes and state kubernetes do');
  }
  const given = [opts.serviceAccount, opts.user, opts.group].filter((v) => v !== undefined);
  if (given.length > 1) throw new UsageError('name one subject: --service-account, --user or --group');
  // The namespace of deploy.yaml, else the kubeconfig context's (as every other command uses).
  const namespace = config.kubernetes?.namespace ?? (await (await import('../src/kube/connect.js')).connectKube(config.kubernetes ?? {})).namespace;
  const account = opts.serviceAccount ?? 'cutover';
  if (!opts.user && !opts.group && !NAME.test(account)) throw new UsageError(`--service-account ${account}: not a Kubernetes name`);
  const subject: RbacSubject = opts.user ? { kind: 'User', name: opts.user } : opts.group ? { kind: 'Group', name: opts.group } : { kind: 'ServiceAccount', name: account, namespace };
  const objects = rbacObjects(config, namespace, subject);
  if (io.out.format === 'json') for (const o of objects) io.stdout.write(`${JSON.stringify(o)}\n`);
  else io.stdout.write(objects.map((o) => stringify(o)).join('---\n'));
  return ExitCode.Done;
}
