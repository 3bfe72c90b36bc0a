/**
 * A fleet's targets as deploy.yaml gives them: each target (a region, a cluster) names its own
 * router, workload, connections, servers and metrics labels over the shared top level. What a
 * target's providers see is the top-level config with its target's sections put in place, so a
 * provider built for one router works unchanged as one target of many. Pure: no I/O, no registry.
 */

/** The sections a target may set (as validated; provider sections known by type only). */
export interface TargetSection {
  router: { type: string };
  workload?: { type: string } | undefined;
  kubernetes?: Record<string, unknown> | undefined;
  aws?: Record<string, unknown> | undefined;
  /** This target's servers of each version, over the top-level `versions`. */
  versions?: Record<string, Record<string, unknown>> | undefined;
  /** This target's metrics: another Prometheus, or label matchers (like `{ region: eu }`) on the shared one. */
  prometheus?: { url?: string | undefined; labels?: Record<string, string> | undefined } | undefined;
}

/** What the merge needs of a whole config. */
export interface FleetConfigLike {
  router: { type: string };
  workload?: { type: string } | undefined;
  versions: Record<string, Record<string, unknown>>;
  kubernetes?: Record<string, unknown> | undefined;
  aws?: Record<string, unknown> | undefined;
  prometheus?: { url: string; labels?: Record<string, string> | undefined } | undefined;
  targets?: Record<string, TargetSection> | undefined;
}

/** Target names: short, lower-case, usable as a label value and in a gate's name. */
export const TARGET_PATTERN = /^[a-z0-9][a-z0-9-]{0,30}$/;

/** The targets of a config, in the order deploy.yaml lists them. */
export function targetNames(config: Pick<FleetConfigLike, 'targets'>): string[] {
  return Object.keys(config.targets ?? {});
}

/**
 * The config one target's providers see: its router and workload in place of the fleet's, its
 * connections over the top-level ones (a kube context, an AWS region), its servers over each
 * version's, its Prometheus URL and labels over the top-level ones; no `targets`.
 */
export function targetConfig<C extends FleetConfigLike>(config: C, name: string): C {
  const target = config.targets?.[name];
  if (!target) throw new Error(`no target ${name}`);
  const versions = Object.fromEntries(Object.entries(config.versions).map(([v, spec]) => [v, { ...spec, ...target.versions?.[v] }]));
  const { targets: _all, ...rest } = config;
  const merged: FleetConfigLike = {
    ...rest,
    router: target.router,
    workload: target.workload,
    versions,
    ...(config.kubernetes || target.kubernetes ? { kubernetes: { ...config.kubernetes, ...target.kubernetes } } : {}),
    ...(config.aws || target.aws ? { aws: { ...config.aws, ...target.aws } } : {}),
    ...(config.prometheus ? { prometheus: mergedPrometheus(config.prometheus, target.prometheus) } : {}),
  };
  if (!merged.workload) delete merged.workload;
  return merged as C;
}

function mergedPrometheus(base: NonNullable<FleetConfigLike['prometheus']>, target: TargetSection['prometheus']): NonNullable<FleetConfigLike['prometheus']> {
  const labels = { ...base.labels, ...target?.labels };
  return { ...base, ...(target?.url ? { url: target.url } : {}), ...(Object.keys(labels).length ? { labels } : {}) };
}

/**
 * A problem path inside one target's view of the config, as a path of deploy.yaml: the sections
 * a target sets live under `targets.NAME`, the rest where they are.
 */
export function targetPath(name: string, path: (string | number)[], target: TargetSection): (string | number)[] {
  const [head, second] = path;
  const inTarget =
    head === 'router' ||
    head === 'workload' ||
    (head === 'versions' && typeof second === 'string' && target.versions?.[second] !== undefined) ||
    (head === 'kubernetes' && target.kubernetes !== undefined) ||
    (head === 'aws' && target.aws !== undefined);
  return inTarget ? ['targets', name, ...path] : path;
}
