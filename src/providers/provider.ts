/**
 * What a provider is: one router, workload or state backend in a folder of its own, described to
 * the rest of Cutover by a single descriptor — its deploy.yaml section (a zod schema with a
 * `type` literal), the rules that tie that section to the rest of the file, how to build it, and
 * what it needs (Kubernetes verbs for `deploy rbac`, IAM actions for `deploy iam-policy`, the
 * connection flags it honours, its limits for `deploy plan`). The registry (registry.ts) lists
 * them; the config schema, the factories and those commands are assembled from that list, so no
 * command or core module names a provider.
 *
 * A descriptor module loads nothing heavy: its section's schema is in a module of its own
 * (section.ts beside it), loaded only when a deploy.yaml is validated, and its `create`/`open`
 * imports the implementation (and its SDK) when called, so `deploy status` pays neither for zod
 * nor for an SDK it does not use.
 */
import type { z } from 'zod';
import type { PolicyStatement } from '../aws/iam.js';
import type { ProviderConfig as Config } from '../config/schema.js';
import type { GateRunner } from '../engine/machine.js';
import type { Plan, PlanStep } from '../engine/plan.js';
import type { RolloutState } from '../engine/state.js';
import type { PolicyRule } from '../kube/rbac.js';
import type { Router } from '../routers/router.js';
import type { Metrics } from '../metrics/metrics.js';
import type { StateStore } from '../state/store.js';
import type { Workload } from '../workloads/workload.js';

/** The connections a provider may use; each has a top-level section and CLI flags. */
export type Platform = 'kubernetes' | 'aws';

/** Reports a problem with deploy.yaml at `path` (from the file's root). */
export type Issue = (path: (string | number)[], message: string) => void;

/** The providers a config names, for rules that depend on a neighbour (a router that needs a workload). */
export interface Chosen {
  router: RouterProvider;
  workload: WorkloadProvider | undefined;
  state: StateProvider;
}

/** What a provider is given to build itself. */
export interface ProviderContext {
  /** The whole validated deploy.yaml (connection sections with CLI overrides applied). */
  config: Config;
  /** The folder of deploy.yaml, for relative paths. */
  dir: string;
  /** The driver lock's lease: every call a provider makes must end well inside it. */
  leaseMs: number;
  clock: () => number;
  /** The providers this config names. */
  chosen: Chosen;
  /** Where a provider tells of what the operator should see happen (a throttled call retried). */
  report?: (event: ProviderEvent) => void;
  /** A fleet: the targets this command acts on (`--target`); the others are read, never written. */
  only?: string[];
}

/** What a provider reports while it works. */
export interface ProviderEvent {
  event: 'retry';
  /** The provider (`alb`) and the call (`ModifyListener`). */
  provider: string;
  operation: string;
  /** Why the attempt failed, in one line. */
  error: string;
  /** How long before the next attempt. */
  delayMs: number;
}

/** What every descriptor has. `S` is its section's zod schema. */
// Sections are typed by the schema; `any` keeps one list able to hold every provider's.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface ProviderBase<S extends z.ZodType = any> {
  /** `type:` in deploy.yaml. */
  readonly type: string;
  /** The section's schema, `type` literal included, loaded when a config is validated. */
  schema(): Promise<S>;
  /** Rules across sections (a version without endpoints, a router that needs a workload). */
  validate?(section: z.output<S>, config: Config, issue: Issue, chosen: Chosen): void;
  /** The connections it uses, so their flags and sections apply. */
  readonly platforms?: readonly Platform[];
  /** The Role rules it needs in its namespace (`deploy rbac`). */
  rbac?(section: z.output<S>, config: Config, chosen: Chosen): PolicyRule[];
  /** The IAM statements it needs (`deploy iam-policy`). */
  iam?(section: z.output<S>, config: Config): PolicyStatement[];
}

/** A traffic router. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface RouterProvider<S extends z.ZodType = any> extends ProviderBase<S> {
  create(section: z.output<S>, ctx: ProviderContext): Promise<Router>;
  /** What `deploy plan` should say about the router's limits for this config, if anything. */
  planNote?(section: z.output<S>, config: Config): string | undefined;
  /** The stable and canary Services, for routers that route to roles rather than versions. */
  services?(section: z.output<S>): { service: string; canaryService: string };
  /**
   * Shape the strategy's plan, for routers whose targets move in an order of their own (a fleet
   * in waves: one region through the ladder, then the next) or whose writes may fail for a while.
   */
  plan?(section: z.output<S>, config: Config, plan: Plan): Plan;
  /**
   * The gates of a rollout through `router`, for routers over several targets that judge the
   * gates in each of them (a fleet); absent: the config's gates over the config's metrics.
   */
  gates?(section: z.output<S>, ctx: ProviderContext, router: Router): Promise<GateRunner | undefined>;
}

/** What runs the versions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface WorkloadProvider<S extends z.ZodType = any> extends ProviderBase<S> {
  create(section: z.output<S>, ctx: ProviderContext): Promise<Workload | undefined>;
  /**
   * Whether versions run in role-named backends (a stable and a canary Service) and a promotion
   * hands the candidate to the stable one: route specs then carry the version → role map.
   */
  readonly roles?: boolean;
  /** Whether it makes the canary Service itself (the router must not require it beforehand). */
  readonly makesCanaryService?: boolean;
  /** Longest wait for the candidate's servers to be ready, when the section sets one. */
  readinessTimeout?(section: z.output<S>): number | undefined;
  /** The names of its parts (a release group's members), which a gate's `member:` may name. */
  members?(section: z.output<S>): string[];
  /**
   * The gates a step of the plan checks, of those the strategy gave it (`step.gates`): a gate
   * tied to a member that runs no candidate at this step could only ever be silent, so it is
   * left out until that member has candidate replicas. Absent: every gate on every held step.
   */
  gatesAt?(section: z.output<S>, config: Config, step: PlanStep): string[];
}

/**
 * A metrics source the gates read (`prometheus:`, `cloudwatch:`): a top-level section of its own
 * (at most one in a file), answering the gates' measurements in its own query language.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface MetricsSourceProvider<S extends z.ZodType = any, K extends string = string> {
  /** The top-level key of its section. */
  readonly section: K;
  /** The section's schema, loaded when a config is validated. */
  schema(): Promise<S>;
  /** How `deploy plan` names it: `Prometheus at http://…`. */
  describe(section: z.output<S>): string;
  /** The connections it uses. */
  readonly platforms?: readonly Platform[];
  /** The IAM statements it needs (`deploy iam-policy`). */
  iam?(section: z.output<S>, config: Config): PolicyStatement[];
  create(section: z.output<S>, ctx: { config: Config }): Promise<Metrics>;
}

/** Where state, lock, operator requests and the audit log live. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface StateProvider<S extends z.ZodType = any> extends ProviderBase<S> {
  open(section: z.output<S>, ctx: Omit<ProviderContext, 'chosen' | 'leaseMs'>): Promise<StateStore<RolloutState>>;
  /** The driver lease the section sets, if any. */
  lease?(section: z.output<S>): number | undefined;
}
