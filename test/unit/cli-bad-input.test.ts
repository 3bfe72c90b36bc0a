/**
 * Bad input: each case exits 2 (5 for the lock) with a message that says what to fix, and
 * changes nothing — no state written, no file touched.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { LocalStateStore } from '../../src/state/local/store.js';
import { runCli } from '../helpers/cli.js';
import { waitFor } from '../helpers/sandbox.js';

const CONFIG = `service: patient-api
stable: v1
versions:
  v1: { endpoints: ["127.0.0.1:9001"] }
  v2: { endpoints: ["127.0.0.1:9002"] }
router:
  type: none
strategy:
  canary:
    steps:
      - weight: 10
        hold: 1s
      - weight: 100
`;

const made: string[] = [];
/** A temp folder removed after the file's tests. */
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cutover-cli-'));
  made.push(dir);
  return dir;
}
afterAll(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('bad input', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = tempDir();
    file = join(dir, 'deploy.yaml');
  });
  const stateDir = () => join(dir, '.deploy');

  async function expectBad(args: string[], message: RegExp, code = 2): Promise<void> {
    const r = await runCli([...args, '-f', file]);
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  }

  it('a missing file names it and suggests deploy init', async () => {
    await expectBad(['plan'], /deploy\.yaml: no such file\n  hint: run `deploy init`/);
  });

  it('a file that is not YAML gives the position', async () => {
    writeFileSync(file, 'service: [patient-api\nstable: v1\n');
    await expectBad(['plan'], /is not valid YAML:\n  .*deploy\.yaml:\d+:\d+ /);
  });

  it('an unknown field is named with line and column', async () => {
    writeFileSync(file, CONFIG.replace('stable: v1', 'stable: v1\nstabel: v2'));
    await expectBad(['plan'], /deploy\.yaml:3:1 stabel: unknown field \(allowed here: service, stable, versions/);
  });

  it('a weight outside 0–100', async () => {
    writeFileSync(file, CONFIG.replace('weight: 10', 'weight: 101'));
    await expectBad(['plan'], /deploy\.yaml:11:17 strategy\.canary\.steps\[0\]\.weight: must be between 0 and 100/);
  });

  it('steps that do not increase', async () => {
    writeFileSync(file, CONFIG.replace('weight: 100', 'weight: 10'));
    await expectBad(['plan'], /deploy\.yaml:13:17 strategy\.canary\.steps\[1\]\.weight: must be greater than the previous step \(10\)/);
  });

  it('an unknown version changes nothing', async () => {
    writeFileSync(file, CONFIG);
    await expectBad(['promote', '--to', 'v9'], /--to v9: unknown version of patient-api \(known: v1, v2\)/);
    expect(existsSync(stateDir())).toBe(false);
  });

  it('promoting the stable version is refused', async () => {
    writeFileSync(file, CONFIG);
    await expectBad(['promote', '--to', 'v1'], /v1 is already the stable version/);
    expect(existsSync(stateDir())).toBe(false);
  });

  it('a missing nginx binary is named before anything is recorded', async () => {
    writeFileSync(file, CONFIG.replace('type: none', 'type: nginx\n  listen: 127.0.0.1:1\n  admin: 127.0.0.1:2\n  binary: /nonexistent/nginx'));
    await expectBad(['promote', '--to', 'v2'], /\/nonexistent\/nginx[\s\S]*apt-get install nginx libnginx-mod-http-lua/);
    expect(existsSync(join(stateDir(), 'state.json'))).toBe(false);
    expect(existsSync(join(stateDir(), 'audit.jsonl'))).toBe(false);
  });

  it('a corrupt state file is refused, explained and left as it was', async () => {
    writeFileSync(file, CONFIG);
    mkdirSync(stateDir());
    const corrupt = '{"schema":1,"rolloutId":"ab12';
    writeFileSync(join(stateDir(), 'state.json'), corrupt);
    await expectBad(['status'], /state\.json[\s\S]*hint: .*(mv|backup)/);
    await expectBad(['promote', '--to', 'v2'], /state\.json/);
    expect(readFileSync(join(stateDir(), 'state.json'), 'utf8')).toBe(corrupt);
  });

  it('a second driver gets exit 5 and the holder', async () => {
    writeFileSync(file, CONFIG);
    const store = new LocalStateStore(stateDir());
    await store.acquireLock({ owner: 'nurse@ward-7', pid: 4242, host: 'ward-7' }, 60_000);
    await expectBad(['promote', '--to', 'v2'], /locked by nurse@ward-7 \(pid 4242 on ward-7\) since /, 5);
    expect(existsSync(join(stateDir(), 'state.json'))).toBe(false);
  });

  it('bad usage of options exits 2', async () => {
    writeFileSync(file, CONFIG);
    expect((await runCli(['promote', '-f', file])).code).toBe(2);
    expect((await runCli(['status', '-o', 'yaml', '-f', file])).code).toBe(2);
    expect((await runCli(['no-such-command'])).code).toBe(2);
    const version = await runCli(['--version']);
    expect([version.code, version.stdout]).toEqual([0, `${JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')).version}\n`]);
  });

  it('AWS flags on a router that is not alb are refused', async () => {
    writeFileSync(file, CONFIG);
    await expectBad(['status', '--region', 'eu-west-1'], /--region, --profile and --endpoint-url apply to router type alb(, ([a-z]+ type [a-z0-9-]+|[a-z]+:))*; .* uses none/);
  });

  it.each<[string, [string, string], RegExp, string?]>([
    ['a hold past any date', ['hold: 1s', 'hold: 200000000d'], /deploy\.yaml:12:15 strategy\.canary\.steps\[0\]\.hold: must be at most 366d \(got "200000000d"\)/],
    ['a zero lease', ['type: none', 'type: none\nstate:\n  type: local\n  lease: 0s'], /deploy\.yaml:\d+:\d+ state\.lease: must be at least 1s \(got "0s"\)/],
    ['a lease of 1ms', ['type: none', 'type: none\nstate:\n  type: local\n  lease: 1ms'], /state\.lease: must be at least 1s/],
    ['a zero check interval', ['canary:', 'canary:\n    checkInterval: 0s'], /strategy\.canary\.checkInterval: must be at least 10ms/],
    ['a confidence of 0%', ['type: none', 'type: none\nprometheus: { url: http://127.0.0.1:9090 }\ngates:\n  - { name: e, type: errorRate, confidence: 0% }'], /gates\[0\]\.confidence: must be at least 50% and below 100%/],
    ['a port past 65535', ['127.0.0.1:9002', '127.0.0.1:99999'], /versions\.v2\.endpoints\[0\]: the port must be from 1 to 65535/],
    ['two versions sharing an nginx upstream', ['  v2: { endpoints: ["127.0.0.1:9002"] }', '  v1.0: { endpoints: ["127.0.0.1:9002"] }\n  v1_0: { endpoints: ["127.0.0.1:9003"] }'], /versions "v1\.0" and "v1_0" would share one nginx upstream/, 'nginx'],
    ['a huge bad value, cut short', ['hold: 1s', `hold: ${'x'.repeat(2_000_000)}`], /must be a duration with a unit, like 30s, 10m or 1h30m \(got "x{57}…"\)/],
  ])('%s is named with its position and exits 2, changing nothing', async (_what, [from, to], message, router) => {
    let text = CONFIG.replace(from, to);
    if (router === 'nginx') text = text.replace('type: none', 'type: nginx\n  listen: 127.0.0.1:8080\n  admin: 127.0.0.1:8081');
    writeFileSync(file, text);
    const r = await runCli(['plan', '-f', file]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.length).toBeLessThan(2_000);
    expect(existsSync(stateDir())).toBe(false);
  });

  it('an alias bomb, a state that is a folder or has an unknown phase, and bad options exit 2', async () => {
    writeFileSync(file, `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n`);
    await expectBad(['plan'], /is not valid YAML: .*alias/i);
    writeFileSync(file, CONFIG);
    mkdirSync(join(stateDir(), 'state.json'), { recursive: true });
    await expectBad(['status'], /state\.json is a directory, not a file/);
    await expectBad(['resume'], /state\.json is a directory, not a file/);
    rmSync(join(stateDir(), 'state.json'), { recursive: true });
    const state = { schema: 1, rolloutId: 'r1', service: 'patient-api', stable: 'v1', candidate: 'v2', phase: 'teleporting', step: 0, weights: { v1: 100 }, plan: { steps: [{ weight: 10 }] }, startedAt: 'x', startedBy: 'x', updatedAt: 'x' };
    writeFileSync(join(stateDir(), 'state.json'), JSON.stringify(state));
    await expectBad(['resume'], /phase "teleporting" is not one of pending, progressing/);
    rmSync(join(stateDir(), 'state.json'));
    await expectBad(['history', '-n', 'abc'], /-n.*must be a whole number of records/);
    await expectBad(['history', '-n', '-3'], /must be a whole number of records|unknown option/);
    writeFileSync(file, CONFIG.replace('type: none', 'type: none\nprometheus: { url: http://127.0.0.1:1 }\ngates:\n  - { name: e, type: errorRate }'));
    await expectBad(['gates', 'backtest', '--from', '87600h', '--interval', '1s', '--candidate', 'v2'], /is 315,360,000 checks; a backtest replays at most 11,000\n  hint: use a longer --interval \(at least \d+s\)/);
    const init = await runCli(['init', '-f', join(dir, 'missing', 'deploy.yaml')]);
    expect([init.code, init.stderr]).toEqual([2, expect.stringMatching(/the folder .*missing does not exist/)]);
  });

  it('an audit log that is a folder exits 2; one that no longer verifies takes no new rollout (exit 1)', async () => {
    writeFileSync(file, CONFIG.replace('hold: 1s', 'hold: 50ms'));
    mkdirSync(join(stateDir(), 'audit.jsonl'), { recursive: true });
    await expectBad(['history'], /audit log .*audit\.jsonl is a directory, not a file/);
    rmSync(join(stateDir(), 'audit.jsonl'), { recursive: true });
    expect((await runCli(['promote', '--to', 'v2', '-f', file])).code).toBe(0);
    const log = join(stateDir(), 'audit.jsonl');
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    // Someone edits a record in the middle: its hash no longer matches.
    lines[1] = lines[1]!.replace('"actor":"', '"actor":"mallory-');
    writeFileSync(log, `${lines.join('\n')}\n`);
    const before = readFileSync(log, 'utf8');
    const r = await runCli(['promote', '--to', 'v1', '-f', file]);
    expect([r.code, r.stderr]).toEqual([1, expect.stringMatching(/the audit log does not verify \(record 2: .*\); no new rollout is recorded onto it/)]);
    expect(readFileSync(log, 'utf8')).toBe(before);
  });

  it('plan works with Prometheus down and says so; promote refuses to start, saying why once', async () => {
    writeFileSync(file, CONFIG.replace('type: none', 'type: none\nprometheus: { url: http://127.0.0.1:1, timeout: 200ms }\ngates:\n  - { name: e, type: errorRate }'));
    const plan = await runCli(['plan', '-f', file]);
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toMatch(/^ {3}1\. {4}10%  hold 1s  gates e$/m);
    expect(plan.stdout).toMatch(/gate queries not checked: Prometheus at http:\/\/127\.0\.0\.1:1 unreachable after \d+ attempts: .*; `deploy promote` checks them before anything moves/);
    const promote = await runCli(['promote', '--to', 'v2', '-f', file]);
    expect(promote.code).toBe(1);
    expect(promote.stderr.match(/unreachable/g)).toHaveLength(1);
    expect(existsSync(join(stateDir(), 'state.json'))).toBe(false);
  });

  it('nothing to resume or abort is a usage error', async () => {
    writeFileSync(file, CONFIG);
    await expectBad(['resume'], /no rollout has been started; nothing to resume/);
    await expectBad(['abort'], /no rollout has been started/);
  });
});

