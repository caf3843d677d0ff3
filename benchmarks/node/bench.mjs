// BullMQ for Node (npm `bullmq` + ioredis): the same scenarios and output protocol as
// benchmarks/peers/_harness.py. Run: node bench.mjs '<json params>'.
//
// Publish: Queue.add; E2: Queue.addBulk (one call). Process: Worker with `concurrency`,
// defaults otherwise (completed jobs kept, as BullMQ does by default); completion time from
// the worker's `completed` event, emitted after the job is moved to completed.
// FI: FlowProducer.add of one parent with n children; the publisher waits for the parent
// with job.waitUntilFinished(QueueEvents), the parent's handler reads getChildrenValues().
import { performance } from 'node:perf_hooks';
import { FlowProducer, Queue, QueueEvents, Worker } from 'bullmq';
import IORedis from 'ioredis';

const QUEUE = 'bench';
const WARMUP = 100;
const L1_WARMUP = 20;
const L1_DEADLINE_S = 60;
const FI_QUEUE = 'fi';
const FI_DEADLINE_S = 300;
const FI_WAIT_MS = 60000;

const emit = (obj) => process.stdout.write('BENCH-RESULT ' + JSON.stringify(obj) + '\n');
const ready = (obj = {}) => process.stdout.write('BENCH-READY ' + JSON.stringify(obj) + '\n');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const clock = () => performance.now() / 1000; // seconds, monotonic
const wallSeconds = () => (performance.timeOrigin + performance.now()) / 1000; // epoch seconds

function connection(url) {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 6379) };
}

function throughput(n, seconds, extra = {}) {
  return { n, seconds, ops: seconds > 0 ? n / seconds : 0, ...extra };
}

function percentile(values, q) {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((q / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

async function warm(url) {
  const q = new Queue('warm', { connection: connection(url) });
  for (let i = 0; i < WARMUP; i++) await q.add('noop', { i });
  await q.close();
}

async function e1({ url, n }) {
  await warm(url);
  const queue = new Queue(QUEUE, { connection: connection(url) });
  for (let i = 0; i < 10; i++) await queue.add('noop', { i: -1 - i });
  const t0 = clock();
  for (let i = 0; i < n; i++) await queue.add('noop', { i });
  const elapsed = clock() - t0;
  await queue.close();
  return throughput(n, elapsed);
}

async function e2({ url, n }) {
  await warm(url);
  const queue = new Queue(QUEUE, { connection: connection(url) });
  for (let i = 0; i < 10; i++) await queue.add('noop', { i: -1 - i });
  const jobs = Array.from({ length: n }, (_, i) => ({ name: 'noop', data: { i } }));
  const t0 = clock();
  await queue.addBulk(jobs);
  const elapsed = clock() - t0;
  await queue.close();
  return throughput(n, elapsed, { api: 'addBulk' });
}

async function processJobs({ url, n, concurrency }) {
  const queue = new Queue(QUEUE, { connection: connection(url) });
  for (let start = 0; start < n; start += 10000) {
    const jobs = [];
    for (let i = start; i < Math.min(n, start + 10000); i++) jobs.push({ name: 'noop', data: { i } });
    await queue.addBulk(jobs);
  }
  await queue.close();
  let completed = 0;
  let tEnd = 0;
  let resolveDone;
  const done = new Promise((r) => { resolveDone = r; });
  const t0 = clock();
  const worker = new Worker(QUEUE, async () => null, { connection: connection(url), concurrency });
  worker.on('completed', () => {
    completed += 1;
    if (completed === n) { tEnd = clock(); resolveDone(); }
  });
  await done;
  const result = throughput(n, tEnd - t0, { concurrency });
  await worker.close();
  return result;
}

async function l1_worker({ url, n }) {
  const values = [];
  let resolveDone;
  const done = new Promise((r) => { resolveDone = r; });
  const worker = new Worker(QUEUE, async (job) => {
    const now = wallSeconds();
    const p = job.data;
    if (p.w) return null;
    values.push((now - p.t) * 1000);
    if (values.length === n) resolveDone();
    return null;
  }, { connection: connection(url), concurrency: 10 });
  await sleep(500);
  ready();
  await Promise.race([done, sleep(L1_DEADLINE_S * 1000)]);
  const result = {
    n: values.length,
    p50_ms: percentile(values, 50),
    p90_ms: percentile(values, 90),
    p99_ms: percentile(values, 99),
    max_ms: values.length ? Math.max(...values) : null,
    mean_ms: values.length ? values.reduce((a, b) => a + b, 0) / values.length : null,
  };
  await worker.close();
  return result;
}

async function l1_publish({ url, n, interval_s }) {
  const queue = new Queue(QUEUE, { connection: connection(url) });
  await queue.waitUntilReady();
  const plan = [];
  for (let i = 0; i < L1_WARMUP; i++) plan.push([i * 0.01, { i: -1 - i, w: 1 }]);
  const start = L1_WARMUP * 0.01 + 0.2;
  for (let i = 0; i < n; i++) plan.push([start + i * interval_s, { i }]);
  const t0 = clock();
  let late = 0;
  for (const [offset, payload] of plan) {
    const delay = t0 + offset - clock();
    if (delay > 0) await sleep(delay * 1000);
    else if (delay < -interval_s) late += 1;
    payload.t = wallSeconds();
    await queue.add('lat', payload);
  }
  await queue.close();
  return { published: n, late };
}

function median(values) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// A line on stdin (the runner's "stop") or the deadline, whichever comes first.
function untilStop(deadlineS) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, deadlineS * 1000);
    process.stdin.once('data', () => { clearTimeout(timer); resolve(); });
    process.stdin.once('end', () => { clearTimeout(timer); resolve(); });
  });
}

