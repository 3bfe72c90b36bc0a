/**
 * What most commands open first: the config, the state store and, when they move traffic, the
 * router. Kept here so every command (and the console) opens them the same way.
 */
import { resolve } from 'node:path';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import type { RolloutState } from '../engine/state.js';
import { AWS_REGION_PATTERN } from '../config/patterns.js';
import { UsageError } from '../errors.js';
import { leaseOf, openStateStore, platformsOf, providersOn } from '../providers/chosen.js';
import { loadSigningKey, signingStore } from '../state/signing.js';
import type { StateStore } from '../state/store.js';
import type { Output, Streams } from '../ui/output.js';

/** Options every command takes. */
export interface GlobalOptions {
  file: string;
  output: 'text' | 'json';
  color: boolean;
  /** AWS overrides (the default provider chain still supplies credentials). */
  region?: string;
  profile?: string;
  endpointUrl?: string;
  /** Kubernetes overrides (the router, workload and state backend of type kubernetes). */
  kubeconfig?: string;
  context?: string;
  /** A fleet: the targets the command acts on (`--target`). */
  target?: string[];
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
  /** A fleet: the targets the command acts on (`--target`), when not all. */
  only?: string[];
}


/**
 * Load the config, apply the connection flags, and open its state store (nothing is written).
 * A backend's module is imported only when the config names it, so local commands never pay for
 * Kubernetes or AWS.
 */
export async function openProject(opts: Pick<GlobalOptions, 'file' | 'region' | 'profile' | 'endpointUrl' | 'kubeconfig' | 'context' | 'target'>, clock: () => number = Date.now): Promise<Project> {
  const loaded = await loadConfig(opts.file);
  const config = loaded.config;
  const platforms = platformsOf(config);
  if (platforms.has('aws')) {
    if (opts.region && !AWS_REGION_PATTERN.test(opts.region)) throw new UsageError(`--region ${opts.region}: not an AWS region`, 'like --region eu-west-1');
    if (opts.endpointUrl && !/^https?:\/\/\S+$/.test(opts.endpointUrl)) throw new UsageError(`--endpoint-url ${opts.endpointUrl}: not an http(s) URL`);
    config.aws = { ...config.aws, ...(opts.region ? { region: opts.region } : {}), ...(opts.profile ? { profile: opts.profile } : {}), ...(opts.endpointUrl ? { endpointUrl: opts.endpointUrl } : {}) };
  } else if (opts.region || opts.profile || opts.endpointUrl) {
    throw new UsageError(`--region, --profile and --endpoint-url apply to ${providersOn('aws').join(', ')}; ${loaded.path} uses none`);
  }
  if (platforms.has('kubernetes')) {
    config.kubernetes = { ...config.kubernetes, ...(opts.kubeconfig ? { kubeconfig: opts.kubeconfig } : {}), ...(opts.context ? { context: opts.context } : {}) };
  } else if (opts.kubeconfig || opts.context) {
    throw new UsageError(`--kubeconfig and --context apply to Kubernetes routers, workloads and state; ${loaded.path} uses none`);
  }
  const names = Object.keys(config.targets ?? {});
  if (opts.target?.length) {
    if (names.length === 0) throw new UsageError(`--target applies to a fleet; ${loaded.path} has no targets:`);
    const unknown = opts.target.find((t) => !names.includes(t));
    if (unknown !== undefined) throw new UsageError(`--target ${unknown}: no such target in ${loaded.path} (targets: ${names.join(', ')})`);
  }
  const opened = await openStateStore(loaded, clock);
  const signingKey = config.audit?.signingKey;
  // The key signs what this command appends; it is read from its source each time, never stored.
  const store = signingKey ? signingStore(opened, loadSigningKey('env' in signingKey ? { env: signingKey.env } : { file: resolve(loaded.dir, signingKey.file) })) : opened;
  return { ...loaded, store, leaseMs: leaseOf(config), ...(opts.target?.length ? { only: [...new Set(opts.target)] } : {}) };
}
