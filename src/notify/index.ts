/**
 * Notifications: `notify:` in deploy.yaml turned into a Notifier. The factory picks the channel by
 * the config's type and reads each notifier's secrets from the environment once, here; a variable
 * that is not set makes that notifier unavailable (each notification it misses is recorded as
 * failed), never the rollout fail.
 */
import type { AuditLog } from '../state/store.js';
import type { Channel } from './channel.js';
import { Notifier, type Destination, type NotifierDeps } from './notifier.js';
import { TRIGGERS, urlProblem, type NotifierConfig, type NotifyConfig } from './schema.js';
import { SlackChannel } from './slack.js';
import { TeamsChannel } from './teams.js';
import { WebhookChannel } from './webhook.js';

export { Notifier, DEFAULT_GRACE_MS, type NotifySummary, type RecordDelivery } from './notifier.js';
export { notifySchema, TRIGGERS, type NotifyConfig, type NotifierConfig, type Trigger } from './schema.js';
export { verifySignature, SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER } from './webhook.js';

/** Per attempt, when the config gives no timeout. */
const DEFAULT_TIMEOUT_MS = 5_000;
/** Attempts after the first, when the config gives no retries. */
const DEFAULT_RETRIES = 3;

/** What building a notifier needs besides the config. */
export interface CreateNotifierDeps extends NotifierDeps {
  env: NodeJS.ProcessEnv;
  /** The first backoff and the longest wait between attempts (defaults 500ms and 10s; tests shorten them). */
  backoffMs?: number;
  maxBackoffMs?: number;
}

/** A notifier for `notify:`; with no section, one that does nothing. */
export function createNotifier(config: NotifyConfig | undefined, deps: CreateNotifierDeps): Notifier {
  return new Notifier((config ?? []).map((c, i) => destinationOf(c, i, deps)), deps);
}

/**
 * A notifier whose records go to the audit log, as `actor`: what the driver and one-shot
 * commands use.
 */
export function auditedNotifier(config: NotifyConfig | undefined, deps: Omit<CreateNotifierDeps, 'record'> & { audit: AuditLog; actor: string }): Notifier {
  const { audit, actor, ...rest } = deps;
  return createNotifier(config, { ...rest, record: (action, detail, rolloutId) => audit.append({ actor, action, detail, ...(rolloutId ? { rolloutId } : {}) }) });
}

/** Resolve one notifier's config against the environment. */
function destinationOf(c: NotifierConfig, index: number, deps: CreateNotifierDeps): Destination {
  const common = {
    label: c.name ?? `${c.type}#${index + 1}`,
    type: c.type,
    events: new Set(c.events ?? TRIGGERS),
    policy: { retries: c.retries ?? DEFAULT_RETRIES, timeoutMs: c.timeout ?? DEFAULT_TIMEOUT_MS, backoffMs: deps.backoffMs ?? 500, maxBackoffMs: deps.maxBackoffMs ?? 10_000 },
  };
  const read = (name: string): string | undefined => {
    const value = deps.env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const unavailable = (why: string, secrets: string[] = []): Destination => ({ ...common, unavailable: why, secrets });

  const urlText = c.type === 'webhook' && c.url !== undefined ? c.url : read(c.urlEnv!);
  if (urlText === undefined) return unavailable(`${c.urlEnv} is not set`);
  const problem = urlProblem(urlText);
  // Said without the value: from the environment it is a secret, however malformed.
  if (problem) return unavailable(`${c.type === 'webhook' && c.url !== undefined ? 'url' : c.urlEnv} ${problem}`, [urlText]);
  const url = new URL(urlText);
  // The whole URL, and its path and query alone: a receiver that echoes its request line echoes those.
  const secrets = [urlText, url.href, `${url.pathname}${url.search}`, ...(url.pathname.length > 1 ? [url.pathname] : []), ...(url.search ? [url.search.slice(1)] : [])];

  let channel: Channel;
  switch (c.type) {
    case 'webhook': {
      const secret = c.secretEnv !== undefined ? read(c.secretEnv) : undefined;
      // A receiver that checks signatures would refuse an unsigned body; better said than sent.
      if (c.secretEnv !== undefined && secret === undefined) return unavailable(`${c.secretEnv} is not set (the signing secret); not sent unsigned`, secrets);
      if (secret !== undefined) secrets.push(secret);
      channel = new WebhookChannel(secret);
      break;
    }
    case 'slack':
      channel = new SlackChannel();
      break;
    case 'teams':
      channel = new TeamsChannel();
      break;
  }
  return { ...common, target: { url, channel }, secrets };
}