describe('commands on the none router', () => {
  it('promote drives to the end, and status and history report it', async () => {
    const dir = tempDir();
    const file = join(dir, 'deploy.yaml');
    writeFileSync(file, CONFIG.replace('hold: 1s', 'hold: 50ms'));
    const r = await runCli(['promote', '--to', 'v2', '-o', 'json', '-f', file]);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event: string; step?: number });
    expect(events.map((e) => e.event)).toEqual(expect.arrayContaining(['started', 'step', 'done']));
    // Every step a person or a script sees counts from 1, as the text does.
    expect(events.filter((e) => e.event === 'step').map((e) => e.step)).toEqual([1, 2]);
    expect(events.find((e) => e.event === 'done')).toMatchObject({ phase: 'promoted', step: 2 });
    const status = await runCli(['status', '-f', file]);
    expect(status.stdout).toMatch(/phase\s+promoted/);
    expect(status.stdout).toMatch(/step\s+2\/2 \(100%\)/);
    const statusJson = JSON.parse((await runCli(['status', '-o', 'json', '-f', file])).stdout) as { step: number; plan: { steps: { step: number; weight: number }[] } };
    expect(statusJson.step).toBe(2);
    expect(statusJson.plan.steps.map((x) => [x.step, x.weight])).toEqual([[1, 10], [2, 100]]);
    expect(statusJson.plan.steps[0]).not.toHaveProperty('index');
    const history = await runCli(['history', '-f', file]);
    expect(history.stdout).toMatch(/rollout\.promoted/);
    expect(history.stdout).toMatch(/step\.entered.* \{"step":1,/);
    expect(history.stdout).toMatch(/step\.entered.* \{"step":2,/);
    expect(history.stdout).toMatch(/chain verified: \d+ records/);
    const again = await runCli(['promote', '--to', 'v2', '-f', file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/v2 is already the stable version/);
  });

  it('promote without --to carries on the rollout in progress, as the paused hint says, and says when there is none', async () => {
    const dir = tempDir();
    const file = join(dir, 'deploy.yaml');
    writeFileSync(file, CONFIG.replace('hold: 1s', 'hold: 50ms\n        pause: true'));
    const none = await runCli(['promote', '-f', file]);
    expect([none.code, none.stderr]).toEqual([2, expect.stringMatching(/no rollout of patient-api has been started\n.*deploy promote --to VERSION.*versions: v1, v2/s)]);
    const paused = await runCli(['promote', '--to', 'v2', '-f', file]);
    expect(paused.code).toBe(4);
    expect(paused.stdout).toMatch(/run `deploy promote` to go on/);
    const on = await runCli(['promote', '-f', file]);
    expect(on.code, on.stderr).toBe(0);
    expect((await runCli(['status', '-f', file])).stdout).toMatch(/phase\s+promoted/);
    const over = await runCli(['promote', '-f', file]);
    expect([over.code, over.stderr]).toEqual([2, expect.stringMatching(/no rollout of patient-api is in progress \(the last one, of v2, is promoted\)/)]);
  });

  it('prints the plan as JSON and the schema', async () => {
    const dir = tempDir();
    const file = join(dir, 'deploy.yaml');
    const init = await runCli(['init', '-f', file]);
    expect(init.code).toBe(0);
    const plan = await runCli(['plan', '-o', 'json', '-f', file]);
    expect(JSON.parse(plan.stdout)).toMatchObject({ event: 'plan', steps: [{ step: 1, weight: 1, holdMs: 1_800_000 }, { step: 2, weight: 5 }, { step: 3, weight: 25 }, { step: 4, weight: 50, pause: true }, { step: 5, weight: 100 }] });
    expect((await runCli(['init', '-f', file])).code).toBe(2);
    const schema = await runCli(['schema']);
    expect(JSON.parse(schema.stdout)).toHaveProperty('properties.router');
  });
});

describe('in a GitHub Actions step', () => {
  it('annotates a rollback, appends a job summary and writes the step outputs; stdout stays JSON', async () => {
    const dir = tempDir();
    const file = join(dir, 'deploy.yaml');
    writeFileSync(file, CONFIG.replace('hold: 1s', 'hold: 10m'));
    const summary = join(dir, 'summary.md');
    const output = join(dir, 'output.txt');
    const env = { GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary, GITHUB_OUTPUT: output };
    const { main } = await import('../../src/cli/main.js');
    const { PassThrough, Writable } = await import('node:stream');
    const sink = () => Object.assign(new Writable({ write(c, _e, done) { (this as unknown as { text: string }).text += String(c); done(); } }), { text: '' });
    const out = sink();
    const err = sink();
    // The driver holds at 10%; an operator aborts it from a second process.
    const driving = main(['promote', '--to', 'v2', '-o', 'json', '-f', file], { stdout: out, stderr: err, env: { CI: 'true', ...env } }, new PassThrough());
    await waitFor('the first step', () => out.text.includes('"event":"step"'));
    const abort = await runCli(['abort', '--reason', 'pager 4711', '-f', file]);
    expect(abort.code, abort.stderr).toBe(0);
    expect(await driving).toBe(3);
    for (const line of out.text.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
    const done = out.text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.event === 'done')!;
    expect(done).toMatchObject({ phase: 'aborted', exitCode: 3, stable: 'v1', candidate: 'v2', reason: 'pager 4711' });
    expect(done.durationMs as number).toBeGreaterThanOrEqual(0);
    expect(err.text).toMatch(/^::error title=Rollout aborted::patient-api: v1 100%25 — pager 4711$/m); // % escaped as GitHub asks
    expect(readFileSync(output, 'utf8')).toBe('phase=aborted\nversion=v1\nexit-code=3\n');
    const md = readFileSync(summary, 'utf8');
    expect(md).toMatch(/^### patient-api: v1 → v2, aborted$/m);
    expect(md).toMatch(/\| \d\d:\d\d:\d\d \| step 1\/2 \| v1 90% · v2 10%, hold 10m \|/);
    expect(md).toMatch(/\| aborted \| v1 100%: pager 4711 \|/);
    expect(md).toMatch(/^Why: pager 4711$/m);
  });
});

describe('GitLab CI', () => {
  it("the README's job: JSON lines, then the Markdown and HTML reports as artifacts, after a rollback too", async () => {
    const dir = tempDir();
    const file = join(dir, 'deploy.yaml');
    writeFileSync(file, CONFIG.replace('hold: 1s', 'hold: 10m'));
    const env = { GITLAB_CI: 'true', CI_COMMIT_SHORT_SHA: 'v2' };
    const { main } = await import('../../src/cli/main.js');
    const { PassThrough, Writable } = await import('node:stream');
    const sink = () => Object.assign(new Writable({ write(c, _e, done) { (this as unknown as { text: string }).text += String(c); done(); } }), { text: '' });
    const out = sink();
    const driving = main(['promote', '--to', env.CI_COMMIT_SHORT_SHA, '--yes', '--output', 'json', '-f', file], { stdout: out, stderr: sink(), env: { CI: 'true', ...env } }, new PassThrough());
    await waitFor('the first step', () => out.text.includes('"event":"step"'));
    expect((await runCli(['abort', '--reason', 'lab results wrong', '-f', file])).code).toBe(0);
    expect(await driving).toBe(3);
    writeFileSync(join(dir, 'rollout.jsonl'), out.text);
    const md = await runCli(['report', '--format', 'markdown', '--out', join(dir, 'rollout.md'), '-f', file], env);
    const html = await runCli(['report', '--out', join(dir, 'rollout.html'), '-f', file], env);
    expect([md.code, html.code], md.stderr + html.stderr).toEqual([0, 0]);
    const events = readFileSync(join(dir, 'rollout.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.at(-1)).toMatchObject({ event: 'done', phase: 'aborted', exitCode: 3 });
    expect(readFileSync(join(dir, 'rollout.md'), 'utf8')).toMatch(/aborted[\s\S]*lab results wrong/);
    expect(readFileSync(join(dir, 'rollout.html'), 'utf8')).toMatch(/^<!doctype html>/i);
  });
});

describe('help', () => {
  it('every command shows the global options and the exit codes', async () => {
    for (const args of [['--help'], ['promote', '--help'], ['abort', '--help'], ['orgs', 'move', '--help'], ['router', 'rotate-secret', '--help']]) {
      const run = await runCli(args);
      expect(run.code, args.join(' ')).toBe(0);
      if (args.length > 1) expect(run.stdout, args.join(' ')).toMatch(/Global Options:[\s\S]*--file <path>[\s\S]*--output <format>/);
      expect(run.stdout, args.join(' ')).toMatch(/Exit codes: 0 done, 1 unexpected error, 2 bad usage or config, 3 rolled back or aborted,\n4 paused \(waiting for `deploy promote`\), 5 another driver holds the lock\./);
    }
  });
});
