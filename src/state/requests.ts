/** Operator requests as stored by every backend: one JSON object each, read defensively. */
import type { OperatorRequest } from './store.js';

const REQUEST_KINDS = new Set<OperatorRequest['kind']>(['pause', 'resume', 'abort', 'promote']);

/** A stored request, or undefined when it is not one (the caller sets it aside, never acts on it). */
export function parseRequest(raw: string): OperatorRequest | undefined {
  try {
    const value = JSON.parse(raw) as Partial<OperatorRequest> | null;
    if (typeof value !== 'object' || value === null) return undefined;
    if (typeof value.id !== 'string' || !REQUEST_KINDS.has(value.kind as OperatorRequest['kind'])) return undefined;
    return value as OperatorRequest;
  } catch {
    return undefined;
  }
}
