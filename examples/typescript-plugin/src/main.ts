// Entry point of the TypeScript example plugin. The executable
// agenthost-plugin-typescript-example next to package.json loads this file.

import { serve } from './goplugin';
import { PLUGIN_NAME, registerExample } from './example';

serve({ name: PLUGIN_NAME, register: registerExample }).catch((err: unknown) => {
  // Before the handshake the host only sees that we exited; say why on stderr.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(
    `${JSON.stringify({
      '@level': 'error',
      '@message': `plugin failed to start: ${message}`,
      '@timestamp': new Date().toISOString().slice(0, 23) + '000Z',
      '@module': PLUGIN_NAME,
    })}\n`,
  );
  process.exit(1);
});
