// A plugin that uses every part of the SDK, for the tests every language
// SDK passes (internal/langsdk): the same plugin, with the same names under
// its own prefix, is written with the Python SDK in
// sdk/python/tests/fixture.py. Run it with `node dist/test/fixture.js`.

import { InvalidError, serve, type Agent } from '../index';

const P = 'TSF';
const lang = 'TypeScript';

/** What the slow provider saw when it stopped waiting. */
let lastSlow = 'nothing yet';

function untilAborted(agent: Agent, maxMs: number): Promise<string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('not cancelled'), maxMs);
    agent.signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        const reason: unknown = agent.signal.reason;
        resolve(`aborted: ${reason instanceof Error ? reason.name : String(reason)}`);
      },
      { once: true },
    );
  });
}

void serve({
  name: 'ts-fixture',
  version: '1.2.3',
  description: 'Every part of the TypeScript SDK, for its tests.',
  settings: [{ name: `${P}_GREETING`, description: 'How the fixture greets.', default: 'hello' }],
  providers: [
    { name: `${P}_TEXT`, position: 5, get: (agent) => ({ text: `${agent.setting(`${P}_GREETING`)} from ${lang}`, values: { lang } }) },
    {
      name: `${P}_THROWS`,
      get: () => {
        throw new Error('provider boom');
      },
    },
    {
      // Waits for its call to end when the message asks it to.
      name: `${P}_SLOW`,
      get: async (agent, message) => {
        if (!(message.content.text ?? '').includes('wait')) return 'not waiting';
        lastSlow = 'waiting';
        lastSlow = await untilAborted(agent, 30_000);
        agent.log.info('slow provider stopped', { outcome: lastSlow });
        return 'too late';
      },
    },
    { name: `${P}_LAST`, dynamic: true, get: () => `slow provider saw: ${lastSlow}` },
  ],
  actions: [
    {
      name: `${P}_RESPOND`,
      description: 'Answers through the host, counting its runs in the cache.',
      similes: [`${P}_ANSWER`],
      handler: async (agent, call) => {
        const settings = await agent.getSettings();
        const runs = Number((await agent.getCache(`${P}:runs`)) ?? '0') + 1;
        await agent.setCache(`${P}:runs`, String(runs));
        const text = `${P} responded to ${call.message.content.text ?? ''} for ${agent.name} (run ${runs}, greeting ${settings[`${P}_GREETING`] ?? 'unset'})`;
        await agent.respond({ text, actions: [`${P}_RESPOND`], inReplyTo: call.message.id });
        agent.log.info('responded', { runs });
        return { success: true, text, values: { runs } };
      },
    },
    {
      name: `${P}_THROWS`,
      handler: () => {
        throw new Error('action boom');
      },
    },
    {
      name: `${P}_MODEL`,
      handler: async (agent, call) => ({ success: true, text: await agent.generateText(call.message.content.text ?? '', { type: 'TEXT_SMALL' }) }),
    },
    {
      name: `${P}_TOUR`,
      description: 'Uses the rest of the agent API.',
      handler: async (agent, call) => {
        const roomId = call.message.roomId ?? '';
        await agent.upsertRoom({ id: roomId, name: 'fixture room', source: 'test', type: 'GROUP' });
        const room = await agent.getRoom(roomId);
        await agent.upsertEntities([{ id: 'e0000000-0000-4000-8000-000000000001', names: ['Ada'], metadata: { lang } }]);
        const entities = await agent.getEntities(['e0000000-0000-4000-8000-000000000001']);
        const { id } = await agent.createMemory(
          { roomId, entityId: agent.id, content: { text: `${P} fact`, mood: 'curious' }, metadata: { lang } },
          { table: 'facts' },
        );
        const facts = await agent.getMemories({ roomId, table: 'facts' });
        const embedding = await agent.embed('vector me');
        await agent.emitEvent(`${P}_EMITTED`, { payload: { lang } });
        await agent.addLog({ type: `${P}_log`, roomId, body: { lang } });
        const logs = await agent.getLogs({ type: `${P}_log` });
        const sent = await agent.sendMessage({ source: 'test', roomId }, `${P} says hi`);
        return {
          success: true,
          data: {
            room: room?.name ?? '',
            entity: entities[0]?.names[0] ?? '',
            entityLang: entities[0]?.metadata?.lang ?? '',
            memoryId: id,
            fact: facts.find((f) => f.id === id)?.content.text ?? '',
            factMood: facts.find((f) => f.id === id)?.content.mood ?? '',
            dims: embedding.length,
            logs: logs.length,
            sent: sent.length,
          },
        };
      },
    },
  ],
  evaluators: [
    {
      name: `${P}_EVAL`,
      handler: () => {
        throw new Error('evaluator boom');
      },
    },
  ],
  models: [
    { type: `${P}_ECHO`, handler: (_agent, req) => `echo: ${req.prompt ?? ''}` },
    {
      type: `${P}_STREAM`,
      handler: () => 'unused',
      stream: (_agent, req, emit) => {
        for (const w of (req.prompt ?? '').split(' ')) emit(`${w} `);
        return { text: req.prompt ?? '', model: 'fixture' };
      },
    },
    {
      type: `${P}_BROKEN`,
      handler: () => {
        throw new InvalidError('bad prompt');
      },
    },
  ],
  events: [
    {
      type: `${P}_EVENT`,
      handler: () => {
        throw new Error('event boom');
      },
    },
  ],
  sources: [{ name: 'tsf-chat', send: (_agent, target) => [`sent-to-${target.channelId ?? ''}`] }],
  routes: [
    { method: 'GET', path: '/hello', handler: (agent, req) => ({ body: `hello ${agent.name} ${req.query}` }) },
    {
      method: 'POST',
      path: '/boom',
      handler: () => {
        throw new Error('route boom');
      },
    },
  ],
});