// The server's counters read around each flow: script time (EVALSHA and co., which
// includes the commands the scripts run), all commands' time, and the server's CPU.
const SCRIPT_CMDS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);

async function serverCounters(probe) {
  const stats = await probe.info('commandstats');
  let script = 0;
  let all = 0;
  for (const line of stats.split('\r\n')) {
    const m = /^cmdstat_([^:]+):calls=\d+,usec=(\d+)/.exec(line);
    if (!m || m[1] === 'info') continue;
    all += Number(m[2]);
    if (SCRIPT_CMDS.has(m[1])) script += Number(m[2]);
  }
  const cpu = await probe.info('cpu');
  const num = (k) => Number((new RegExp(`${k}:([\\d.]+)`).exec(cpu) || [0, 0])[1]);
  return { script, all, cpu: (num('used_cpu_user') + num('used_cpu_sys')) * 1e6 };
}

// FI worker: an idle Worker (concurrency 50) on the flow queue until the runner says stop.
// Children return {n: i}; the parent checks that it sees all n children's values.
async function fi_worker({ url, n, concurrency = 50 }) {
  let parents = 0;
  const worker = new Worker(FI_QUEUE, async (job) => {
    if (job.name !== 'parent') return { n: job.data.i };
    const values = await job.getChildrenValues();
    const count = Object.keys(values).length;
    if (count !== n) throw new Error(`parent saw ${count} children values, not ${n}`);
    parents += 1;
    return { children: count };
  }, { connection: connection(url), concurrency });
  await worker.waitUntilReady();
  await sleep(500);
  ready();
  await untilStop(FI_DEADLINE_S);
  await worker.close();
  return { parents };
}

// FI publisher: `warmup` unmeasured flows, then `flows` flows one after the other, each
// FlowProducer.add (timed: publish) then waitUntilFinished on the parent (timed from the
// start of the add: the flow).
async function fi_publish({ url, n, flows = 7, warmup = 3 }) {
  const producer = new FlowProducer({ connection: connection(url) });
  const events = new QueueEvents(FI_QUEUE, { connection: connection(url) });
  const probe = new IORedis(connection(url));
  await producer.waitUntilReady();
  await events.waitUntilReady();
  const publishMs = [];
  const flowMs = [];
  const scriptUs = [];
  const serverUs = [];
  const cpuUs = [];
  const jobs = n + 1;
  for (let k = -warmup; k < flows; k++) {
    const children = Array.from({ length: n }, (_, i) => ({
      name: 'child', queueName: FI_QUEUE, data: { i },
    }));
    const before = await serverCounters(probe);
    const t0 = clock();
    const node = await producer.add({
      name: 'parent', queueName: FI_QUEUE, data: { parent: true }, children,
    });
    const t1 = clock();
    const result = await node.job.waitUntilFinished(events, FI_WAIT_MS);
    const t2 = clock();
    const after = await serverCounters(probe);
    if (!result || result.children !== n) {
      throw new Error(`parent result ${JSON.stringify(result)}: not ${n} children`);
    }
    if (node.children.length !== n) throw new Error(`${node.children.length} child nodes`);
    if (k < 0) continue;
    publishMs.push((t1 - t0) * 1000);
    flowMs.push((t2 - t0) * 1000);
    scriptUs.push((after.script - before.script) / jobs);
    serverUs.push((after.all - before.all) / jobs);
    cpuUs.push((after.cpu - before.cpu) / jobs);
  }
  await events.close();
  await producer.close();
  probe.disconnect();
  const flow = median(flowMs);
  return {
    n, flows, publish_ms: median(publishMs), flow_ms: flow,
    flows_per_s: 1000 / flow, jobs_per_s: (jobs * 1000) / flow,
    script_us_per_job: median(scriptUs), server_us_per_job: median(serverUs),
    server_cpu_us_per_job: median(cpuUs),
    publish_ms_all: publishMs, flow_ms_all: flowMs,
    api: 'FlowProducer.add + job.waitUntilFinished(QueueEvents)',
  };
}

const SCENARIOS = {
  e1,
  e2,
  p1: (p) => processJobs({ ...p, concurrency: 1 }),
  p2: (p) => processJobs({ concurrency: 50, ...p }),
  l1_worker,
  l1_publish,
  fi_worker,
  fi_publish,
};

const params = JSON.parse(process.argv[2]);
const fn = SCENARIOS[params.scenario];
let result;
try {
  result = fn ? await fn(params) : { na: `scenario ${params.scenario} not implemented by this peer` };
} catch (err) {
  console.error(err);
  result = { error: String(err) };
}
emit(result);
process.exit(0);
