/**
 * Microsoft Teams: a message carrying one Adaptive Card, the payload both a Teams Workflows
 * "when a webhook request is received" flow and the older incoming webhooks accept. Card
 * version 1.4, which Teams renders everywhere; the title's colour follows the severity.
 */
import type { Channel, ChannelRequest } from './channel.js';
import type { Notification, Severity } from './triggers.js';

const COLOUR: Record<Severity, string> = { info: 'Accent', good: 'Good', warning: 'Warning', danger: 'Attention' };

/** A Teams workflow or incoming webhook. */
export class TeamsChannel implements Channel {
  readonly type = 'teams';

  /** The message with its Adaptive Card. */
  request(n: Notification): ChannelRequest {
    const card = {
      $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
      type: 'AdaptiveCard',
      version: '1.4',
      msteams: { width: 'Full' },
      body: [
        { type: 'TextBlock', text: n.title, weight: 'Bolder', size: 'Medium', color: COLOUR[n.severity], wrap: true, style: 'heading' },
        { type: 'TextBlock', text: n.text, wrap: true },
        ...(n.facts.length ? [{ type: 'FactSet', facts: n.facts.map(([title, value]) => ({ title, value })) }] : []),
        { type: 'TextBlock', text: `${n.trigger} · rollout ${n.rolloutId} · ${n.at}`, isSubtle: true, size: 'Small', wrap: true },
      ],
    };
    const message = { type: 'message', attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null, content: card }] };
    return { body: JSON.stringify(message), headers: {} };
  }
}
