/** Free loopback ports for tests: the same helper the sandbox uses. */
export { freePort, freePorts } from '../../src/sandbox/ports.js';
