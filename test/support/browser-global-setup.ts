import { startSharedChromium } from './browser';
import globalSetup from './global-setup';

/**
 * The browser suite's global setup: the servers' (./global-setup), and the one Chromium its files
 * share (TEST_CHROMIUM_WS; ./global-teardown stops it).
 */
export default async function browserGlobalSetup(): Promise<void> {
  const [, chromium] = await Promise.all([globalSetup(), process.env.TEST_CHROMIUM_WS ? undefined : startSharedChromium()]);
  if (!chromium) return;
  process.env.TEST_CHROMIUM_WS = chromium.wsEndpoint;
  (globalThis as { __sbChromium?: { stop(): Promise<void> } }).__sbChromium = chromium;
}
