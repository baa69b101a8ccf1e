/**
 * The web UI's pure helpers, run in Node: error answers said in words,
 * targets shortened in the middle, relative times, and the latency
 * quantile of the publisher page.
 */
import { expect } from 'chai';
import { plainMessage } from '../../ui/src/api.js';
import { quantile, relativeTime, shortTarget } from '../../ui/src/text.js';

describe('web UI helpers', () => {
  describe('plainMessage', () => {
    it('says a field’s reason after a subject in words, never the field’s name', () => {
      expect(plainMessage(409, { name: ['has publishers: delete them first'] })).to.equal(
        'This topic has publishers: delete them first.',
      );
      expect(plainMessage(400, { seconds_timeout: ['must be at most 60'] })).to.equal(
        'Seconds timeout must be at most 60.',
      );
    });

    it('says a reason that names its own subject on its own, and a bare status in words', () => {
      expect(plainMessage(404, { id: ['message not found'] })).to.equal('Message not found.');
      expect(plainMessage(0, { network: ['the server does not answer'] })).to.equal('The server does not answer.');
      expect(plainMessage(404, {})).to.equal('It no longer exists.');
      expect(plainMessage(503, {})).to.equal('The server could not do it (error 503); try again.');
    });
  });

  describe('shortTarget', () => {
    it('keeps the host and the end of the path, and leaves short targets whole', () => {
      expect(shortTarget('http://127.0.0.1:27500/hooks/v2/tenants/acme/orders/ok-endpoint')).to.equal(
        'http://127.0.0.1:27500/…/ok-endpoint',
      );
      expect(shortTarget('http://127.0.0.1:27500/ok')).to.equal('http://127.0.0.1:27500/ok');
      expect(shortTarget('projects/p/topics/t', 10)).to.have.length(10);
      expect(shortTarget('projects/p/topics/t', 10)).to.match(/^proj.*….*s\/t$/);
    });
  });

  describe('relativeTime', () => {
    const now = Date.parse('2030-01-01T12:00:00Z');
    it('says how long ago or how soon', () => {
      expect(relativeTime('2030-01-01T11:57:00Z', now)).to.equal('3 min ago');
      expect(relativeTime('2030-01-01T12:10:00Z', now)).to.equal('in 10 min');
      expect(relativeTime('2030-01-01T11:59:58Z', now)).to.equal('just now');
      expect(relativeTime('2029-12-30T12:00:00Z', now)).to.equal('2 d ago');
    });
  });

  describe('quantile', () => {
    it('is the nearest rank, and undefined without samples', () => {
      const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
      expect(quantile(sorted, 0.5)).to.equal(50);
      expect(quantile(sorted, 0.99)).to.equal(99);
      expect(quantile([7], 0.99)).to.equal(7);
      expect(quantile([], 0.5)).to.equal(undefined);
    });
  });
});
