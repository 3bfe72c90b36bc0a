/** The fleet sandbox (src/sandbox/fleet-sandbox.ts) with the built CLI of this checkout. */
import { startFleetSandbox as start, type FleetSandboxOptions, type FleetSandbox } from '../../src/sandbox/fleet-sandbox.js';
import { DEPLOY } from './sandbox.js';

export type { FleetSandbox, Region } from '../../src/sandbox/fleet-sandbox.js';

/** Start a fleet sandbox whose `deploy()` runs this checkout's bin/deploy. */
export function startFleetSandbox(opts: Omit<FleetSandboxOptions, 'deployBin'>): Promise<FleetSandbox> {
  return start({ ...opts, deployBin: DEPLOY });
}
