/**
 * The command line: commander wiring only. Each command module is imported when it runs, so
 * `deploy --help` loads no SDK, no YAML parser and no router.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { GlobalOptions, Io } from './context.js';
import type { Streams } from '../ui/output.js';

const EXIT_CODES =
  '\nExit codes: 0 done, 1 unexpected error, 2 bad usage or config, 3 rolled back or aborted,\n4 paused (waiting for `deploy promote`), 5 another driver holds the lock.';

/**
 * Help with the global options in every command's. The help is plain text (no colour), so its
 * width is its length: commander's default strips terminal escapes first, whose pattern alone
 * costs `deploy --help` a few milliseconds to compile.
 */
const HELP = { showGlobalOptions: true, displayWidth: (text: string) => text.length };

type CommandModule = { run: (opts: never, io: Io, args: string[]) => Promise<number> };

/**
 * Run the CLI with `argv` (without node and script) and return the exit code. `stdin` may be given
 * as a function, called only by a command that runs: `--help` never opens the stream.
 */
export async function main(argv: string[], streams: Streams, stdin: Io['stdin'] | (() => Io['stdin']), clock: () => number = Date.now): Promise<number> {
  // Answered before anything else loads: every other command pays nothing for it.
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    streams.stdout.write(`${ownVersion()}\n`);
    return 0;
  }
  let exitCode = 0;
  const program = new Command('deploy')
    .description('Progressive delivery: canary steps, metric gates, automatic rollback, organization-atomic cutovers.')
    .addOption(new Option('-f, --file <path>', 'config file').default('deploy.yaml'))
    .addOption(new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--no-color', 'no colour (NO_COLOR is honoured too)')
    .option('--region <region>', 'AWS region of the AWS providers, over aws.region (else AWS_REGION, the profile, the ARN)')
    .option('--profile <name>', 'AWS profile of the AWS providers, over aws.profile (else AWS_PROFILE)')
    .option('--endpoint-url <url>', 'an AWS-compatible endpoint for the AWS providers (a local emulator)')
    .option('--kubeconfig <path>', 'kubeconfig for Kubernetes routers, workloads and state (else KUBECONFIG, ~/.kube/config, in-cluster)')
    .option('--context <name>', 'kubeconfig context (else the current one)')
    .option('--target <name>', 'a fleet: act on this target only, for repairs (repeatable); the others are read, never written', (v: string, all: string[] = []) => [...all, v])
    .option('-V, --version', 'print the version of deploy')
    .showHelpAfterError('(run `deploy --help` for usage)')
    .configureOutput({ writeOut: (s) => streams.stdout.write(s), writeErr: (s) => streams.stderr.write(s) })
    .exitOverride()
    .configureHelp(HELP)
    .addHelpText('after', EXIT_CODES);

  const lazy = (load: () => Promise<CommandModule>) =>
    async function (this: Command, ...args: unknown[]) {
      const cmd = args.at(-1) as Command;
      const opts = cmd.optsWithGlobals() as GlobalOptions;
      const { createOutput } = await import('../ui/output.js');
      const io: Io = { ...streams, stdin: typeof stdin === 'function' ? stdin() : stdin, clock, out: createOutput(opts.output, opts.color, streams) };
      const mod = await load();
      exitCode = await mod.run(opts as never, io, cmd.args);
    };

  program.command('init').description('write a commented deploy.yaml').option('--force', 'overwrite an existing file')
    .action(lazy(() => import('../../commands/init.js')));
  program.command('plan').description('print the steps a rollout would take')
    .action(lazy(() => import('../../commands/plan.js')));
  program.command('promote').description('start a rollout to a version, or continue a paused one')
    .option('--to <version>', 'the candidate version (default: the rollout in progress)')
    .option('--full', 'skip the remaining steps (asks first)')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--no-tui', 'plain lines instead of the console on a terminal')
    .action(lazy(() => import('../../commands/promote.js')));
  program.command('pause').description('pause the rollout at its current step')
    .action(lazy(() => import('../../commands/pause.js')));
  program.command('resume').description('carry on a rollout from its last recorded step')
    .option('--no-tui', 'plain lines instead of the console on a terminal')
    .action(lazy(() => import('../../commands/resume.js')));
  program.command('abort').description('send all traffic back to stable now')
    .option('--reason <text>', 'why, for the audit log')
    .option('--keep-pins', 'leave orgs pinned to the candidate where they are (default: they return to stable too)')
    .action(lazy(() => import('../../commands/abort.js')));
  program.command('status').description('show the rollout state')
    .option('-w, --watch', 'keep showing it until the rollout stops')
    .action(lazy(() => import('../../commands/status.js')));
  program.command('watch').description('follow the rollout in the console; its keys ask the driver to act')
    .option('--no-tui', 'plain lines (as status --watch) instead of the console')
    .action(lazy(() => import('../../commands/watch.js')));
  program.command('report').description('the rollout as one self-contained HTML page, or Markdown, for the change record')
    .addOption(new Option('--format <format>', 'html: a page with charts that fetches nothing when opened; markdown: the summary for any CI').choices(['html', 'markdown']).default('html'))
    .option('--out <file>', 'write it to FILE instead of stdout')
    .option('--rollout <id>', 'the rollout to report (default: the latest in the audit log)')
    .action(lazy(() => import('../../commands/report.js')));
  program.command('history').description('show the audit log and verify its hash chain')
    .option('-n, --limit <count>', 'only the last N records', (v) => {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('must be a whole number of records, 1 or more, like -n 20');
      return Number(v);
    })
    .option('--archive <file>', 'move the audit log kept in the cluster to FILE (JSON lines), keeping the chain verifiable')
    .option('--verify', 'say what the verification proves; with --public-key, check every record is signed by that key')
    .option('--public-key <file>', 'Ed25519 public key (PEM) the records must be signed with')
    .action(lazy(() => import('../../commands/history.js')));
  const gates = program.command('gates').description('evaluate or replay the metric gates');
  gates.command('check').description('evaluate every gate now')
    .option('--candidate <version>', 'version to judge (default: the rollout in progress)')
    .option('--stable <version>', 'baseline version (default: the stable one)')
    .option('--window <duration>', 'window to judge (default: the current hold, else 5m)')
    .action(lazy(async () => ({ run: (await import('../../commands/gates.js')).check })));
  gates.command('backtest').description('replay the gates over a past window')
    .requiredOption('--from <time>', 'start: ISO 8601, or a duration ago like 2h')
    .option('--to <time>', 'end (default now)')
    .option('--interval <duration>', 'time between checks', '30s')
    .option('--candidate <version>', 'version to judge')
    .option('--stable <version>', 'baseline version')
    .action(lazy(async () => ({ run: (await import('../../commands/gates.js')).backtest })));
  const orgs = program.command('orgs').description('organizations and the version each uses');
  const orgsCommand = (name: string) => lazy(async () => ({ run: (await import('../../commands/orgs.js'))[name as 'list'] }));
  orgs.command('list').description('every org, its version, since when and by whom').action(orgsCommand('list'));
  orgs.command('move').description('move orgs to a version in one write, all or nothing')
    .argument('[org...]', 'org ids').option('--group <group>', 'every org of a group').option('--all', 'every org')
    .option('--to <version>', 'the version').option('--reason <text>', 'why, for the audit log')
    .action(orgsCommand('move'));
  orgs.command('pin').description('pin orgs to a version').argument('<org...>', 'org ids')
    .option('--to <version>', 'the version').option('--reason <text>', 'why, for the audit log')
    .action(orgsCommand('pin'));
  orgs.command('unpin').description('let orgs follow the default again').argument('[org...]', 'org ids')
    .option('--group <group>', 'every org of a group').option('--all', 'every org').option('--reason <text>', 'why, for the audit log')
    .action(orgsCommand('unpin'));
  const router = program.command('router').description("act on the router's own machinery");
  router.command('status').description("whether the router's own machinery runs, and what it serves (nginx)")
    .action(lazy(async () => ({ run: (await import('../../commands/router-machinery.js')).status })));
  router.command('stop').description("stop the nginx Cutover started (asks first; requests through it fail until the next deploy)")
    .option('-y, --yes', 'do not ask for confirmation')
    .action(lazy(async () => ({ run: (await import('../../commands/router-machinery.js')).stop })));
  router.command('rotate-secret').description("give the router's admin endpoint a new secret (nginx: written 0600, loaded by a reload)")
    .action(lazy(() => import('../../commands/router-rotate-secret.js')));
  program.command('iam-policy').description('print the least-privilege IAM policy the configured providers need')
    .action(lazy(() => import('../../commands/iam-policy.js')));
  program.command('rbac').description('print the minimal Kubernetes Role and RoleBinding the configured objects need')
    .option('--service-account <name>', 'bind a ServiceAccount of the namespace (default cutover)')
    .option('--user <name>', 'bind a user instead')
    .option('--group <name>', 'bind a group instead')
    .action(lazy(() => import('../../commands/rbac.js')));
  program.command('schema').description('print the JSON Schema of deploy.yaml')
    .action(lazy(() => import('../../commands/schema.js')));
  program.command('demo').description('a good and a bad release through real nginx and Prometheus on this machine')
    .option('--hold <duration>', 'hold at each step', '5s')
    .option('--keep', 'leave the sandbox folder in place afterwards')
    .action(lazy(() => import('../../commands/demo.js')));

  // Every command's help shows the global options and the exit codes too.
  const withHelp = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      sub.configureHelp(HELP).addHelpText('after', EXIT_CODES);
      withHelp(sub);
    }
  };
  withHelp(program);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (e) {
    return reportError(e, streams);
  }
}

/** Turn an error into a message on stderr and its exit code. */
async function reportError(e: unknown, streams: Streams): Promise<number> {
  const err = e as { code?: string; exitCode?: number; message?: string; hint?: string };
  if (typeof err.code === 'string' && err.code.startsWith('commander.')) {
    // commander printed its message already; help and version are successes.
    return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help' ? 0 : 2;
  }
  const { CutoverError } = await import('../errors.js');
  if (e instanceof CutoverError) {
    streams.stderr.write(`deploy: ${e.message}\n`);
    if (e.hint) streams.stderr.write(`  hint: ${e.hint}\n`);
    return e.exitCode;
  }
  streams.stderr.write(`deploy: unexpected error: ${err.message ?? String(e)}\n`);
  if (process.env.DEPLOY_DEBUG && e instanceof Error) streams.stderr.write(`${e.stack}\n`);
  return 1;
}

/** The version in the project's package.json, found upwards from this module (compiled or not). */
function ownVersion(): string {
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cutover' && pkg.version) return pkg.version;
    } catch {
      // not here: look further up
    }
  }
  return 'unknown';
}
