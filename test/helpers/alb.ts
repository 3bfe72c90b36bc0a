/** The ALB fixture on moto for tests: the same one `npm run bench` uses. */
export { createAlb, REGION, useEmulatorCredentials, type AlbFixture } from '../../src/sandbox/alb-fixture.js';
