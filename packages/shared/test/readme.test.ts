import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { SETTINGS } from '../src/index.js';

describe('the configuration table of docs/configuration.md', () => {
  const section = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  const rows = [...section.matchAll(/^\|\s*`([A-Z0-9_]+)`\s*\|([^|]+)\|([^|]+)\|/gm)];

  it('lists every variable the code reads, and no other', () => {
    const documented = rows.map((r) => r[1]).sort();
    const read = Object.values(SETTINGS)
      .map((s) => s.env)
      .sort();
    expect(documented).to.deep.equal(read);
  });

  it('names the processes that read each variable', () => {
    for (const s of Object.values(SETTINGS)) {
      const row = rows.find((r) => r[1] === s.env);
      expect(row?.[2]?.trim(), s.env).to.equal(s.roles.join(', '));
    }
  });

  it('gives each default as the code has it', () => {
    for (const s of Object.values(SETTINGS)) {
      if (typeof s.default === 'function' || s.default === '') continue;
      const row = rows.find((r) => r[1] === s.env);
      expect(row?.[3], s.env).to.contain(`\`${s.default}\``);
    }
  });
});
