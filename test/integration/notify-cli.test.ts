/**
 * Notifications through the CLI: `deploy promote` and `deploy abort` with `notify:` in
 * deploy.yaml, a real receiver on loopback, the records read back with `deploy history`.
 * Skipped until `notify:` is part of the config schema (src/config/schema.ts), then it runs.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifySignature } from '../../src/notify/index.js';
import { runCli } from '../helpers/cli.js';


interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let dir: string;
let file: string;
let received: Received[];
let base: string;
let stop: () => Promise<void>;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cutover-notify-cli-'));
  file = join(dir, 'deploy.yaml');
  received = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (req.url?.startsWith('/hang')) return; // never answers
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`the test receiver could not start: ${e.message}`)));
    server.listen(0, '127.0.0.1', resolve);
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stop = () => new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
});
afterEach(async () => {
  await stop();
  rmSync(dir, { recursive: true, force: true });
});

const SECRET = 'whsec-cli-5b7d0e1f2a3c';
const SLACK_TOKEN = 'xoxbCLITOKEN9a8b7c';

const config = (steps: string, slackPath = '/slack') => `service: patient-api
stable: v1
versions:
  v1: {}
  v2: {}
router:
  type: none
strategy:
  canary:
    checkInterval: 10ms
    steps:
${steps}
notify:
  - type: webhook
    url: ${base}/hook
    secretEnv: HOOK_SECRET
  - type: slack
    urlEnv: SLACK_URL
    events: [paused, rolled_back, aborted, promoted, failed]
`.replace('/slack', slackPath);

const triggers = (path: string) => received.filter((r) => r.path.startsWith(path)).map((r) => JSON.parse(r.body).trigger ?? JSON.parse(r.body).blocks[0].text.text);

describe('notifications from the CLI', () => {
  it('promote to a pause, then abort without a driver: every notification delivered, signed, and in the audit log', async () => {
    writeFileSync(file, config('      - { weight: 50, hold: 0s, pause: true }\n      - { weight: 100 }'));
    const env = { HOOK_SECRET: SECRET, SLACK_URL: `${base}/slack/services/T0/B0/${SLACK_TOKEN}` };
    expect((await runCli(['promote', '--to', 'v2', '-y', '-f', file], env)).code).toBe(4);
    expect(triggers('/hook')).toEqual(['started', 'step', 'paused']);
    expect((await runCli(['abort', '--reason', 'pager went off', '-f', file], env)).code).toBe(0);
    expect(triggers('/hook')).toEqual(['started', 'step', 'paused', 'aborted']);
    expect(JSON.parse(received.at(-2)!.body)).toMatchObject({ trigger: 'aborted', text: 'Aborted: pager went off' });
    expect(received.filter((r) => r.path.startsWith('/slack/'))).toHaveLength(2);
    for (const r of received.filter((x) => x.path === '/hook')) expect(verifySignature(SECRET, r.body, r.headers['x-cutover-signature'] as string)).toBe(true);

    const history = await runCli(['history', '--verify', '-o', 'json', '-f', file]);
    const lines = history.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const notified = lines.filter((l) => String(l.action).startsWith('notify.'));
    expect(notified.map((l) => [l.action, l.detail.notifier, l.detail.trigger])).toEqual([
      ['notify.delivered', 'webhook#1', 'started'],
      ['notify.delivered', 'webhook#1', 'step'],
      ['notify.delivered', 'webhook#1', 'paused'],
      ['notify.delivered', 'slack#2', 'paused'],
      ['notify.delivered', 'webhook#1', 'aborted'],
      ['notify.delivered', 'slack#2', 'aborted'],
    ]);
    expect(lines.at(-1)).toMatchObject({ event: 'verify', ok: true });
    expect(history.stdout + JSON.stringify(received.map((r) => r.body))).not.toContain(SECRET);
    expect(history.stdout).not.toContain(SLACK_TOKEN);
  });

  it('a Slack that hangs delays the end of `deploy promote` by the grace, no more, and the rollout still succeeds', async () => {
    const steps = '      - { weight: 50, hold: 0s }\n      - { weight: 100 }';
    const env = (path: string) => ({ HOOK_SECRET: SECRET, SLACK_URL: `${base}${path}/services/T0/B0/${SLACK_TOKEN}` });
    // The same rollout with a Slack that answers, in a folder of its own: what the machine takes without the hang.
    const baseFile = join(mkdtempSync(join(dir, 'baseline-')), 'deploy.yaml');
    writeFileSync(baseFile, config(steps));
    let t0 = performance.now();
    expect((await runCli(['promote', '--to', 'v2', '-y', '-f', baseFile], env('/slack'))).code).toBe(0);
    const baselineMs = performance.now() - t0;
    received.length = 0;

    writeFileSync(file, config(steps, '/hang'));
    t0 = performance.now();
    const run = await runCli(['promote', '--to', 'v2', '-y', '-f', file], env('/hang'));
    const ms = performance.now() - t0;
    expect(run.code).toBe(0);
    expect(ms).toBeGreaterThanOrEqual(4_950); // the grace was given
    expect(ms - baselineMs).toBeLessThan(6_000); // and no more: 5 s, then the records are written
    expect(triggers('/hook')).toEqual(['started', 'step', 'step', 'promoted']);
    const history = await runCli(['history', '-o', 'json', '-f', file]);
    const abandoned = history.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.action === 'notify.abandoned');
    expect(abandoned.map((l) => [l.detail.notifier, l.detail.trigger, l.detail.reason])).toEqual([['slack#2', 'promoted', 'not delivered within the 5000ms grace when the driver ended']]);
    console.log(`deploy promote: ${(baselineMs / 1000).toFixed(2)} s with Slack answering, ${(ms / 1000).toFixed(2)} s with Slack hanging (exit ${run.code} both)`);
  });
});
