/**
 * The `notify:` section of deploy.yaml: where a rollout tells people what it did. Each notifier
 * is a webhook (signed JSON), a Slack incoming webhook or a Microsoft Teams workflow. Secrets —
 * Slack's and Teams' URLs, a webhook's signing secret — are named by environment variable and
 * read when the notifier starts, never written in the file.
 */
import { z } from 'zod';
import { durationBetween } from '../config/fields.js';

/** What a notifier can be told about, in the order a rollout meets them. */
export const TRIGGERS = ['started', 'step', 'paused', 'rolled_back', 'aborted', 'promoted', 'failed'] as const;
/** One of TRIGGERS. */
export type Trigger = (typeof TRIGGERS)[number];

const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name, like SLACK_WEBHOOK_URL');

/** Why a URL cannot be posted to, or undefined when it can; never repeats the URL (it may be a secret). */
export function urlProblem(text: string): string | undefined {
  if (!/^https?:\/\/\S+$/i.test(text) || !URL.canParse(text)) return 'is not an http(s) URL';
  const url = new URL(text);
  // fetch refuses credentials in a URL, and a password there would end up in logs.
  if (url.username || url.password) return 'carries a user or password; use secretEnv for a signing secret';
  return undefined;
}

const httpUrl = z.string().superRefine((text, ctx) => {
  const problem = urlProblem(text);
  if (problem) ctx.addIssue({ code: 'custom', message: `must be an http(s) URL without credentials (${problem})` });
});

/** Fields every notifier takes. */
const common = {
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'must be a name: lower-case letters, digits, _ or -').optional()
    .meta({ description: 'How the audit log names this notifier (default: its type and position, like slack#1)' }),
  events: z.array(z.enum(TRIGGERS)).min(1, 'must list at least one trigger').optional()
    .meta({ description: `Triggers to send (default: all): ${TRIGGERS.join(', ')}` }),
  timeout: durationBetween(100, '100ms').optional().meta({ description: 'Per attempt (default 5s)' }),
  retries: z.number().int().min(0, 'must be from 0 to 10').max(10, 'must be from 0 to 10').optional()
    .meta({ description: 'Attempts after the first, with exponential backoff (default 3)' }),
};

const webhook = z
  .strictObject({
    type: z.literal('webhook'),
    url: httpUrl.optional().meta({ description: 'Where the JSON is POSTed' }),
    urlEnv: envName.optional().meta({ description: 'An environment variable holding the URL, when it carries a token' }),
    secretEnv: envName.optional()
      .meta({ description: 'An environment variable holding the HMAC-SHA256 secret; the body is then signed in X-Cutover-Signature' }),
    ...common,
  })
  .superRefine((w, ctx) => {
    if ((w.url === undefined) === (w.urlEnv === undefined)) ctx.addIssue({ code: 'custom', message: 'needs url: or urlEnv:, one of the two' });
  });

const slack = z.strictObject({
  type: z.literal('slack'),
  urlEnv: envName.meta({ description: 'An environment variable holding the incoming webhook URL (a secret)' }),
  ...common,
});

const teams = z.strictObject({
  type: z.literal('teams'),
  urlEnv: envName.meta({ description: 'An environment variable holding the Teams workflow (or incoming webhook) URL (a secret)' }),
  ...common,
});

const notifier = z.discriminatedUnion('type', [webhook, slack, teams], {
  error: (issue) =>
    issue.code === 'invalid_union' ? `type must be one of: webhook, slack, teams (got ${JSON.stringify((issue.input as { type?: unknown } | undefined)?.type ?? null)})` : undefined,
});

/** `notify:` — a list of notifiers. */
export const notifySchema = z
  .array(notifier)
  .min(1, 'must list at least one notifier')
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    list.forEach((n, i) => {
      if (n.name === undefined) return;
      if (seen.has(n.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `${n.name} names two notifiers` });
      seen.add(n.name);
    });
  })
  .meta({ description: 'Notifications: webhook, slack or teams, each with the triggers it is sent' });

/** One notifier as parsed (durations in milliseconds). */
export type NotifierConfig = z.output<typeof notifier>;
/** The parsed `notify:` section. */
export type NotifyConfig = z.output<typeof notifySchema>;
