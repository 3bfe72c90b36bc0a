/**
 * The one interface every traffic router implements (nginx, ALB, Gateway API, ingress-nginx).
 * Shaped after Argo Rollouts' TrafficRoutingReconciler and Flagger's router.Interface: the engine
 * computes the desired split, the router writes it only when the live one differs, and reads it
 * back before anything is reported done.
 */

/** Traffic share per version, in whole or fractional percent; the values sum to 100. */
export type Weights = Record<string, number>;

/** Org id → version for orgs pinned to a version. */
export type OrgRoutes = Record<string, string>;

/**
 * Where requests of orgs that are not pinned go: by the weighted split, sticky per org (an org's
 * id picks its bucket, so all its users land on one version), or all to one version.
 */
export type UnpinnedRoute = { mode: 'weighted' } | { mode: 'version'; version: string };

/** The whole routing a router is asked to make live, written as one generation. */
export interface RouteSpec {
  /** The weighted split for requests that carry no pinned org. */
  weights: Weights;
  /** Pinned orgs; absent or empty when the router should route by weight only. */
  orgs?: OrgRoutes;
  /** Unpinned orgs; absent means weighted (sticky per org). Requests with no org are split by weight. */
  unpinned?: UnpinnedRoute;
  /**
   * Which backend serves each version, when backends are roles rather than versions (Kubernetes:
   * the stable Service and the canary Service; after a promotion the candidate runs in stable).
   * The engine fills it in on every write; routers with one backend per version ignore it.
   */
  roles?: VersionRoles;
  /**
   * The writer's fencing token (its lock's). A router that can keep it with the routing refuses
   * a write carrying an older token than the live one (LockedError), so a driver that lost its
   * lock mid-write cannot undo the newer holder's routing. Not part of what is compared.
   */
  fence?: number;
  /**
   * Routers over several targets (a fleet of regions): the weights of each named target where
   * they differ from `weights`, as the waves strategy moves one target at a time. Org pins and
   * the unpinned policy are the same in every target. Other routers ignore it.
   */
  targets?: Record<string, Weights>;
  /**
   * Set on a write that takes traffic back to safety (a rollback or an abort): a router over
   * several targets makes it live in every target it can reach at once, rather than all or none.
   */
  rollback?: boolean;
}

/** Version → the role whose backend serves it. */
export type VersionRoles = Record<string, 'stable' | 'canary'>;

/** What a router reads back from the live system (a fleet adds each target's weights, as `RouteSpec.targets`). */
export interface LiveRoutes extends Omit<RouteSpec, 'targets' | 'rollback'> {
  /** Monotonic generation of the live routing, when the router has one. */
  generation?: number;
}

/** Answer of a verification: verified, mismatched (with what is live), or unverifiable. */
export type Verification =
  | { status: 'verified'; live: LiveRoutes }
  | { status: 'mismatch'; live: LiveRoutes; detail: string }
  | { status: 'unverifiable'; detail: string };

/** A generation stored by `Router.stage` but not live yet. */
export interface StagedRoutes {
  /** The generation stored; `activate` makes it live. */
  generation: number;
  /** False when the live routing already equals the spec: nothing was stored, nothing to activate. */
  changed: boolean;
}

/** Result of an apply: whether a write happened and the generation now live. */
export interface ApplyResult {
  changed: boolean;
  generation?: number;
  /** Routers that switch at one instant (a fleet that staged the write): that instant, epoch ms. */
  activatedAt?: number;
  /**
   * Set when the live object had been changed by someone else since the router last wrote it
   * (detected by its resourceVersion or content): what differed. The write was made on the fresh
   * object, never over the edit blindly; the engine records this in the audit log.
   */
  drift?: string;
}

/** A traffic router. */
export interface Router {
  /** Short provider name as in config (`nginx`, `alb`, …). */
  readonly type: string;
  /**
   * Check the router can be written (binary present, endpoint reachable, credentials valid) before
   * a rollout records anything; throws UsageError for bad config or a missing tool (exit 2),
   * OperationError when the endpoint is down.
   */
  preflight(): Promise<void>;
  /**
   * Refuse, without I/O, a spec this router could never carry (too many orgs or rules, an unknown
   * version): throws UsageError. Callers ask before they record anything.
   */
  check?(spec: RouteSpec): void;
  /**
   * Make `spec` live as one write (one config generation), only if it differs from what is live,
   * then read it back. Throws when the write or its read-back fails; the previous routing stays.
   */
  apply(spec: RouteSpec): Promise<ApplyResult>;
  /** Read the live routing. */
  read(): Promise<LiveRoutes>;
  /** Compare the live routing with `spec`; may answer "can't verify". */
  verify(spec: RouteSpec): Promise<Verification>;
  /** Remove everything this router manages, leaving traffic on `fallbackVersion`. */
  removeManaged(fallbackVersion: string): Promise<void>;
  /**
   * Whether the servers of `version` can take traffic (an ALB target group's registered targets
   * all healthy). Routers that cannot tell leave it out; the engine then moves weight unchecked.
   */
  targetsReady?(version: string): Promise<TargetReadiness>;
  /**
   * The first half of a two-phase write, for writers that must switch several routers at one
   * instant (a fleet's org move): store `spec` as a generation of at least `generation` without
   * making it live. Routers that can hold an activation time implement it together with
   * `activate`; a staged generation never activated stays inert and the next stage replaces it.
   */
  stage?(spec: RouteSpec, generation?: number): Promise<StagedRoutes>;
  /**
   * Make a staged generation live at wall-clock `atMs` (epoch ms, by the router's own clock, so
   * routers activated together switch within their clocks' skew), then read it back once live.
   */
  activate?(staged: StagedRoutes, atMs: number): Promise<ApplyResult>;
  /** Give the router's admin endpoint a new secret, where it has one (nginx). */
  rotateSecret?(): Promise<void>;
  /** The router's own machinery, where Cutover runs it (nginx): lines for `deploy router status`. */
  machinery?(): Promise<{ running: boolean; facts: Record<string, string | number> }>;
  /** Stop the machinery Cutover runs (nginx: a graceful quit); traffic through it stops too. */
  stopMachinery?(): Promise<void>;
}

/** Answer of `Router.targetsReady`. */
export interface TargetReadiness {
  ready: boolean;
  /** What was seen, e.g. `1/2 targets of v2 healthy; 10.0.1.7:80 initial`. */
  detail: string;
  /** Set when waiting longer cannot help (a Deployment past its progress deadline): why. */
  stuck?: string;
}

/** Two weight maps are equal when every version has the same share (missing counts as 0). */
export function sameWeights(a: Weights, b: Weights): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (Math.abs((a[k] ?? 0) - (b[k] ?? 0)) > 1e-9) return false;
  return true;
}

/** Two org maps are equal when every org maps to the same version. */
export function sameOrgs(a: OrgRoutes = {}, b: OrgRoutes = {}): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => a[k] === b[k]);
}

/** Two unpinned policies are equal (absent is weighted). */
export function sameUnpinned(a: UnpinnedRoute = { mode: 'weighted' }, b: UnpinnedRoute = { mode: 'weighted' }): boolean {
  return a.mode === b.mode && (a.mode === 'weighted' || a.version === (b as { version: string }).version);
}

/** A route spec equals another when weights, org pins and the unpinned policy are equal. */
export function sameRoutes(a: RouteSpec, b: RouteSpec): boolean {
  return sameWeights(a.weights, b.weights) && sameOrgs(a.orgs, b.orgs) && sameUnpinned(a.unpinned, b.unpinned);
}
