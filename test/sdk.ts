/** The SDK as the cross-engine tests see it: loaded lazily, so these tests can skip until it exists. */
import { existsSync } from 'node:fs';

export const SDK_READY = existsSync(new URL('../sdk/src/model.ts', import.meta.url));
export const SDK_MISSING_REASON = 'sdk/src/model.ts does not exist yet (the SDK has not landed)';

export async function importSdk(): Promise<typeof import('../sdk/src/index.js')> {
  return import('../sdk/src/index.js');
}
