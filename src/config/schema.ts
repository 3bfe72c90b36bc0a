/**
 * The schema of deploy.yaml, written once with zod: it validates the file, types the result and
 * generates the JSON Schema that `deploy schema` prints for editors.
 */
import { z } from 'zod';
import { awsConnection } from '../aws/connection.js';
import { chosenProviders } from '../providers/chosen.js';
import type { Issue, MetricsSourceProvider, ProviderBase } from '../providers/provider.js';
import { metricsSources, routers, states, workloads } from '../providers/registry.js';
import { TARGET_PATTERN, targetConfig, targetPath, type TargetSection } from '../fleet/config.js';
import { notifySchema } from '../notify/schema.js';
import { duration, hostPort, interval, kubeName, name, orgId, percent } from './fields.js';

export { NAME_PATTERN, ORG_PATTERN, shown } from './patterns.js';

const gateName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be a gate name: lower-case letters, digits, _ or -');

const errorRateGate = z.strictObject({
  name: gateName,
  type: z.literal('errorRate'),
  maxIncrease: percent.optional().meta({ description: "Fail when the canary's error rate exceeds stable's by more than this (default 0.1%, in percentage points)" }),
  confidence: percent
    .refine((c) => c >= 0.5 && c < 1, 'must be at least 50% and below 100%, like 99%')
    .optional()
    .meta({ description: 'Confidence of every verdict, over any number of checks (default 99%)' }),
  baseline: z.enum(['window', 'history']).optional()
    .meta({ description: "What the candidate is compared with: stable over the same window (default), or stable's rate in the hour before the rollout (sharper; assumes stable's rate holds)" }),
  method: z.enum(['ladder', 'confidence-sequence']).optional()
    .meta({ description: 'ladder (default): fail fast on evidence of harm over the whole rollout, pass each step on its own margin, maxIncrease at the last; confidence-sequence: prove maxIncrease at every step' }),
  requests: z.string().min(1).optional().meta({ description: 'PromQL template counting requests of {{version}} over [{{window}}]' }),
  errors: z.string().min(1).optional().meta({ description: 'PromQL template counting failed requests of {{version}} over [{{window}}]' }),
  perOrg: z.boolean().optional().meta({ description: "Also judge each org's error rate on the candidate (metrics must carry prometheus.orgLabel)" }),
  member: name('member').optional()
    .meta({ description: "A release group's member this gate judges (a consumer's counters): checked from the step its candidate runs on" }),
});

const latencyGate = z
  .strictObject({
    name: gateName,
    type: z.literal('latencyP99'),
    max: duration.optional().meta({ description: "Fail when the canary's P99 exceeds this" }),
    maxFactor: z.number().gt(1, 'must be greater than 1').optional().meta({ description: "Fail when the canary's P99 exceeds stable's × this" }),
    minRequests: z.number().int().min(1).optional().meta({ description: 'Requests the canary must have served before a verdict (default 100)' }),
    method: z.enum(['quantile', 'ladder']).optional()
      .meta({ description: "quantile (default): the P99 against max or stable's × maxFactor; ladder: the share of requests slower than max, judged like the error rate (sound at low traffic)" }),
    maxIncrease: percent.optional()
      .meta({ description: 'ladder: how much the share of requests slower than max may rise over stable before 100% (default 1%)' }),
    histogram: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'must be a metric name').optional()
      .meta({ description: 'Histogram metric name without _bucket (default http_request_duration_seconds)' }),
  })
  .superRefine((g, ctx) => {
    if (g.max === undefined && g.maxFactor === undefined) ctx.addIssue({ code: 'custom', message: 'needs max (like 500ms) or maxFactor (like 1.5)' });
    if (g.method === 'ladder' && g.max === undefined) ctx.addIssue({ code: 'custom', path: ['max'], message: 'method: ladder counts the requests slower than max: set max (like 500ms), a bucket bound of the histogram' });
  });

const queryGate = z.strictObject({
  name: gateName,
  type: z.literal('query'),
  query: z.string().min(1).meta({ description: 'PromQL; {{version}}, {{service}}, {{stable}} and {{window}} are filled in' }),
  threshold: z.number(),
  direction: z.enum(['below', 'above']).meta({ description: 'Pass while the value is below (or above) the threshold' }),
});

