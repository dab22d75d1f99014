// Unit tests of the pieces that need no host: run with `node --test`
// after tsc (the Go test TestUnits does).

import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { negotiateVersion } from '../serve';
import { Logger, hclogTimestamp } from '../log';
import { contentFromProto, contentToProto, decodeObject, onBadJson } from '../convert';
import { validatePlugin } from '../server';
import { NotFoundError, DeadlineExceededError, errorFromStatus, codeOf } from '../errors';
import { makeServerCertificate } from '../mtls';

test('the version is the highest both sides speak, else our lowest', () => {
  assert.equal(negotiateVersion('1,2', [1]), 1);
  assert.equal(negotiateVersion(' 2 , 1 ', [1, 2]), 2);
  assert.equal(negotiateVersion('3', [1, 2]), 1);
  assert.equal(negotiateVersion(undefined, [1]), 1);
});

test('log lines are hclog JSON with string @level, @message and @timestamp', () => {
  const lines: string[] = [];
  const log = new Logger('unit', 'debug', (l) => lines.push(l)).with({ agent_id: 'a1' });
  log.info('hello', { n: 1, '@level': 'bogus', err: new Error('boom') });
  log.trace('dropped');
  assert.equal(lines.length, 1);
  assert.ok(lines[0].endsWith('\n'));
  const e = JSON.parse(lines[0]) as Record<string, unknown>;
  assert.equal(e['@level'], 'info');
  assert.equal(e['@message'], 'hello');
  assert.equal(e['@module'], 'unit');
  assert.equal(e.agent_id, 'a1');
  assert.equal(e.n, 1);
  assert.match(String(e.err), /Error: boom/);
  assert.match(String(e['@timestamp']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  assert.equal(hclogTimestamp(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))), '2026-01-02T03:04:05.678000Z');
});

test('content keeps its extra keys across the wire', () => {
  const pb = contentToProto({ text: 'hi', actions: ['WAVE'], mood: 'happy', nested: { a: [1, 2] } });
  assert.equal(pb.text, 'hi');
  assert.deepEqual(JSON.parse(pb.extraJson.toString()), { mood: 'happy', nested: { a: [1, 2] } });
  assert.deepEqual(contentFromProto(pb), { text: 'hi', actions: ['WAVE'], mood: 'happy', nested: { a: [1, 2] } });
  assert.deepEqual(contentToProto('plain').text, 'plain');
});

test('JSON that does not parse is reported and read as {}', () => {
  const bad: string[] = [];
  onBadJson((field) => bad.push(field));
  assert.deepEqual(decodeObject(Buffer.from('{nope'), 'state.values_json'), {});
  assert.deepEqual(decodeObject(Buffer.from('[1]'), 'memory.metadata_json'), {});
  assert.deepEqual(decodeObject(Buffer.from('{"a":1}'), 'x'), { a: 1 });
  assert.deepEqual(bad, ['state.values_json', 'memory.metadata_json']);
  onBadJson(() => {});
});

test('definition mistakes are caught at start, naming them', () => {
  const get = () => '';
  assert.throws(() => validatePlugin({ name: '' }), /name is empty/);
  assert.throws(
    () => validatePlugin({ name: 'p', providers: [{ name: 'A', get }, { name: 'A', get }] }),
    /provider A is defined twice/,
  );
  assert.throws(() => validatePlugin({ name: 'p', actions: [{ name: 'X' } as never] }), /action X has no handler/);
  assert.throws(
    () => validatePlugin({ name: 'p', settings: [{ name: 'K', required: true, default: 'x' }] }),
    /required and has a default/,
  );
  assert.throws(() => validatePlugin({ name: 'p', routes: [{ path: 'hook', handler: () => ({}) }] }), /starting with "\/"/);
  validatePlugin({ name: 'p', providers: [{ name: 'A', get }] });
});

test('errors keep their kind as gRPC codes, both ways', () => {
  const e = errorFromStatus('runtime GetRoom', { code: status.NOT_FOUND, details: 'no such room' });
  assert.ok(e instanceof NotFoundError);
  assert.equal(e.message, 'runtime GetRoom: no such room');
  assert.ok(errorFromStatus('x', { code: status.DEADLINE_EXCEEDED }) instanceof DeadlineExceededError);
  assert.equal(codeOf(new NotFoundError('x')), status.NOT_FOUND);
  assert.equal(codeOf(new Error('x')), status.INTERNAL);
});

test('the AutoMTLS certificate names localhost, allows server auth and is in the handshake unpadded', async () => {
  const c = await makeServerCertificate();
  const x = new X509Certificate(c.certPem);
  assert.ok(x.checkHost('localhost'));
  assert.match(x.subjectAltName ?? '', /DNS:localhost/);
  assert.ok(new Date(x.validFrom).getTime() < Date.now());
  assert.ok(!c.handshakeField.endsWith('='));
  assert.deepEqual(Buffer.from(c.handshakeField, 'base64'), x.raw);
});
