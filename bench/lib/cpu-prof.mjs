/**
 * Preloaded into producer and consumer by `pnpm bench --cpu-prof <dir>`
 * (through NODE_OPTIONS=--import, since --cpu-prof itself is not allowed
 * there): runs the V8 sampling profiler from start to exit and writes
 * `<dir>/<BENCH_CPU_PROF_NAME>.cpuprofile`, the format `--cpu-prof` writes.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_CPU_PROF;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.on('exit', () => {
    // The main thread's session answers synchronously, so this runs before the process ends.
    session.post('Profiler.stop', (err, result) => {
      if (!err)
        writeFileSync(
          join(dir, `${process.env.BENCH_CPU_PROF_NAME ?? process.pid}.cpuprofile`),
          JSON.stringify(result.profile),
        );
    });
  });
}
