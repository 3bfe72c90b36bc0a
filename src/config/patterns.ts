/**
 * The patterns deploy.yaml's values are checked against, for the schema (fields.ts) and for the
 * code that meets the same values at run time (an nginx upstream name, an org id in a request),
 * in a module that loads nothing: run-time code never pays for the schema to share them.
 */

/** Version and service names: safe in file names, nginx upstream names and label values. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Org ids: letters, digits and `._-`, so an id can never inject config, PromQL or rule values. */
export const ORG_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** An AWS region name. */
export const AWS_REGION_PATTERN = /^[a-z]{2}(-[a-z]+)+-\d$/;

/** A bad value as a message shows it: quoted, and cut short when it is long. */
export const shown = (value: unknown): string => {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}…` : text);
};
