/**
 * The schema of deploy.yaml, written once with zod: it validates the file, types the result and
 * generates the JSON Schema that `deploy schema` prints for editors.
 */
import { z } from 'zod';
import { parseDuration, parsePercent } from './units.js';

/** Version and service names: safe in file names, nginx upstream names and label values. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const name = (what: string) =>
  z.string().regex(NAME_PATTERN, `must be a ${what} name: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`);

/** The longest duration deploy.yaml accepts: a year (past it, dates overflow and nothing is meant). */
const MAX_DURATION_MS = 366 * 86_400_000;

/** A bad value as a message shows it: quoted, and cut short when it is long. */
export const shown = (value: unknown): string => {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}…` : text);
};

const durationBetween = (minMs: number, minText: string) =>
  z
    .union([z.string(), z.literal(0)])
    .transform((value, ctx) => {
      const ms = typeof value === 'number' ? 0 : parseDuration(value);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `must be a duration with a unit, like 30s, 10m or 1h30m (got ${shown(value)})` });
        return z.NEVER;
      }
      if (ms > MAX_DURATION_MS) {
        ctx.addIssue({ code: 'custom', message: `must be at most 366d (got ${shown(value)})` });
        return z.NEVER;
      }
      if (ms < minMs) {
        ctx.addIssue({ code: 'custom', message: `must be at least ${minText} (got ${shown(value)})` });
        return z.NEVER;
      }
      return ms;
    })
    .meta({ description: 'A duration: 500ms, 30s, 10m, 1h30m', examples: ['30m'] });

const duration = durationBetween(0, '0s');
/** How often gates are checked: a check needs at least this long. */
const interval = durationBetween(10, '10ms');
/** A driver's lease: it is renewed at a third of it, so it must leave room for that. */
const lease = durationBetween(1_000, '1s');

/** A percentage: `0.1%` or a bare number of percent; parsed into a fraction (0.1% → 0.001). */
const percent = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const p = parsePercent(value);
    if (p === undefined || p < 0 || p > 100) {
      ctx.addIssue({ code: 'custom', message: `must be a percentage between 0 and 100, like 0.1% (got ${shown(value)})` });
      return z.NEVER;
    }
    return p / 100;
  })
  .meta({ description: 'A percentage: 0.1% or 0.1', examples: ['0.1%'] });

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

const prometheus = z.strictObject({
  url: z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL, like http://127.0.0.1:9090'),
  timeout: duration.optional().meta({ description: 'Per request (default 5s); failures are retried with backoff' }),
  versionLabel: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'must be a Prometheus label name').optional()
    .meta({ description: 'Label that carries the version (default version)' }),
  orgLabel: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'must be a Prometheus label name').optional()
    .meta({ description: 'Label that carries the org id, for per-org gates (default org)' }),
  labels: z.record(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'must be a Prometheus label name'), z.string()).optional()
    .meta({ description: 'Extra label matchers added to every built-in query, e.g. { job: patient-api }' }),
});

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'must be host:port, like 127.0.0.1:9001')
  .refine((v) => {
    const port = Number(v.slice(v.lastIndexOf(':') + 1));
    return port >= 1 && port <= 65535;
  }, 'the port must be from 1 to 65535');

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

/** Org ids: letters, digits and `._-`, so an id can never inject config, PromQL or rule values. */
export const ORG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const orgId = z.string().regex(ORG_PATTERN, "must be an org id: letters, digits, '.', '_' or '-', starting with a letter or digit");

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

/** Kubernetes object names (DNS-1123 labels/subdomains). */
const kubeName = (what: string) =>
  z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, `must be a Kubernetes ${what} name: lower-case letters, digits, '-' or '.'`);

const kubernetes = z.strictObject({
  kubeconfig: z.string().min(1).optional().meta({ description: 'kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster)' }),
  context: z.string().min(1).optional().meta({ description: 'kubeconfig context (default: the current one)' }),
  namespace: kubeName('namespace').optional().meta({ description: "Namespace of the Deployments, Services, routes and state (default: the context's, else default)" }),
});

const kubeService = {
  service: kubeName('Service').meta({ description: 'Service of the stable version' }),
  canaryService: kubeName('Service').optional().meta({ description: 'Service of the candidate (default <service>-canary)' }),
  port: z.number().int().min(1).max(65535).optional().meta({ description: 'Service port (default 80)' }),
  orgHeader: z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be an HTTP header name').optional()
    .meta({ description: 'Header carrying the org id, matched by org rules (default X-Org-Id)' }),
};

const gatewayApiRouter = z.strictObject({
  type: z.literal('gateway-api'),
  httpRoute: kubeName('HTTPRoute').meta({ description: 'The HTTPRoute carrying the weights (created when missing, with parentRefs)' }),
  parentRefs: z.array(z.strictObject({ name: kubeName('Gateway'), namespace: kubeName('namespace').optional(), sectionName: z.string().min(1).optional() })).optional()
    .meta({ description: 'Gateways the HTTPRoute attaches to, when Cutover creates it' }),
  hostnames: z.array(z.string().min(1)).optional(),
  ...kubeService,
});

const ingressNginxRouter = z.strictObject({
  type: z.literal('ingress-nginx'),
  ingress: kubeName('Ingress').meta({ description: "The stable Ingress; Cutover manages its canary twin <ingress>-canary" }),
  ...kubeService,
});

const nginxRouter = z.strictObject({
  type: z.literal('nginx'),
  listen: hostPort.meta({ description: 'Where nginx serves users' }),
  admin: hostPort.meta({ description: 'Loopback address of the routing admin endpoint' }),
  prefix: z.string().min(1).optional().meta({ description: 'Folder Cutover owns for nginx (default .deploy/nginx)' }),
  binary: z.string().min(1).optional(),
  modulesDir: z.string().min(1).optional(),
  workerProcesses: z.number().int().min(1).max(64).optional(),
  orgHeader: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be an HTTP header name').optional(),
  orgCookie: z.string().regex(/^[A-Za-z0-9_]+$/, 'must be a cookie name of letters, digits or _').optional(),
});

const noRouter = z.strictObject({ type: z.literal('none') });

const arn = (kind: string, example: string) =>
  z.string().regex(new RegExp(`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\\d{12}:${kind}/`), `must be an ELBv2 ${kind} ARN, like ${example}`);
const listenerArn = arn('listener', 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/patient-api/50dc6c495c0c9188/f2f7dc8efc522ab2');
const targetGroupArn = arn('targetgroup', 'arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/patient-api-v1/943f017f100becff');

const albRouter = z
  .strictObject({
    type: z.literal('alb'),
    listenerArn: listenerArn.meta({ description: 'The listener whose default action (or rule) carries the weights' }),
    rule: z
      .union([
        z.strictObject({ arn: arn('listener-rule', 'arn:aws:elasticloadbalancing:…:listener-rule/app/…') }),
        z.strictObject({
          priority: z.number().int().min(1).max(50_000),
          pathPatterns: z.array(z.string().min(1).max(128)).optional(),
          hostHeaders: z.array(z.string().min(1).max(128)).optional(),
        }),
      ])
      .optional()
      .meta({ description: 'Weights on this listener rule instead of the default action: { arn } or { priority, pathPatterns?, hostHeaders? } (created when missing)' }),
    targetGroups: z.record(name('version'), targetGroupArn).meta({ description: 'Target group ARN of each version, e.g. { v1: arn:…, v2: arn:… }' }),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region, like eu-west-1').optional()
      .meta({ description: "AWS region (default: AWS_REGION, the profile's, else the listener ARN's)" }),
    profile: z.string().min(1).optional().meta({ description: 'AWS profile from the shared config files (default: AWS_PROFILE or default)' }),
    endpointUrl: z.string().regex(/^https?:\/\/[^\s]+$/, 'must be an http(s) URL').optional()
      .meta({ description: 'An ELBv2-compatible endpoint instead of AWS (a local emulator)' }),
    orgHeader: z.string().regex(/^[A-Za-z0-9-]{1,40}$/, 'must be an HTTP header name of at most 40 characters').optional()
      .meta({ description: 'Header carrying the org id, matched by org rules (default X-Org-Id)' }),
    maxRules: z.number().int().min(1).max(10_000).optional()
      .meta({ description: 'Rules the load balancer may hold (default 100, the ALB quota; raise it with your quota)' }),
  });

const kubeWorkload = z.strictObject({
  type: z.literal('kubernetes'),
  deployment: kubeName('Deployment').meta({ description: 'The stable Deployment; the candidate runs in <deployment>-canary' }),
  canaryDeployment: kubeName('Deployment').optional(),
  container: z.string().min(1).optional().meta({ description: "Container whose image is the version's (default: the first)" }),
  replicas: z.number().int().min(1).max(10_000).optional()
    .meta({ description: "Replicas at 100% (default: the stable Deployment's); the canary gets its share per step, at least 1" }),
  progressDeadline: duration.optional().meta({ description: 'How long a scale-up or promotion may take to become ready (default 5m)' }),
});

const kubeState = z.strictObject({
  type: z.literal('kubernetes'),
  name: kubeName('ConfigMap').optional().meta({ description: 'Name prefix of the ConfigMaps and the Lease (default cutover-<service>)' }),
  lease: lease.optional().meta({ description: 'Driver Lease duration (default 30s), renewed at a third of it' }),
  auditMaxBytes: z.number().int().min(16_384).max(100 * 1024 * 1024).optional()
    .meta({ description: 'Bound of the audit log kept in the cluster (default 8 MiB); at the bound new rollouts are refused until `deploy history --archive`' }),
});

const localState = z.strictObject({
  type: z.literal('local'),
  dir: z.string().min(1).optional().meta({ description: 'Folder for state, lock and audit log (default .deploy)' }),
  lease: lease.optional().meta({ description: 'Driver lock lease (default 30s)' }),
});

/** The whole deploy.yaml. */
export const configSchema = z
  .strictObject({
    service: name('service'),
    stable: name('version').meta({ description: 'The version serving users before the first rollout' }),
    versions: z.record(name('version'), version).refine((v) => Object.keys(v).length >= 1, 'must list at least one version'),
    router: z.discriminatedUnion('type', [nginxRouter, albRouter, gatewayApiRouter, ingressNginxRouter, noRouter], {
      error: (issue) =>
        issue.code === 'invalid_union'
          ? `must be one of: nginx, alb, gateway-api, ingress-nginx, none (got ${JSON.stringify((issue.input as { type?: unknown } | undefined)?.type ?? null)})`
          : undefined,
    }),
    state: z.discriminatedUnion('type', [localState, kubeState], {
      error: (issue) =>
        issue.code === 'invalid_union' ? `type must be one of: local, kubernetes (got ${JSON.stringify((issue.input as { type?: unknown } | undefined)?.type ?? null)})` : undefined,
    }).optional(),
    workload: z.discriminatedUnion('type', [kubeWorkload, noRouter], {
      error: (issue) =>
        issue.code === 'invalid_union' ? `type must be one of: kubernetes, none (got ${JSON.stringify((issue.input as { type?: unknown } | undefined)?.type ?? null)})` : undefined,
    }).optional(),
    kubernetes: kubernetes.optional(),
    strategy: z
      .strictObject({ canary: canary.optional(), orgWaves: orgWaves.optional(), blueGreen: blueGreen.optional() })
      .refine((st) => [st.canary, st.orgWaves, st.blueGreen].filter(Boolean).length <= 1, 'choose one strategy: canary, orgWaves or blueGreen')
      .optional(),
    orgs: orgs.optional(),
    prometheus: prometheus.optional(),
    gates: z.array(gate).optional(),
  })
  .superRefine((c, ctx) => {
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
    if (c.gates?.some((g) => g.type !== 'journey') && !c.prometheus) {
      ctx.addIssue({ code: 'custom', path: ['gates'], message: 'gates read Prometheus: add prometheus: { url: http://… }' });
    }
    c.gates?.forEach((g, i) => {
      if (g.type !== 'journey' || g.url) return;
      for (const [v, spec] of Object.entries(c.versions)) {
        if (!spec.endpoints) ctx.addIssue({ code: 'custom', path: ['gates', i, 'url'], message: `journey ${g.name} reaches each version at its endpoints, and ${v} lists none: give the gate a url with {{version}}` });
      }
    });
    const upstreams = new Map<string, string>();
    for (const [v, spec] of Object.entries(c.versions)) {
      // nginx names each version's upstream with '.' as '_': two names must not meet there.
      const upstream = v.replaceAll('.', '_');
      if (c.router.type === 'nginx' && upstreams.has(upstream)) {
        ctx.addIssue({ code: 'custom', path: ['versions', v], message: `versions "${upstreams.get(upstream)}" and "${v}" would share one nginx upstream; rename one` });
      }
      upstreams.set(upstream, v);
      if (c.router.type === 'nginx' && !spec.endpoints) {
        ctx.addIssue({ code: 'custom', path: ['versions', v, 'endpoints'], message: 'the nginx router needs the endpoints of every version' });
      }
      if (c.router.type === 'alb' && !c.router.targetGroups[v]) {
        ctx.addIssue({ code: 'custom', path: ['router', 'targetGroups'], message: `needs the target group ARN of version ${v}` });
      }
    }
    if (c.router.type === 'alb') {
      for (const v of Object.keys(c.router.targetGroups)) {
        if (!(v in c.versions)) ctx.addIssue({ code: 'custom', path: ['router', 'targetGroups', v], message: `is not a version listed under versions: (${Object.keys(c.versions).join(', ')})` });
      }
    }
    if ((c.router.type === 'gateway-api' || c.router.type === 'ingress-nginx') && c.workload?.type !== 'kubernetes') {
      ctx.addIssue({
        code: 'custom',
        path: ['router', 'type'],
        message: `${c.router.type} routes to a stable and a canary Service: add workload: { type: kubernetes, deployment: … } so the candidate runs behind the canary Service and is promoted into the stable one`,
      });
    }
    if (c.workload?.type === 'kubernetes') {
      for (const [v, spec] of Object.entries(c.versions)) {
        if (!spec.image && v !== c.stable) ctx.addIssue({ code: 'custom', path: ['versions', v, 'image'], message: 'the kubernetes workload needs the image of every version it can roll out' });
      }
    }
    if (!(c.stable in c.versions)) {
      ctx.addIssue({
        code: 'custom',
        path: ['stable'],
        message: `must be one of the versions listed under versions: (${Object.keys(c.versions).join(', ')})`,
      });
    }
  });

/** deploy.yaml as written (durations still strings). */
export type ConfigInput = z.input<typeof configSchema>;
/** deploy.yaml validated, durations in milliseconds. */
export type Config = z.output<typeof configSchema>;
/** The orgs section. */
export type OrgsConfig = z.output<typeof orgs>;
/** The orgWaves strategy. */
export type OrgWavesConfig = z.output<typeof orgWaves>;
/** One gate as validated. */
export type GateConfig = z.output<typeof gate>;
/** The prometheus section. */
export type PrometheusConfig = z.output<typeof prometheus>;
/** The nginx router section. */
export type NginxRouterConfig = z.output<typeof nginxRouter>;
/** The blueGreen strategy. */
export type BlueGreenConfig = z.output<typeof blueGreen>;
/** The gateway-api router section. */
export type GatewayApiRouterConfig = z.output<typeof gatewayApiRouter>;
/** The ingress-nginx router section. */
export type IngressNginxRouterConfig = z.output<typeof ingressNginxRouter>;
/** The kubernetes workload section. */
export type KubeWorkloadConfig = z.output<typeof kubeWorkload>;
/** The kubernetes state section. */
export type KubeStateConfig = z.output<typeof kubeState>;
/** The kubernetes connection section. */
export type KubernetesConfig = z.output<typeof kubernetes>;
/** The alb router section. */
export type AlbRouterConfig = z.output<typeof albRouter>;

/** JSON Schema of deploy.yaml (input form), for editors. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}
