// An agenthost plugin in TypeScript: one provider and one action.
import { serve } from '@agenthost/sdk';

serve({
  name: 'typescript-example',
  version: '0.1.0',
  description: 'An agenthost plugin written in TypeScript: one provider and one action.',
  // The host sends a plugin only the settings it declares.
  settings: [{ name: 'TS_EXAMPLE_GREETING', description: 'What the provider says.', default: 'hello from Node' }],
  providers: [{
    name: 'TS_EXAMPLE',
    description: 'A greeting from the TypeScript example plugin.',
    position: 10,
    get: (agent) => `The TypeScript example provider says ${agent.setting('TS_EXAMPLE_GREETING')}.`,
  }],
  actions: [{
    name: 'TS_EXAMPLE_ACTION',
    description: 'Replies with a line from the TypeScript example plugin, through the host.',
    similes: ['TYPESCRIPT_EXAMPLE', 'NODE_EXAMPLE_ACTION'],
    handler: async (agent, call) => {
      // The agent's storage, through the host: how often the action ran for it.
      const runs = Number((await agent.getCache('ts-example:runs')) ?? 0) + 1;
      await agent.setCache('ts-example:runs', String(runs));
      const text = `TS_EXAMPLE_ACTION ran in Node for ${agent.name} (run ${runs})`;
      await agent.respond({ text, actions: ['TS_EXAMPLE_ACTION'], inReplyTo: call.message.id });
      return { success: true, text, values: { tsExampleRuns: runs } };
    },
  }],
});
