/**
 * The cutover console in a real pseudo-terminal: tmux runs `deploy promote` against real nginx,
 * the test reads the screen with capture-pane and types with send-keys — `p` and `y` move the
 * canary on, space pauses and resumes, `a` and `y` send every real request back to stable, and
 * the command exits 3. What only a terminal shows is checked here: the bars at 120 columns, a
 * resize to 80 without ghost lines, the history lines of operator actions, the SAFE state; and
 * the demo watched from a second console, paused, resumed and aborted from there.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEPLOY, sample, startSandbox, type Sandbox } from '../helpers/sandbox.js';

const STEPS = `    steps:
      - { weight: 1, hold: 60s }
      - { weight: 5, hold: 60s }
      - { weight: 25, hold: 60s }
      - { weight: 100 }
`;

/** The tmux server of this test alone (its socket in the sandbox folder), with no user config and no CI. */
let socket = '';
const PANE = 'console';
const { CI: _ci, CONTINUOUS_INTEGRATION: _ci2, TMUX: _tmux, ...ENV } = process.env;

function tmux(...args: string[]): string {
  const r = spawnSync('tmux', ['-S', socket, '-f', '/dev/null', ...args], { encoding: 'utf8', env: ENV });
  if (r.error) throw new Error(`tmux could not run (${r.error.message}); install it: apt-get install tmux (scripts/setup does)`);
  if (r.status !== 0) throw new Error(`tmux ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const screen = () => tmux('capture-pane', '-p', '-t', PANE);

/** Wait until the screen matches, or fail showing what it shows. */
async function waitForScreen(pattern: RegExp, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = screen();
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`the screen never showed ${pattern}; it shows:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Wait until `check` holds. */
async function waitFor<T>(what: string, read: () => Promise<T> | T, check: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (check(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)}; the screen shows:\n${screen()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The lines of the screen that are the console's header: `service  v1 → v2  rollout ID … PHASE step N/M`. */
const headers = (text: string) => text.split('\n').filter((l) => /^patient-api {2}v\d → v\d {2}rollout /.test(l) || /^\s*[A-Z]{4,}( [A-Z]+)? step \d\/\d\s*$/.test(l));

describe('the console in a real terminal', () => {
  let sb: Sandbox;
  beforeAll(async () => {
    sb = await startSandbox(STEPS);
    socket = join(sb.dir, 'tmux.sock');
  });
  afterAll(async () => {
    if (socket) spawnSync('tmux', ['-S', socket, 'kill-server'], { env: ENV });
    await sb?.stop();
  });

  it('promotes a step with p, pauses and resumes with space, aborts with a, and leaves all traffic on stable', async () => {
    // Without tmux this test fails (it is not skipped): the console needs a real terminal to prove.
    const version = spawnSync('tmux', ['-V'], { encoding: 'utf8', env: ENV });
    expect(version.error?.message, 'tmux must be installed (apt-get install tmux; scripts/setup does)').toBeUndefined();
    expect(version.stdout).toMatch(/^tmux \d/);

    const exitFile = join(sb.dir, 'exit-code');
    // CI is unset for the command too: the runner sets it, and the console is for terminals only.
    const command = `env -u CI -u CONTINUOUS_INTEGRATION ${DEPLOY} promote --to v2 -f ${sb.file}; echo $? > ${exitFile}; sleep 120`;
    tmux('new-session', '-d', '-s', PANE, '-x', '120', '-y', '40', '-c', sb.dir, command);

    let text = await waitForScreen(/HOLDING step 1\/4/);
    expect(text).toMatch(/steps\s+\[1\] → 5 → 25 → 100/);
    // At 120 columns the bars take the width the legend leaves.
    const traffic = text.split('\n').find((l) => l.startsWith('traffic'))!;
    expect(traffic).toMatch(/^traffic  █░+ {2}█ v2 1% {2}░ v1 99%$/);
    expect(traffic.trimEnd()).toHaveLength(120);
    expect(text).toMatch(/hold {5}█*░{80,} {2}(\d+s|1m) left of 1m/);
    expect(text).not.toMatch(/1m\d+s left of 1m/);
    expect(text).toMatch(/driver\s+this process drives \(pid \d+\)/);
    expect(text).toContain('p promote  a abort  space pause  o orgs  ? help  q leave');
    expect((await sb.router.read()).weights).toEqual({ v1: 99, v2: 1 });

    tmux('send-keys', '-t', PANE, 'p');
    await waitForScreen(/Skip the rest of this hold and go to step 2 \(5%\)\? \[y\/N\]/);
    expect((await sb.router.read()).weights.v2).toBe(1);
    tmux('send-keys', '-t', PANE, 'y');
    await waitFor('the router after p, y', () => sb.router.read(), (live) => live.weights.v2 === 5);
    text = await waitForScreen(/HOLDING step 2\/4/);
    expect(text).toMatch(/steps\s+1 → \[5\] → 25 → 100/);
    // The early promote has its line in the history, with who, just above the step it led to.
    const lines = text.split('\n');
    const promoted = lines.findIndex((l) => /^\d\d:\d\d:\d\d \S+@\S+ promoted early: skipped the rest of step 1's hold$/.test(l));
    expect(promoted, text).toBeGreaterThanOrEqual(0);
    expect(lines[promoted + 1]).toMatch(/step 2\/4 {3}5% {2}v1 95% · v2 5%/);

    // Narrower: the console redraws to fit, and no header is left behind above it.
    tmux('resize-window', '-t', PANE, '-x', '80', '-y', '40');
    text = await waitForScreen(/^traffic {2}█+░+ {2}█ v2 5% {2}░ v1 95%$/m);
    for (const line of text.split('\n')) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(headers(text), text).toHaveLength(1);
    expect(headers(text)[0]).toMatch(/^patient-api {2}v1 → v2 {2}rollout \S+ +HOLDING step 2\/4$/);

    tmux('send-keys', '-t', PANE, 'Space');
    text = await waitForScreen(/PAUSED step 2\/4/);
    await waitForScreen(/^\d\d:\d\d:\d\d \S+@\S+ paused the rollout at step 2$/m);
    text = await waitForScreen(/paused by \S+@\S+ at \d\d:\d\d:\d\d: space resumes, p promotes, a aborts/);
    // The console carries on through the pause: no "done" above it, and the keys are live.
    expect(text).not.toMatch(/done: paused/);
    expect(text).toContain('space resume');
    expect(existsSync(exitFile)).toBe(false);

    tmux('send-keys', '-t', PANE, 'Space');
    await waitForScreen(/^\d\d:\d\d:\d\d \S+@\S+ resumed the rollout at step 2$/m);
    await waitForScreen(/HOLDING step 2\/4/);

    tmux('send-keys', '-t', PANE, 'a');
    await waitForScreen(/Abort: send all traffic back to v1\? \[y\/N\]/);
    tmux('send-keys', '-t', PANE, 'y');
    const code = await waitFor('the exit code', () => (existsSync(exitFile) ? readFileSync(exitFile, 'utf8').trim() : ''), (c) => c !== '');
    expect(code).toBe('3');

    expect((await sb.router.read()).weights).toEqual({ v1: 100 });
    expect(await sample(sb.listen, 1000, 16)).toEqual({ byVersion: { v1: 1000 }, failed: 0 });
    text = screen();
    expect(text).toMatch(/ABORTED step 2\/4/);
    expect(text).toMatch(/aborted by \S+: v1 100% — from the console/);
    expect(text).toMatch(/traffic\s+░+\s+░ v1 100%/);
    expect(text).toMatch(/safety\s+SAFE {2}all traffic on v1 since \d\d:\d\d:\d\d/);
    // The lock was released: another command may take it at once.
    const status = await sb.deploy(['status', '-o', 'json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ phase: 'aborted', driver: null, weights: { v1: 100 } });
  });

  it('ends with its own rollout: aborted by another hand while paused, it exits 3 and follows nothing after', async () => {
    // A tmux server of its own: one whose last session is killed exits, and a new session asked
    // of it meanwhile fails with "server exited unexpectedly".
    spawnSync('tmux', ['-S', socket, 'kill-server'], { env: ENV });
    socket = join(sb.dir, 'tmux-2.sock');
    const exitFile = join(sb.dir, 'exit-code-2');
    const command = `env -u CI -u CONTINUOUS_INTEGRATION ${DEPLOY} promote --to v2 -f ${sb.file}; echo $? > ${exitFile}; sleep 120`;
    tmux('new-session', '-d', '-s', PANE, '-x', '120', '-y', '40', '-c', sb.dir, command);
    await waitForScreen(/HOLDING step 1\/4/);
    tmux('send-keys', '-t', PANE, 'Space');
    await waitForScreen(/PAUSED step 1\/4/);
    // Paused, the console drives nothing: another command acts on the rollout itself.
    const abort = await sb.deploy(['abort', '--reason', 'lab results look wrong']);
    expect(abort.exitCode, abort.stderr).toBe(0);
    const code = await waitFor('the exit code', () => (existsSync(exitFile) ? readFileSync(exitFile, 'utf8').trim() : ''), (c) => c !== '');
    expect(code).toBe('3');
    const text = screen();
    expect(text).toMatch(/ABORTED step 1\/4/);
    expect(text).toMatch(/aborted: lab results look wrong/);
    expect(text).toMatch(/safety\s+SAFE {2}all traffic on v1/);
  });
});

describe('the demo watched from a second terminal', () => {
  // The tmux socket lives apart from the demo's sandbox, which the demo removes when it ends.
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cutover-watch-'));
  });
  const startDemo = () => execa(DEPLOY, ['demo', '--hold', '3s'], { reject: false, env: { CI: 'true' }, timeout: 230_000 });
  let demo: ReturnType<typeof startDemo> | undefined;
  let ended = false;
  afterAll(async () => {
    if (dir) {
      spawnSync('tmux', ['-S', join(dir, 'tmux.sock'), 'kill-server'], { env: ENV });
      rmSync(dir, { recursive: true, force: true });
    }
    // A demo left running by a failure is interrupted as Ctrl-C would: it stops what it started.
    if (demo && !ended) {
      demo.kill('SIGINT');
      await demo;
    }
  });

  it('waits through a pause from `deploy watch`, goes on after an abort there, and shows the bad release SAFE', { timeout: 240_000 }, async () => {
    demo = startDemo();
    void demo.then(() => (ended = true));
    let stderr = '';
    demo.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const file = await waitFor('the demo\'s sandbox', () => /watch -f (\S+)/.exec(stderr)?.[1] ?? '', (f) => f !== '', 60_000);
    socket = join(dir, 'tmux.sock');
    tmux('new-session', '-d', '-s', PANE, '-x', '120', '-y', '40', '-c', dir, `env -u CI -u CONTINUOUS_INTEGRATION ${DEPLOY} watch -f ${file}; sleep 120`);
    await waitForScreen(/patient-api {2}v1 → v2 {2}rollout \S+ +HOLDING step 1\/5/, 60_000);
    await waitForScreen(/driver\s+driven by \S+ \(pid \d+\)/);

    // Space asks the demo's driver to pause: the demo waits, holding its sandbox and its lock.
    tmux('send-keys', '-t', PANE, 'Space');
    await waitForScreen(/PAUSED step \d\/5/);
    await waitForScreen(/^\d\d:\d\d:\d\d \S+@\S+ paused the rollout at step \d$/m);
    await waitFor('the demo\'s note', () => stderr, (e) => /paused by \S+ at step \d: the demo waits/.test(e));
    expect(stderr).toMatch(/Go on from `\S*deploy watch -f \S+`: space in it resumes, p promotes, a aborts/);
    expect(stderr).not.toMatch(/bad release/);
    expect(ended).toBe(false);
    expect(existsSync(file)).toBe(true);
    let text = await waitForScreen(/driver\s+driven by \S+ \(pid \d+\)/);
    expect(text).toContain('space resume');

    tmux('send-keys', '-t', PANE, 'Space');
    await waitForScreen(/^\d\d:\d\d:\d\d \S+@\S+ resumed the rollout at step \d$/m);
    await waitForScreen(/HOLDING step \d\/5/);

    // An abort from the watcher ends the good release only: the demo goes on with the bad one.
    tmux('send-keys', '-t', PANE, 'a');
    await waitForScreen(/Abort: send all traffic back to v1\? \[y\/N\]/);
    tmux('send-keys', '-t', PANE, 'y');
    text = await waitForScreen(/patient-api {2}v1 → v3 {2}rollout \S+ +HOLDING step \d\/5/, 30_000);
    // The good release's end is in the history though the next one began before the watcher looked.
    expect(text).toMatch(/\d\d:\d\d:\d\d aborted by \S+: v1 100% — from the console/);
    text = (await waitForScreen(/ROLLED BACK step [34]\/5/, 120_000)).replace(/\n {9,}(?=\S)/g, ' ');
    expect(text).toMatch(/safety\s+SAFE {2}all traffic on v1 since \d\d:\d\d:\d\d, [\d.]+ s after gate errors failed users got [\d,]+ failed requests? beyond v1's error rate/);
    expect(text).toMatch(/rolled back: gate errors failed: v3 errors/);

    const r = await demo;
    expect(r.exitCode, r.stderr.slice(-3000)).toBe(0);
    expect(r.stdout).toMatch(/good release: aborted \(from the console\); bad release: rolled back by its gate/);
    expect(r.stdout).toMatch(/users harmed: [\d,.kM]+ failed requests of v3 beyond v1's error rate/);
  });
});
