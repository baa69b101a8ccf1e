import { expect } from 'chai';
import { call, createPublisher, createTopic, errors, startApi, type Api } from './helpers.js';

describe('changing and deleting topics', () => {
  let api: Api;
  before(async () => {
    api = await startApi();
  });
  after(async () => {
    await api.close();
  });

  describe('PATCH /api/topics/:name', () => {
    it('changes the origin host and keeps the rest of the record', async () => {
      await createTopic(api.app, 'edited');
      const before = (await call(api.app, 'GET', '/api/topics/edited')).body as { data: Record<string, unknown> };
      const res = await call(api.app, 'PATCH', '/api/topics/edited', { origin_host: 'new.example' });
      expect(res.status).to.equal(200);
      expect((res.body as { data: Record<string, unknown> }).data).to.include({
        name: 'edited',
        origin_host: 'new.example',
      });
      const after = (await call(api.app, 'GET', '/api/topics/edited')).body as { data: Record<string, unknown> };
      expect(after.data).to.deep.equal({ ...before.data, origin_host: 'new.example' });
    });

    it('answers 400 naming origin_host when it is blank, and name when it is given', async () => {
      await createTopic(api.app, 'strict');
      const blank = await call(api.app, 'PATCH', '/api/topics/strict', { origin_host: '' });
      expect(blank.status).to.equal(400);
      expect(blank.body).to.deep.equal(errors({ origin_host: ["can't be blank"] }));
      const renamed = await call(api.app, 'PATCH', '/api/topics/strict', { name: 'other', origin_host: 'x' });
      expect(renamed.status).to.equal(400);
      expect(renamed.body).to.deep.equal(errors({ name: ['cannot be changed'] }));
      const empty = await call(api.app, 'PATCH', '/api/topics/strict', {});
      expect(empty.status).to.equal(400);
      expect(Object.keys((empty.body as { data: { errors: object } }).data.errors)).to.deep.equal(['body']);
    });

    it('answers 404 for an unknown topic', async () => {
      const res = await call(api.app, 'PATCH', '/api/topics/nope', { origin_host: 'x' });
      expect(res.status).to.equal(404);
      expect(res.body).to.deep.equal(errors({ name: ['topic not found'] }));
      expect(await api.redis.exists(api.keys.topic('nope').meta)).to.equal(0);
    });
  });

  describe('DELETE /api/topics/:name', () => {
    it('refuses with 409 naming name while the topic has publishers, then deletes it once they are gone', async () => {
      await createTopic(api.app, 'busy');
      const publisher = await createPublisher(api.app, { topic: 'busy', target: 'http://127.0.0.1:9/hook' });
      await call(api.app, 'POST', '/api/messages', { topic: 'busy', payload: { n: 1 } });
      const refused = await call(api.app, 'DELETE', '/api/topics/busy');
      expect(refused.status).to.equal(409);
      expect(refused.body).to.deep.equal(
        errors({ name: ['has publishers: delete them first (deleting a topic deletes its messages)'] }),
      );
      expect(await api.redis.xlen(api.keys.topic('busy').stream)).to.equal(1);

      expect((await call(api.app, 'DELETE', `/api/publishers/${String(publisher.id)}`)).status).to.equal(204);
      const res = await call(api.app, 'DELETE', '/api/topics/busy');
      expect(res.status).to.equal(204);
      const tk = api.keys.topic('busy');
      expect(await api.redis.exists(tk.meta, tk.stream, tk.ids, tk.publishers, tk.targets)).to.equal(0);
      expect(await api.redis.sismember(api.keys.topics, 'busy')).to.equal(0);
      expect((await call(api.app, 'GET', '/api/topics/busy')).status).to.equal(404);
      // The name is free again.
      expect((await call(api.app, 'POST', '/api/topics', { name: 'busy', origin_host: 'h' })).status).to.equal(201);
    });

    it('answers 404 for an unknown topic', async () => {
      const res = await call(api.app, 'DELETE', '/api/topics/never');
      expect(res.status).to.equal(404);
      expect(res.body).to.deep.equal(errors({ name: ['topic not found'] }));
    });
  });
});
