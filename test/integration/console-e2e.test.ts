/**
 * The cutover console in a real pseudo-terminal: tmux runs `deploy promote` against real nginx,
 * the test reads the screen with capture-pane and types with send-keys — `p` and `y` move the
 * canary on, `a` and `y` send every real request back to stable, and the command exits 3.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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

  it('promotes a step with p, aborts with a, and leaves all traffic on stable', async () => {
    // Without tmux this test fails (it is not skipped): the console needs a real terminal to prove.
    const version = spawnSync('tmux', ['-V'], { encoding: 'utf8', env: ENV });
    expect(version.error?.message, 'tmux must be installed (apt-get install tmux; scripts/setup does)').toBeUndefined();
    expect(version.stdout).toMatch(/^tmux \d/);

    const exitFile = join(sb.dir, 'exit-code');
    // CI is unset for the command too: the runner sets it, and the console is for terminals only.
    const command = `env -u CI -u CONTINUOUS_INTEGRATION ${DEPLOY} promote --to v2 -f ${sb.file}; echo $? > ${exitFile}; sleep 120`;
    tmux('new-session', '-d', '-s', PANE, '-x', '100', '-y', '30', '-c', sb.dir, command);

    let text = await waitForScreen(/HOLDING step 1\/4/);
    expect(text).toMatch(/steps\s+\[1\] → 5 → 25 → 100/);
    expect(text).toMatch(/traffic\s+█░+\s+█ v2 1%\s+░ v1 99%/);
    expect(text).toMatch(/hold\s+█*░+\s+(\d+s|1m) left of 1m/);
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
    expect(text).toMatch(/step 2\/4 {3}5% {2}v1 95% · v2 5%/);

    tmux('send-keys', '-t', PANE, 'a');
    await waitForScreen(/Abort: send all traffic back to v1\? \[y\/N\]/);
    tmux('send-keys', '-t', PANE, 'y');
    const code = await waitFor('the exit code', () => (existsSync(exitFile) ? readFileSync(exitFile, 'utf8').trim() : ''), (c) => c !== '');
    expect(code).toBe('3');

    expect((await sb.router.read()).weights).toEqual({ v1: 100 });
    expect(await sample(sb.listen, 1000, 16)).toEqual({ byVersion: { v1: 1000 }, failed: 0 });
    text = screen();
    expect(text).toMatch(/ABORTED step 2\/4/);
    expect(text).toMatch(/aborted: v1 100% — aborted by .+ from the console/);
    expect(text).toMatch(/traffic\s+░+\s+░ v1 100%/);
    // The lock was released: another command may take it at once.
    const status = await sb.deploy(['status', '-o', 'json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ phase: 'aborted', driver: null, weights: { v1: 100 } });
  });
});
