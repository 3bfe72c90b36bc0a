/**
 * What most commands open first: the config, the state store and, when they move traffic, the
 * router. Kept here so every command (and the console) opens them the same way.
 */
import { isAbsolute, resolve } from 'node:path';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { validateState, type RolloutState } from '../engine/state.js';
import { UsageError } from '../errors.js';
import { LocalStateStore } from '../state/local.js';
import { DEFAULT_LEASE_MS, type StateStore } from '../state/store.js';
import type { Output, Streams } from '../ui/output.js';

/** Options every command takes. */
export interface GlobalOptions {
  file: string;
  output: 'text' | 'json';
  color: boolean;
  /** AWS overrides for the alb router (the default provider chain still supplies credentials). */
  region?: string;
  profile?: string;
  endpointUrl?: string;
  /** Kubernetes overrides (the router, workload and state backend of type kubernetes). */
  kubeconfig?: string;
  context?: string;
}

/** The streams, clock and output of one command run (injected so tests drive commands in-process). */
export interface Io extends Streams {
  out: Output;
  clock: () => number;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** An opened project: config and state. */
export interface Project extends LoadedConfig {
  store: StateStore<RolloutState>;
  leaseMs: number;
}


/**
 * Load the config and open its state store (nothing is written). The Kubernetes backend is
 * imported only when the config names it, so local commands never pay for it.
 */
export async function openProject(opts: Pick<GlobalOptions, 'file' | 'region' | 'profile' | 'endpointUrl' | 'kubeconfig' | 'context'>, clock: () => number = Date.now): Promise<Project> {
  const loaded = loadConfig(opts.file);
  const router = loaded.config.router;
  if (router.type === 'alb') {
    if (opts.region && !/^[a-z]{2}(-[a-z]+)+-\d$/.test(opts.region)) throw new UsageError(`--region ${opts.region}: not an AWS region`, 'like --region eu-west-1');
    if (opts.endpointUrl && !/^https?:\/\/\S+$/.test(opts.endpointUrl)) throw new UsageError(`--endpoint-url ${opts.endpointUrl}: not an http(s) URL`);
    if (opts.region) router.region = opts.region;
    if (opts.profile) router.profile = opts.profile;
    if (opts.endpointUrl) router.endpointUrl = opts.endpointUrl;
  } else if (opts.region || opts.profile || opts.endpointUrl) {
    throw new UsageError(`--region, --profile and --endpoint-url apply to router type alb; ${loaded.path} uses ${router.type}`);
  }
  const config = loaded.config;
  const usesKube = config.router.type === 'gateway-api' || config.router.type === 'ingress-nginx' || config.workload?.type === 'kubernetes' || config.state?.type === 'kubernetes';
  if (usesKube) {
    config.kubernetes = { ...config.kubernetes, ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}), ...(opts.context ? { context: opts.context } : {}) };
  } else if (opts.kubeconfig || opts.context) {
    throw new UsageError(`--kubeconfig and --context apply to Kubernetes routers, workloads and state; ${loaded.path} uses none`);
  }
  const state = config.state;
  if (state?.type === 'kubernetes') {
    const kube = config.kubernetes ?? {};
    const [{ KubeStateStore }, { connectKube }] = await Promise.all([import('../state/kube.js'), import('../kube/connect.js')]);
    const store = new KubeStateStore<RolloutState>(() => connectKube(kube), {
      name: state.name ?? `cutover-${config.service}`,
      clock,
      validate: validateState,
      ...(state.auditMaxBytes ? { auditMaxBytes: state.auditMaxBytes } : {}),
    });
    return { ...loaded, store, leaseMs: state.lease ?? DEFAULT_LEASE_MS };
  }
  const dir = state?.dir ?? '.deploy';
  const store = new LocalStateStore<RolloutState>(isAbsolute(dir) ? dir : resolve(loaded.dir, dir), { clock, validate: validateState });
  return { ...loaded, store, leaseMs: state?.lease ?? DEFAULT_LEASE_MS };
}
