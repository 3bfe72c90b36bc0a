/**
 * The field types deploy.yaml is written in — names, durations, percentages, addresses — shared
 * by the core schema and every provider's section, so each is parsed and explained one way.
 */
import { z } from 'zod';
import { NAME_PATTERN, ORG_PATTERN, shown } from './patterns.js';
import { parseDuration, parsePercent } from './units.js';

export { NAME_PATTERN, ORG_PATTERN, shown } from './patterns.js';

export const name = (what: string) =>
  z.string().regex(NAME_PATTERN, `must be a ${what} name: lower-case letters, digits, '.', '_' or '-', starting with a letter or digit`);

/** The longest duration deploy.yaml accepts: a year (past it, dates overflow and nothing is meant). */
export const MAX_DURATION_MS = 366 * 86_400_000;

export const durationBetween = (minMs: number, minText: string) =>
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

export const duration = durationBetween(0, '0s');
/** How often gates are checked: a check needs at least this long. */
export const interval = durationBetween(10, '10ms');
/** A driver's lease: it is renewed at a third of it, so it must leave room for that. */
export const lease = durationBetween(1_000, '1s');

/** A percentage: `0.1%` or a bare number of percent; parsed into a fraction (0.1% → 0.001). */
export const percent = z
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

export const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'must be host:port, like 127.0.0.1:9001')
  .refine((v) => {
    const port = Number(v.slice(v.lastIndexOf(':') + 1));
    return port >= 1 && port <= 65535;
  }, 'the port must be from 1 to 65535');

/** Kubernetes object names (DNS-1123 labels/subdomains). */
export const kubeName = (what: string) =>
  z.string().regex(/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/, `must be a Kubernetes ${what} name: lower-case letters, digits, '-' or '.'`);

/** Org ids (ORG_PATTERN). */
export const orgId = z.string().regex(ORG_PATTERN, "must be an org id: letters, digits, '.', '_' or '-', starting with a letter or digit");

