import { expect } from 'chai';
import { isStreamId } from '../src/index.js';

describe('isStreamId', () => {
  it('accepts ids whose parts are 0 to 2^64-1', () => {
    for (const id of ['0-0', '1-0', '1732000000000-12', '18446744073709551615-18446744073709551615', '00001-01'])
      expect(isStreamId(id), id).to.equal(true);
  });

  it('refuses parts beyond 2^64-1, a missing part, signs, spaces and anything else Redis would refuse', () => {
    for (const id of [
      '18446744073709551616-0',
      '0-18446744073709551616',
      '99999999999999999999-0',
      '123456789012345678901-0',
      '1',
      '1-',
      '-1',
      '1--1',
      '+1-0',
      '1-0 ',
      ' 1-0',
      '1.5-0',
      '1-0-0',
      '',
      '*',
      '$',
    ])
      expect(isStreamId(id), id).to.equal(false);
  });
});
