/**
 * Types of uPlot's ES module, which `ui/build.mjs` copies from the `uplot`
 * package to `dist/ui/js/vendor/uPlot.esm.js` (served under /ui/, no CDN).
 */
import uPlot from 'uplot';
export default uPlot;
