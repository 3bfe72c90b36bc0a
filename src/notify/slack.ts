/**
 * Slack incoming webhooks: a Block Kit message — a header, the text, the facts as fields and the
 * rollout's id as context — with `text` as the fallback Slack shows in notifications. Block Kit's
 * limits are kept (a header of 150 characters, ten fields of 2,000), so a long gate reason is cut
 * rather than the whole message refused.
 */
import type { Channel, ChannelRequest } from './channel.js';
import type { Notification, Severity } from './triggers.js';

const ICON: Record<Severity, string> = { info: ':large_blue_circle:', good: ':white_check_mark:', warning: ':double_vertical_bar:', danger: ':rotating_light:' };

/** Slack's mrkdwn reserves &, < and > (links and mentions); everything else is shown as written. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const cut = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** A Slack incoming webhook. */
export class SlackChannel implements Channel {
  readonly type = 'slack';

  /** The Block Kit message (the same in every attempt: Slack has no signature to renew). */
  request(n: Notification): ChannelRequest {
    const fields = n.facts.slice(0, 10).map(([name, value]) => ({ type: 'mrkdwn', text: cut(`*${escapeMrkdwn(name)}*\n${escapeMrkdwn(value)}`, 2000) }));
    const message = {
      text: cut(escapeMrkdwn(`${n.title}: ${n.text}`), 3000),
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: cut(`${ICON[n.severity]} ${n.title}`, 150), emoji: true } },
        { type: 'section', text: { type: 'mrkdwn', text: cut(escapeMrkdwn(n.text), 3000) } },
        ...(fields.length ? [{ type: 'section', fields }] : []),
        { type: 'context', elements: [{ type: 'mrkdwn', text: escapeMrkdwn(`${n.trigger} · rollout ${n.rolloutId} · ${n.at}`) }] },
      ],
    };
    return { body: JSON.stringify(message), headers: {} };
  }
}
