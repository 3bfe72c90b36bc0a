/**
 * A real headless browser for tests: Debian's `chromium`, driven over the DevTools protocol with
 * Node's own WebSocket (no driver package). It opens a page, records every request the page
 * makes, every exception and console or CSP message, evaluates expressions in it, and takes a
 * full-page screenshot. Fails loudly when chromium is missing or does not start.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** An open page. */
export interface BrowserPage {
  /** URLs the page requested, in order (the page's own URL first). */
  requests: string[];
  /** Uncaught exceptions, console errors and browser log entries (a CSP violation is one). */
  problems: string[];
  /** Evaluate `expression` in the page and return its JSON value. */
  evaluate<T>(expression: string): Promise<T>;
  /** A PNG of the whole page, as wide as the window the page was laid out in. */
  screenshot(): Promise<Buffer>;
}

/** A running chromium. */
export interface Browser {
  /** Open `url` in the browser's tab and wait for its load event and `settleMs` after it. */
  open(url: string, settleMs?: number): Promise<BrowserPage>;
  close(): Promise<void>;
}

/** The window's width in CSS pixels: pages are laid out and shot at it. */
const WIDTH = 1280;

type Message = { id?: number; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { message: string } };

/** Start headless chromium with a throwaway profile and remote debugging on a free port. */
export async function startChromium(binary = process.env.CHROMIUM ?? 'chromium'): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'cutover-chromium-'));
  const args = ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--hide-scrollbars', '--remote-debugging-port=0', `--user-data-dir=${profile}`, `--window-size=${WIDTH},900`, 'about:blank'];
  const child: ChildProcess = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`chromium did not start within 20 s: ${err.slice(-2000)}`)), 20_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${binary} (scripts/setup installs Debian's chromium): ${e.message}`));
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  const httpBase = endpoint.replace(/^ws:\/\/([^/]+)\/.*$/, 'http://$1');
  const targets = (await (await fetch(`${httpBase}/json/list`)).json()) as { type: string; webSocketDebuggerUrl: string }[];
  const tab = targets.find((t) => t.type === 'page');
  if (!tab) throw new Error('chromium opened no page');
  const ws = new WebSocket(tab.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error('cannot connect to chromium')), { once: true });
  });
  let nextId = 0;
  const pending = new Map<number, { resolve: (m: Message) => void; reject: (e: Error) => void }>();
  const listeners: ((m: Message) => void)[] = [];
  ws.addEventListener('message', (event) => {
    const m = JSON.parse(String(event.data)) as Message;
    if (m.id !== undefined) {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) p?.reject(new Error(m.error.message));
      else p?.resolve(m);
    } else for (const l of listeners) l(m);
  });
  const send = (method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      const id = ++nextId;
      pending.set(id, { resolve: (m) => resolve(m.result ?? {}), reject });
      ws.send(JSON.stringify({ id, method, params }));
    });

  return {
    async open(url, settleMs = 300) {
      const requests: string[] = [];
      const problems: string[] = [];
      let loaded!: () => void;
      const load = new Promise<void>((r) => (loaded = r));
      listeners.push((m) => {
        const p = m.params ?? {};
        if (m.method === 'Network.requestWillBeSent') requests.push(String((p.request as { url: string }).url));
        else if (m.method === 'Runtime.exceptionThrown') problems.push(`exception: ${JSON.stringify((p.exceptionDetails as Record<string, unknown>) ?? p)}`);
        else if (m.method === 'Runtime.consoleAPICalled' && (p.type === 'error' || p.type === 'warning')) problems.push(`console.${p.type}: ${JSON.stringify(p.args)}`);
        else if (m.method === 'Log.entryAdded') problems.push(`log: ${JSON.stringify(p.entry)}`);
        else if (m.method === 'Page.loadEventFired') loaded();
      });
      await Promise.all([send('Page.enable'), send('Network.enable'), send('Runtime.enable'), send('Log.enable')]);
      await send('Emulation.setDeviceMetricsOverride', { width: WIDTH, height: 900, deviceScaleFactor: 1, mobile: false });
      await send('Page.navigate', { url });
      await load;
      await new Promise((r) => setTimeout(r, settleMs));
      return {
        requests,
        problems,
        async evaluate<T>(expression: string): Promise<T> {
          const r = (await send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true })) as { result: { value: T }; exceptionDetails?: unknown };
          if (r.exceptionDetails) throw new Error(`evaluating ${expression.slice(0, 80)}: ${JSON.stringify(r.exceptionDetails)}`);
          return r.result.value;
        },
        async screenshot() {
          const metrics = (await send('Page.getLayoutMetrics')) as { cssContentSize: { height: number } };
          const height = Math.ceil(metrics.cssContentSize.height);
          await send('Emulation.setDeviceMetricsOverride', { width: WIDTH, height, deviceScaleFactor: 1, mobile: false });
          const shot = (await send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true })) as { data: string };
          return Buffer.from(shot.data, 'base64');
        },
      };
    },
    async close() {
      ws.close();
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
