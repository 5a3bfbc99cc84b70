// The verdict of an Artillery run of flash-sale.yml: reads the run's JSON report and the sale's
// stock before and after, and says whether the drop was right. Exit 0: correct; 1: the drop
// was wrong (oversold, a unit lost, answers flashsale never gives); 2: the run proves nothing
// (most purchases refused by the per-IP limit, or none answered).
//
//   node verdict.mjs stock URL            prints the sale's stock now (JSON), for "before"
//   node verdict.mjs judge REPORT BEFORE URL
//
// Every purchase is accounted for: PURCHASED answers must be units that left the stock, and
// every unit that left must have been answered PURCHASED or have had no answer (a 503, a
// timeout: the buyer may have it). P99_BUDGET_MS, when set, also judges the latency.
import { readFileSync } from 'node:fs';

const [mode, ...args] = process.argv.slice(2);

async function stock(url) {
  const response = await fetch(`${url.replace(/\/$/, '')}/api/sale/status`);
  if (!response.ok) throw new Error(`GET /api/sale/status: ${response.status}`);
  const status = await response.json();
  return { total: status.totalStock, remaining: status.remainingStock, held: status.heldStock ?? 0 };
}

if (mode === 'stock') {
  console.log(JSON.stringify(await stock(args[0])));
  process.exit(0);
}
if (mode !== 'judge') {
  console.error('usage: verdict.mjs stock URL | verdict.mjs judge REPORT BEFORE URL');
  process.exit(2);
}

const [reportFile, beforeFile, url] = args;
const report = JSON.parse(readFileSync(reportFile, 'utf8'));
const before = JSON.parse(readFileSync(beforeFile, 'utf8'));
const after = await stock(url);
const counters = report.aggregate.counters ?? {};
const latency = report.aggregate.summaries?.['http.response_time'] ?? {};

const answers = Object.fromEntries(
  Object.entries(counters)
    .filter(([name]) => name.startsWith('flashsale.purchase.'))
    .map(([name, count]) => [name.slice('flashsale.purchase.'.length), count]),
);
const count = (code) => answers[code] ?? 0;
const errors = Object.entries(counters)
  .filter(([name]) => name.startsWith('errors.'))
  .reduce((sum, [, n]) => sum + n, 0);
const answered = Object.values(answers).reduce((a, b) => a + b, 0);
const bought = count('PURCHASED') + count('RESERVED');
// No answer, or no decision: the buyer may or may not have a unit.
const unknown = count('SERVICE_UNAVAILABLE') + count('INTERNAL_ERROR') + count('NOT_JSON') + errors;
const sold = before.remaining + before.held - (after.remaining + after.held);
const expected = new Set(['PURCHASED', 'RESERVED', 'ALREADY_PURCHASED', 'ALREADY_RESERVED', 'SOLD_OUT',
  'SALE_NOT_STARTED', 'SALE_ENDED', 'RATE_LIMITED', 'SERVICE_UNAVAILABLE', 'NOT_ADMITTED']);
const strange = Object.keys(answers).filter((code) => !expected.has(code) && code !== 'NOT_JSON');

const problems = [];
let inconclusive = null;
if (after.remaining < 0 || sold > before.remaining + before.held) {
  problems.push(`oversold: the stock went below zero (remaining ${after.remaining})`);
}
if (bought > sold) {
  problems.push(`oversold: ${bought} buyers were told PURCHASED but only ${sold} unit(s) left the stock`);
}
if (sold > bought + unknown) {
  problems.push(`${sold - bought - unknown} unit(s) left the stock that no buyer was told about`);
}
if (strange.length) problems.push(`answers flashsale never gives a buyer: ${strange.join(', ')}`);
const budget = Number(process.env.P99_BUDGET_MS || 0);
if (budget && latency.p99 > budget) problems.push(`p99 ${latency.p99} ms over the ${budget} ms budget`);
if (answered + errors === 0) inconclusive = 'no purchase was answered';
else if (count('RATE_LIMITED') > 0.05 * (answered + errors)) {
  inconclusive = `${Math.round((100 * count('RATE_LIMITED')) / (answered + errors))} % of purchases were refused by ` +
    'the per-IP limit (one load generator is one address): start the service with RATE_LIMIT_PER_SECOND=0';
}

const pad = (s, n) => String(s).padStart(n);
console.log('\nflashsale verdict');
console.log(`  stock            ${before.remaining + before.held} before, ${after.remaining + after.held} after (of ${after.total})`);
console.log(`  units sold       ${sold}`);
console.log(`  told PURCHASED   ${bought}`);
console.log(`  no answer        ${unknown} (503, 500, not JSON, or a network error: may have bought)`);
console.log('  answers by code');
for (const [code, n] of Object.entries(answers).sort((a, b) => b[1] - a[1])) {
  console.log(`    ${code.padEnd(22)}${pad(n, 8)}`);
}
if (errors) console.log(`    ${'(network errors)'.padEnd(22)}${pad(errors, 8)}`);
console.log(`  latency (all requests) p50 ${latency.p50} ms, p95 ${latency.p95} ms, p99 ${latency.p99} ms, max ${latency.max} ms`);
if (problems.length) {
  for (const problem of problems) console.log(`  FAIL ${problem}`);
  console.log('VERDICT: WRONG');
  process.exit(1);
}
if (inconclusive) {
  console.log(`  ${inconclusive}`);
  console.log('VERDICT: INCONCLUSIVE');
  process.exit(2);
}
console.log(`VERDICT: CORRECT (never oversold; every unit sold was answered${unknown ? ' or unknown' : ''})`);
