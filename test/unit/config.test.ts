import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { configJsonSchema } from '../../src/config/schema.js';
import { UsageError } from '../../src/errors.js';

const base = `service: patient-api
stable: v1
versions:
  v1: { endpoints: ["127.0.0.1:9001"] }
  v2:
    endpoints: ["127.0.0.1:9002"]
router:
  type: nginx
  listen: 127.0.0.1:8080
  admin: 127.0.0.1:8081
`;

function problem(text: string): string {
  try {
    parseConfig(text, 'deploy.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    expect((e as UsageError).exitCode).toBe(2);
    return (e as Error).message;
  }
  throw new Error('expected a config error');
}

describe('config', () => {
  it('takes a margin per step and the gate methods, and refuses a ladder latency gate without max', () => {
    const c = parseConfig(`${base}prometheus: { url: http://127.0.0.1:9090 }\ngates:\n  - { name: e, type: errorRate, method: confidence-sequence }\n  - { name: l, type: latencyP99, method: ladder, max: 500ms, maxIncrease: 2% }\nstrategy:\n  canary:\n    steps:\n      - { weight: 1, hold: 30m, margin: 1% }\n      - { weight: 100 }\n`, 'deploy.yaml');
    expect(c.strategy?.canary?.steps?.[0]?.margin).toBe(0.01);
    expect(c.gates?.map((g) => ('method' in g ? g.method : undefined))).toEqual(['confidence-sequence', 'ladder']);
    expect(problem(`${base}prometheus: { url: http://127.0.0.1:9090 }\ngates:\n  - { name: l, type: latencyP99, method: ladder, maxFactor: 1.5 }\n`)).toMatch(
      /^deploy\.yaml:\d+:\d+ gates\[0\]\.max: method: ladder counts the requests slower than max: set max/,
    );
  });

  it('takes a journey gate without Prometheus, and needs steps or a command, and a way to each version', () => {
    const journey = `gates:\n  - name: j\n    type: journey\n    steps:\n      - { path: /login, method: POST }\n`;
    expect(parseConfig(`${base}${journey}`, 'deploy.yaml').gates?.[0]?.type).toBe('journey');
    expect(problem(`${base}gates:\n  - { name: j, type: journey }\n`)).toMatch(/gates\[0\]: needs steps: \(HTTP steps\) or command: \(a probe of yours\), one of the two/);
    expect(problem(`${base}gates:\n  - { name: j, type: journey, command: [./probe], steps: [{ path: / }] }\n`)).toMatch(/one of the two/);
    expect(problem(`${base}${journey.replace('/login', 'login')}`)).toMatch(/path: must be a path starting with \//);
    const noEndpoints = base.replace('  v1: { endpoints: ["127.0.0.1:9001"] }\n', '  v1: {}\n').replace('type: nginx\n  listen: 127.0.0.1:8080\n  admin: 127.0.0.1:8081', 'type: none');
    expect(problem(`${noEndpoints}${journey}`)).toMatch(/journey j reaches each version at its endpoints, and v1 lists none: give the gate a url with \{\{version\}\}/);
    expect(parseConfig(`${noEndpoints}${journey.replace('type: journey', 'type: journey\n    url: http://{{version}}.probe.internal')}`, 'deploy.yaml').gates?.[0]).toMatchObject({ url: 'http://{{version}}.probe.internal' });
  });

  it('parses durations into milliseconds', () => {
    const c = parseConfig(`${base}strategy:\n  canary:\n    steps:\n      - weight: 1\n        hold: 30m\n      - weight: 100\n        hold: 1h30m\n`, 'deploy.yaml');
    expect(c.strategy?.canary?.steps?.map((s) => s.hold)).toEqual([1_800_000, 5_400_000]);
    expect(c.versions.v2?.endpoints).toEqual(['127.0.0.1:9002']);
  });

  it('names file, line, column and path of a weight that does not increase', () => {
    const msg = problem(`${base}strategy:\n  canary:\n    steps:\n      - weight: 1\n      - weight: 25\n      - weight: 25\n`);
    expect(msg).toBe('deploy.yaml:16:17 strategy.canary.steps[2].weight: must be greater than the previous step (25)');
  });

  it('rejects a weight outside 0–100 at its position', () => {
    expect(problem(`${base}strategy:\n  canary:\n    steps:\n      - weight: 150\n`)).toBe(
      'deploy.yaml:14:17 strategy.canary.steps[0].weight: must be between 0 and 100',
    );
  });

  it('points at an unknown field and lists the allowed ones', () => {
    const msg = problem(base.replace('  admin:', '  colour: red\n  admin:'));
    expect(msg).toBe(
      'deploy.yaml:10:3 router.colour: unknown field (allowed here: type, listen, admin, prefix, binary, modulesDir, workerProcesses, orgHeader, orgCookie)',
    );
  });

  it('explains a duration without a unit', () => {
    expect(problem(`${base}state:\n  type: local\n  lease: 10 minutes\n`)).toMatch(
      /^deploy\.yaml:13:10 state\.lease: must be a duration with a unit, like 30s, 10m or 1h30m \(got "10 minutes"\)$/,
    );
  });

  it('reports a missing field at its parent', () => {
    expect(problem(base.replace('service: patient-api\n', ''))).toMatch(/^deploy\.yaml:1:1 service: is required/);
  });

  it('rejects a stable version that is not listed', () => {
    expect(problem(base.replace('stable: v1', 'stable: v9'))).toBe(
      'deploy.yaml:2:9 stable: must be one of the versions listed under versions: (v1, v2)',
    );
  });

  it('rejects an unknown router type', () => {
    expect(problem(base.replace('type: nginx', 'type: traefik'))).toMatch(/^deploy\.yaml:8:9 router\.type: must be one of: nginx, alb, gateway-api, ingress-nginx, none, fleet \(got "traefik"\)$/);
  });

  it('positions YAML syntax errors', () => {
    expect(problem('service: [patient-api\n')).toMatch(/^deploy\.yaml is not valid YAML:\n  deploy\.yaml:\d+:\d+ /);
  });

  it('rejects a document that is not a mapping', () => {
    expect(problem('- just\n- a list\n')).toMatch(/^deploy\.yaml:1:1 must be a YAML mapping/);
  });

  it('generates a JSON Schema from the same source', () => {
    const schema = configJsonSchema() as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['service', 'versions', 'router', 'strategy']));
    expect(schema.required).toEqual(expect.arrayContaining(['service', 'stable', 'versions', 'router']));
  });
});