const journeyStep = z.strictObject({
  name: z.string().min(1).max(80).optional(),
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']).optional().meta({ description: 'HTTP method (default GET)' }),
  path: z.string().regex(/^\/[^\s]*$/, 'must be a path starting with /, like /records/123'),
  headers: z.record(z.string(), z.string()).optional(),
  body: z.string().optional(),
  expect: z.union([z.number().int().min(100).max(599), z.array(z.number().int().min(100).max(599)).min(1)]).optional()
    .meta({ description: 'Status (or statuses) that count as success (default 200)' }),
  contains: z.string().min(1).optional().meta({ description: 'Text the answer must contain' }),
});

const journeyGate = z
  .strictObject({
    name: gateName,
    type: z.literal('journey'),
    steps: z.array(journeyStep).min(1, 'must list at least one step').optional()
      .meta({ description: 'HTTP steps run in order against each version; a run fails at its first failing step' }),
    command: z.array(z.string().min(1)).min(1).optional()
      .meta({ description: 'Instead of steps: a command run with CUTOVER_VERSION and CUTOVER_BASE_URL; exit 0 is a pass' }),
    url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL; {{version}} is filled in').optional()
      .meta({ description: "Where each version is reached, with {{version}} (default: the version's first endpoint)" }),
    headers: z.record(z.string(), z.string()).optional().meta({ description: 'Headers sent with every step (an org header, a probe token)' }),
    interval: duration.optional().meta({ description: 'Time between runs against each version (default: every check)' }),
    timeout: duration.optional().meta({ description: 'Per step, or for the whole command (default 10s)' }),
    maxIncrease: percent.optional().meta({ description: 'How much more often journeys may fail on the candidate before 100% (default 20%)' }),
  })
  .superRefine((g, ctx) => {
    if ((g.steps === undefined) === (g.command === undefined)) ctx.addIssue({ code: 'custom', message: 'needs steps: (HTTP steps) or command: (a probe of yours), one of the two' });
  });

const gate = z.discriminatedUnion('type', [errorRateGate, latencyGate, queryGate, journeyGate], {
  error: (issue) =>
    issue.code === 'invalid_union' ? `type must be one of: errorRate, latencyP99, query, journey (got ${JSON.stringify((issue.input as { type?: unknown } | undefined)?.type ?? null)})` : undefined,
});

/** A provider's section schema, as its descriptor loads it. */
type SectionOf<P extends { schema(): Promise<z.ZodType> }> = Awaited<ReturnType<P['schema']>>;

/** The section schemas of a list of providers, in its order (each in a module of its own, loaded here). */
async function sectionsOf<const T extends readonly { schema(): Promise<z.ZodType> }[]>(list: T) {
  return (await Promise.all(list.map((p) => p.schema()))) as { -readonly [K in keyof T]: SectionOf<T[K]> };
}

const [routerSections, workloadSections, stateSections, metricsSchemas] = await Promise.all([sectionsOf(routers), sectionsOf(workloads), sectionsOf(states), sectionsOf(metricsSources)]);

/** The top-level sections of the metrics sources, each optional. */
function metricsSections<const T extends readonly MetricsSourceProvider[]>(list: T, schemas: readonly z.ZodType[]) {
  return Object.fromEntries(list.map((m, i) => [m.section, schemas[i]!.optional()])) as { [P in T[number] as P['section']]: z.ZodOptional<SectionOf<P>> };
}

const step = z.strictObject({
  weight: z.number().min(0, 'must be between 0 and 100').max(100, 'must be between 0 and 100')
    .meta({ description: 'Share of traffic on the candidate, in percent' }),
  hold: duration.optional().meta({ description: 'How long to hold at this weight with gates checked' }),
  pause: z.boolean().optional().meta({ description: 'After the hold, wait for `deploy promote`' }),
  margin: percent.optional()
    .meta({ description: 'Increase of the error rate this step must rule out to pass (default: derived from traffic, maxIncrease at the last step before 100%)' }),
});

