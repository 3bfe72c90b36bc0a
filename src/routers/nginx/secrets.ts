/**
 * The nginx router's secrets, kept as files of mode 0600 in the prefix Cutover owns, never
 * printed, logged or stored anywhere else:
 *
 *   admin.secret     the admin endpoint's secret: every admin request carries it in
 *                    `X-Cutover-Admin`, and the Lua handler refuses any request without it (403).
 *                    nginx's master reads it when it loads its config; a new one is written at
 *                    every structural reload and by `deploy router rotate-secret`.
 *   org-cookie.key   with `orgFrom: signedCookie`, the HMAC key org cookies are verified with,
 *                    copied from the environment variable the config names.
 *
 * The admin server stays bound to loopback; the secret is what keeps another local process
 * (another user's, or an application behind this nginx with a request-forgery bug) from
 * rewriting the routing.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import path from 'node:path';
import { OperationError } from '../../errors.js';
import { writeFileAtomic } from '../../state/atomic.js';

/** The header an admin request carries its secret in. */
export const ADMIN_SECRET_HEADER = 'X-Cutover-Admin';
/** File names in the prefix. */
export const ADMIN_SECRET_FILE = 'admin.secret';
export const ORG_KEY_FILE = 'org-cookie.key';

/** Write a new random admin secret (0600) for the next config load. */
export async function rotateAdminSecret(prefix: string): Promise<void> {
  await writeSecret(path.join(prefix, ADMIN_SECRET_FILE), randomBytes(32).toString('hex'));
}

/** The current admin secret; OperationError when there is none (nginx was not set up by Cutover). */
export function adminSecret(prefix: string): string {
  try {
    return readFileSync(path.join(prefix, ADMIN_SECRET_FILE), 'utf8').trim();
  } catch {
    throw new OperationError(`no admin secret in ${prefix}: this nginx was not set up by Cutover, or its prefix was changed`, '`deploy router rotate-secret` writes one and reloads nginx');
  }
}

/** The current admin secret, or undefined when there is none. */
export function adminSecretIfAny(prefix: string): string | undefined {
  try {
    return adminSecret(prefix);
  } catch {
    return undefined;
  }
}

/** Put back a secret a failed reload never loaded. */
export async function restoreAdminSecret(prefix: string, secret: string): Promise<void> {
  await writeSecret(path.join(prefix, ADMIN_SECRET_FILE), secret);
}

/** Headers for an admin request: the secret when there is one, nothing otherwise (the answer is then 403). */
export function adminHeaders(prefix: string): Record<string, string> {
  try {
    return { [ADMIN_SECRET_HEADER]: adminSecret(prefix) };
  } catch {
    return {};
  }
}

/** Write the org-cookie key (0600) from its value. */
export async function writeOrgKey(prefix: string, key: string): Promise<void> {
  await writeSecret(path.join(prefix, ORG_KEY_FILE), key);
}

async function writeSecret(file: string, value: string): Promise<void> {
  // Created 0600 by the atomic write's temp file mode, then checked: never readable by others.
  await writeFileAtomic(file, `${value}\n`, 0o600);
  await chmod(file, 0o600);
}

/**
 * An org cookie value `org.expires.signature` (expires in Unix seconds; the signature the
 * URL-safe base64 of HMAC-SHA1 over `org.expires`), as the application or the trusted proxy that
 * knows who the user is sets it, and as nginx verifies it.
 */
export function signOrgCookie(org: string, key: string, expiresAtSeconds: number): string {
  const payload = `${org}.${Math.floor(expiresAtSeconds)}`;
  const signature = createHmac('sha1', key).update(payload).digest('base64url');
  return `${payload}.${signature}`;
}
