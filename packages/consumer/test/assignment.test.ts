import { expect } from 'chai';
import { assignSlots, slotName } from '../src/index.js';

function slots(publishers: number, perPublisher = 1): string[] {
  const out: string[] = [];
  for (let p = 1; p <= publishers; p++) for (let s = 0; s < perPublisher; s++) out.push(slotName(String(p), s));
  return out;
}

function loads(assignment: Map<string, string>, nodes: string[]): number[] {
  const counts = new Map(nodes.map((n) => [n, 0]));
  for (const node of assignment.values()) counts.set(node, (counts.get(node) ?? 0) + 1);
  return [...counts.values()];
}

describe('assigning publisher slots to nodes', () => {
  it('gives every slot to one node, each node within one slot of any other', () => {
    for (const n of [1, 2, 3, 4, 5, 7, 10]) {
      const nodes = Array.from({ length: n }, (_, i) => `node-${i}`);
      for (const count of [0, 1, 2, 29, 30, 31, 100, 997]) {
        const all = slots(count);
        const a = assignSlots(all, nodes);
        expect(a.size).to.equal(count);
        for (const owner of a.values()) expect(nodes).to.include(owner);
        const l = loads(a, nodes);
        expect(Math.max(...l) - Math.min(...l), `${count} slots over ${n} nodes: ${l.join('/')}`).to.be.at.most(1);
      }
    }
  });

  it('answers the same whatever the order of its inputs (every node computes it alone)', () => {
    const all = slots(40, 3);
    const nodes = ['b', 'c', 'a'];
    const one = assignSlots(all, nodes);
    const two = assignSlots([...all].reverse(), ['a', 'c', 'b', 'a']);
    expect([...two].sort()).to.deep.equal([...one].sort());
  });

  it('moves few slots when a node joins or leaves: mostly the newcomer’s share', () => {
    const all = slots(300);
    const three = assignSlots(all, ['a', 'b', 'c']);
    const four = assignSlots(all, ['a', 'b', 'c', 'd']);
    const moved = all.filter((s) => three.get(s) !== four.get(s)).length;
    // The newcomer's share is 75; plain rebalancing by position would move most of the 300.
    expect(moved).to.be.at.least(75);
    expect(moved).to.be.below(150);
    const back = assignSlots(all, ['a', 'b', 'c']);
    expect([...back].sort()).to.deep.equal([...three].sort());
  });

  it('assigns nothing without a live node', () => {
    expect(assignSlots(slots(5), []).size).to.equal(0);
  });
});