const canary = z
  .strictObject({
    steps: z.array(step).min(1, 'must list at least one step').optional(),
    defaultHold: duration.optional().meta({ description: 'Hold for steps that give none (default 10m)' }),
    checkInterval: interval.optional().meta({ description: 'How often gates are checked during a hold (default 10s)' }),
    inconclusive: z
      .strictObject({
        after: duration.optional().meta({ description: 'How long past the hold gates may stay inconclusive (default 30m)' }),
        action: z.enum(['pause', 'rollback']).optional().meta({ description: 'What then: pause for a person (default) or roll back' }),
      })
      .optional(),
  })
  .superRefine((c, ctx) => {
    c.steps?.forEach((s, i) => {
      const prev = c.steps![i - 1];
      if (prev && s.weight <= prev.weight) {
        ctx.addIssue({
          code: 'custom',
          path: ['steps', i, 'weight'],
          message: `must be greater than the previous step (${prev.weight})`,
        });
      }
    });
  });

const orgs = z.strictObject({
  unpinned: z.enum(['stable', 'weighted']).optional()
    .meta({ description: "Orgs not pinned: all on stable (default), or the rollout's weighted split, sticky per org" }),
  file: z.string().min(1).optional().meta({ description: 'Org directory: one org per line, `id [group …]`; # starts a comment' }),
  list: z.array(orgId).optional().meta({ description: 'Org ids, besides those in file' }),
  groups: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be a group name'), z.array(orgId)).optional()
    .meta({ description: 'Named groups of orgs, e.g. pilot: [st-marys, riverside]' }),
});

const wave = z
  .strictObject({
    group: z.string().optional().meta({ description: 'Move the orgs of this group' }),
    share: percent.optional().meta({ description: 'Move this share of all orgs (cumulative, chosen by a stable hash)' }),
    all: z.literal(true).optional().meta({ description: 'Move every org and all other traffic: the last wave' }),
    hold: duration.optional(),
    pause: z.boolean().optional(),
  })
  .superRefine((w, ctx) => {
    const kinds = [w.group !== undefined, w.share !== undefined, w.all !== undefined].filter(Boolean).length;
    if (kinds !== 1) ctx.addIssue({ code: 'custom', message: 'a wave names exactly one of: group, share, all' });
  });

const orgWaves = z.strictObject({
  waves: z.array(wave).min(1, 'must list at least one wave'),
  checkInterval: interval.optional(),
  inconclusive: z.strictObject({ after: duration.optional(), action: z.enum(['pause', 'rollback']).optional() }).optional(),
});

const blueGreen = z.strictObject({
  steps: z.number().int().min(1).max(100).optional()
    .meta({ description: 'Shift green to 100% in this many equal steps with gates between (default 1: all at once)' }),
  stepHold: duration.optional().meta({ description: 'Hold with gates after each step before the last (default 5m)' }),
  bake: duration.optional().meta({ description: 'Hold at 100% on green with gates, blue registered at weight 0 (default 30m)' }),
  healthTimeout: duration.optional().meta({ description: "How long to wait for green's targets to be healthy before any weight moves (default 5m)" }),
  checkInterval: interval.optional(),
  inconclusive: z.strictObject({ after: duration.optional(), action: z.enum(['pause', 'rollback']).optional() }).optional(),
});

const version = z.strictObject({
  endpoints: z.array(hostPort).min(1, 'must list at least one endpoint').optional()
    .meta({ description: 'host:port of the servers running this version (nginx upstream; the nginx router needs them)' }),
  image: z.string().regex(/^[^\s]+$/, 'must be a container image reference, like ghcr.io/acme/patient-api:1.5.0').optional()
    .meta({ description: 'Container image of this version (the kubernetes workload puts it in the canary Deployment)' }),
});

const kubernetes = z.strictObject({
  kubeconfig: z.string().min(1).optional().meta({ description: 'kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster)' }),
  context: z.string().min(1).optional().meta({ description: 'kubeconfig context (default: the current one)' }),
  namespace: kubeName('namespace').optional().meta({ description: "Namespace of the Deployments, Services, routes and state (default: the context's, else default)" }),
});

/**
 * One provider section (`router:`, `workload:`, `state:`): the union of the registry's schemas
 * for that kind, with an error that lists the types there are.
 */
function providerSection<const T extends readonly [ProviderBase, ...ProviderBase[]]>(list: T, schemas: readonly z.ZodType[], lead = 'type must be') {
  const types = list.map((p) => p.type).join(', ');
  return z.discriminatedUnion('type', schemas as unknown as { -readonly [K in keyof T]: SectionOf<T[K]> }, {
    error: (issue) =>
      issue.code === 'invalid_union' ? `${lead} one of: ${types} (got ${JSON.stringify((issue.input as { type?: unknown } | undefined)?.type ?? null)})` : undefined,
  });
}

