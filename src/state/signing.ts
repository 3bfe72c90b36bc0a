/**
 * Signed audit records. The hash chain (chain.ts) shows that a record was changed only to someone
 * who cannot recompute the chain: whoever can write the log can rewrite it from the changed
 * record on and every hash still verifies. With a signing key — Ed25519, from an environment
 * variable or a file the config names, never stored with the state — each record also carries a
 * signature over its hash. Checked with the public key alone (`deploy history --verify
 * --public-key FILE`), a rewritten log then fails at the first changed record for anyone, on any
 * machine, unless the writer also held the private key.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';
import type { AuditEntry } from './chain.js';
import type { AuditLog, AuditRecord, StateStore } from './store.js';

/** Where the private key comes from. */
export interface SigningKeySource {
  /** An environment variable holding the PEM (PKCS#8) private key. */
  env?: string | undefined;
  /** A file holding it. */
  file?: string | undefined;
}

/** A short id of a public key: the first 16 hex digits of the sha256 of its DER. */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'public' ? key : createPublicKey(key);
  return createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/** The private key the source names; UsageError naming the source when it is missing or not Ed25519. */
export function loadSigningKey(source: SigningKeySource, env: NodeJS.ProcessEnv = process.env): KeyObject {
  const where = source.env ? `environment variable ${source.env}` : `file ${source.file}`;
  let pem: string | undefined;
  if (source.env) pem = env[source.env];
  else if (source.file) {
    try {
      pem = readFileSync(source.file, 'utf8');
    } catch (error) {
      throw new UsageError(`audit signing key: cannot read ${where} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, 'point audit.signingKey.file at the PEM file of an Ed25519 private key');
    }
  }
  if (!pem) throw new UsageError(`audit signing key: ${where} is not set`, 'set it to an Ed25519 private key in PEM (openssl genpkey -algorithm ed25519)');
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new UsageError(`audit signing key: ${where} does not hold a PEM private key`, 'openssl genpkey -algorithm ed25519 makes one');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new UsageError(`audit signing key: ${where} holds a ${key.asymmetricKeyType} key, not Ed25519`);
  return key;
}

/** The signer an audit entry carries: Ed25519 over the record's hash. */
export function signerOf(key: KeyObject): (hash: string) => { key: string; value: string } {
  const id = keyId(key);
  return (hash) => ({ key: id, value: sign(null, Buffer.from(hash, 'hex'), key).toString('base64') });
}

/** The store with every audit record it appends signed by `key`. */
export function signingStore<S>(store: StateStore<S>, key: KeyObject): StateStore<S> {
  const signer = signerOf(key);
  const inner = store.audit;
  const audit: AuditLog = {
    append: (entry: AuditEntry) => inner.append({ ...entry, sign: signer }),
    read: () => inner.read(),
    verify: () => inner.verify(),
    ...(inner.archive ? { archive: inner.archive.bind(inner) } : {}),
  };
  return new Proxy(store, { get: (target, prop) => (prop === 'audit' ? audit : Reflect.get(target, prop, target) as unknown) }) as StateStore<S>;
}

/** The public key in a PEM file (a private key's public half is taken too). */
export function loadPublicKey(file: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    throw new UsageError(`--public-key ${file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const key = createPublicKey(pem);
    if (key.asymmetricKeyType !== 'ed25519') throw new Error('not ed25519');
    return key;
  } catch {
    throw new UsageError(`--public-key ${file}: not an Ed25519 public key in PEM`, 'openssl pkey -in private.pem -pubout makes one');
  }
}

/** The first record whose signature is missing, made by another key, or does not verify. */
export function verifySignatures(records: readonly AuditRecord[], key: KeyObject): { ok: true; records: number } | { ok: false; seq: number; reason: string } {
  const id = keyId(key);
  for (const r of records) {
    if (!r.sig) return { ok: false, seq: r.seq, reason: `record ${r.seq} is not signed` };
    if (r.sig.key !== id) return { ok: false, seq: r.seq, reason: `record ${r.seq} is signed by key ${r.sig.key}, not by ${id}` };
    if (!verify(null, Buffer.from(r.hash, 'hex'), key, Buffer.from(r.sig.value, 'base64'))) {
      return { ok: false, seq: r.seq, reason: `record ${r.seq}: its signature does not verify: it was changed after it was signed, or signed by someone else` };
    }
  }
  return { ok: true, records: records.length };
}