/**
 * One target of a fleet (a region, a cluster): its own router, workload and connections, its
 * servers of each version and its metrics labels, over the top level (see src/fleet/config.ts).
 */
const target = z.strictObject({
  router: providerSection(routers, routerSections, 'must be'),
  workload: providerSection(workloads, workloadSections).optional(),
  kubernetes: kubernetes.optional().meta({ description: "This target's cluster: kubeconfig, context, namespace (over the top-level kubernetes:)" }),
  aws: awsConnection.optional().meta({ description: "This target's AWS region and profile (over the top-level aws:)" }),
  versions: z.record(name('version'), version).optional()
    .meta({ description: "This target's servers of each version (endpoints, image), over the top-level versions:" }),
  prometheus: z
    .strictObject({
      url: z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL').optional().meta({ description: "This target's own Prometheus (default: the top-level one)" }),
      labels: z.record(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'must be a Prometheus label name'), z.string()).optional()
        .meta({ description: "Label matchers that select this target's series, e.g. { region: eu }" }),
    })
    .optional(),
});

const audit = z.strictObject({
  signingKey: z.union([
    z.strictObject({ env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name') }),
    z.strictObject({ file: z.string().min(1) }),
  ]).optional()
    .meta({ description: 'Ed25519 private key (PEM) that signs every audit record: { env: NAME } or { file: path }; never stored with the state' }),
});

/** Every section but the providers'. */
const core = {
  service: name('service'),
  stable: name('version').meta({ description: 'The version serving users before the first rollout' }),
  versions: z.record(name('version'), version).refine((v) => Object.keys(v).length >= 1, 'must list at least one version'),
  kubernetes: kubernetes.optional(),
  aws: awsConnection.optional(),
  strategy: z
    .strictObject({ canary: canary.optional(), orgWaves: orgWaves.optional(), blueGreen: blueGreen.optional() })
    .refine((st) => [st.canary, st.orgWaves, st.blueGreen].filter(Boolean).length <= 1, 'choose one strategy: canary, orgWaves or blueGreen')
    .optional(),
  orgs: orgs.optional(),
  audit: audit.optional(),
  notify: notifySchema.optional(),
  ...metricsSections(metricsSources, metricsSchemas),
  gates: z.array(gate).optional(),
};
const coreObject = z.strictObject(core);

const configObject = z.strictObject({
  ...core,
  router: providerSection(routers, routerSections, 'must be'),
  state: providerSection(states, stateSections).optional(),
  workload: providerSection(workloads, workloadSections).optional(),
  targets: z
    .record(z.string().regex(TARGET_PATTERN, 'must be a target name: lower-case letters, digits or -, up to 31'), target)
    .refine((t) => Object.keys(t).length >= 2, 'a fleet has at least two targets')
    .optional()
    .meta({ description: 'A fleet: the regions or clusters one rollout drives together (router: { type: fleet })' }),
});

/** The whole deploy.yaml. */
export const configSchema = configObject.superRefine((c, ctx) => {
  const seen = new Set<string>();
  c.gates?.forEach((g, i) => {
    if (seen.has(g.name)) ctx.addIssue({ code: 'custom', path: ['gates', i, 'name'], message: `gate "${g.name}" is named twice` });
    seen.add(g.name);
  });
  if (c.strategy?.orgWaves && !c.orgs) {
    ctx.addIssue({ code: 'custom', path: ['strategy', 'orgWaves'], message: 'org waves move orgs: add orgs: (file, list or groups)' });
  }
  c.strategy?.orgWaves?.waves.forEach((w, i) => {
    if (w.group !== undefined && !c.orgs?.groups?.[w.group]) {
      ctx.addIssue({ code: 'custom', path: ['strategy', 'orgWaves', 'waves', i, 'group'], message: `no group "${w.group}" under orgs.groups` });
    }
  });
  const sources = metricsSources.filter((m) => c[m.section] !== undefined);
  if (c.gates?.some((g) => g.type !== 'journey') && sources.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['gates'], message: `gates read metrics: add a metrics section (${metricsSources.map((m) => `${m.section}:`).join(', ')}), like prometheus: { url: http://… }` });
  }
  if (sources.length > 1) ctx.addIssue({ code: 'custom', path: [sources[1]!.section], message: `gates read one metrics source: choose one of ${sources.map((m) => `${m.section}:`).join(' and ')}` });
  c.gates?.forEach((g, i) => {
    if (g.type !== 'journey' || g.url) return;
    for (const [v, spec] of Object.entries(c.versions)) {
      if (!spec.endpoints) ctx.addIssue({ code: 'custom', path: ['gates', i, 'url'], message: `journey ${g.name} reaches each version at its endpoints, and ${v} lists none: give the gate a url with {{version}}` });
    }
  });
  if (!(c.stable in c.versions)) {
    ctx.addIssue({
      code: 'custom',
      path: ['stable'],
      message: `must be one of the versions listed under versions: (${Object.keys(c.versions).join(', ')})`,
    });
  }
  // The rules each provider sets across sections (a version without endpoints, a router that needs a workload).
  const chosen = chosenProviders(c);
  const members = c.workload ? chosen.workload?.members?.(c.workload) : undefined;
  c.gates?.forEach((g, i) => {
    if (g.type !== 'errorRate' || g.member === undefined) return;
    if (!members) ctx.addIssue({ code: 'custom', path: ['gates', i, 'member'], message: 'only a workload with members (type group) has members to tie a gate to' });
    else if (!members.includes(g.member)) ctx.addIssue({ code: 'custom', path: ['gates', i, 'member'], message: `no member "${g.member}" in workload.members (members: ${members.join(', ')})` });
  });
  const issue: Issue = (path, message) => ctx.addIssue({ code: 'custom', path, message });
  chosen.router.validate?.(c.router, c, issue, chosen);
  if (c.targets && c.router.type !== 'fleet') issue(['router', 'type'], 'targets: are driven together by router: { type: fleet }');
  // A fleet's targets: each target's providers check the config as that target sees it.
  for (const [name, t] of Object.entries(c.targets ?? {})) {
    for (const v of Object.keys(t.versions ?? {})) if (!(v in c.versions)) issue(['targets', name, 'versions', v], `not a version listed under versions: (${Object.keys(c.versions).join(', ')})`);
    if (t.router.type === 'fleet') issue(['targets', name, 'router', 'type'], 'a target has a router of its own (nginx, alb, …), not a fleet');
    if (t.workload && c.workload?.type !== 'fleet') issue(['targets', name, 'workload'], 'targets run workloads: set workload: { type: fleet } so the rollout drives them');
    const tc = targetConfig(c, name);
    const tChosen = chosenProviders(tc);
    const tIssue: Issue = (path, message) => issue(targetPath(name, path, t), `${message} (target ${name})`);
    if (t.router.type !== 'fleet') tChosen.router.validate?.(tc.router, tc, tIssue, tChosen);
    if (tc.workload && tc.workload.type !== 'fleet') tChosen.workload?.validate?.(tc.workload, tc, tIssue, tChosen);
  }
  if (c.workload) chosen.workload?.validate?.(c.workload, c, issue, chosen);
  if (c.state) chosen.state.validate?.(c.state, c, issue, chosen);
});

/** deploy.yaml as written (durations still strings). */
export type ConfigInput = z.input<typeof configSchema>;
/**
 * What a provider sees of deploy.yaml: every section but the providers' own, which it knows by
 * type only (its own section comes typed as its argument).
 */
export type ProviderConfig = z.output<typeof coreObject> & {
  router: { type: string };
  workload?: { type: string } | undefined;
  state?: { type: string } | undefined;
  /** A fleet's targets, their provider sections known by type only. */
  targets?: Record<string, TargetSection> | undefined;
};
/** deploy.yaml validated, durations in milliseconds. */
export type Config = z.output<typeof configObject>;
/** The orgs section. */
export type OrgsConfig = z.output<typeof orgs>;
/** The orgWaves strategy. */
export type OrgWavesConfig = z.output<typeof orgWaves>;
/** One gate as validated. */
export type GateConfig = z.output<typeof gate>;
/** The prometheus section. */
export type { PrometheusConfig } from '../metrics/prometheus/index.js';
/** The blueGreen strategy. */
export type BlueGreenConfig = z.output<typeof blueGreen>;
/** The kubernetes connection section. */
export type KubernetesConfig = z.output<typeof kubernetes>;

/** JSON Schema of deploy.yaml (input form), for editors. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
