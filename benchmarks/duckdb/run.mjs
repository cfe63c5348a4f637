// The DuckDB side of table_bench (benchmarks/table_bench.sh, benchmarks/README.md).
//
//   node run.mjs --trips PATH --dims PATH [--threads T] [--repeat R]
//
// One in-memory DuckDB with `SET threads = T`. Every operation is materialised with
// CREATE TABLE .. AS, so no work is skipped, and timed on the wall clock (performance.now())
// around that one statement. Its row count (and a sum, `check`, to hold dagr's result
// against) is read afterwards, untimed, and the result table is dropped again, so at any
// time only trips, dims and one result are held. With --repeat R > 1 each operation runs R
// times back to back and `seconds` is the best of them (`seconds_all` lists every run).
//
// Prints one JSON object per operation on stdout:
//   {"bench":"table","engine":"duckdb","op","threads","repeat","rows","check","seconds",
//    "seconds_all"}
// with op one of ingest_trips, ingest_dims, filter, groupby1, groupby2, join, sort (and,
// with --out DIR, write_csv: COPY trips TO one CSV file in DIR, removed after), then
//   {"bench":"table","engine":"duckdb","op":"peak_rss","threads","mb"}
// the peak resident set of this process (node and DuckDB together) in MiB.
import { DuckDBInstance } from '@duckdb/node-api';
import { performance } from 'node:perf_hooks';
import fs from 'node:fs';
import process from 'node:process';

function parseArgs(argv) {
  const opt = { trips: null, dims: null, threads: 2, repeat: 1, out: null };
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (v === undefined) usage(`${a} wants a value`);
    if (a === '--trips') opt.trips = v;
    else if (a === '--dims') opt.dims = v;
    else if (a === '--threads') opt.threads = Number.parseInt(v, 10);
    else if (a === '--repeat') opt.repeat = Number.parseInt(v, 10);
    else if (a === '--out') opt.out = v;
    else usage(`unknown option ${a}`);
    i++;
  }
  if (!opt.trips || !opt.dims) usage('--trips and --dims are required');
  if (!(opt.threads >= 1) || !(opt.repeat >= 1)) usage('--threads and --repeat must be >= 1');
  return opt;
}

function usage(msg) {
  console.error(`run.mjs: ${msg}`);
  console.error('usage: node run.mjs --trips PATH --dims PATH [--threads T] [--repeat R] ' +
    '[--out DIR]');
  process.exit(2);
}

// A string literal for SQL.
const lit = (s) => `'${String(s).replaceAll("'", "''")}'`;

function readCsv(path, columns) {
  const cols = Object.entries(columns)
    .map(([name, type]) => `${lit(name)}: ${lit(type)}`)
    .join(', ');
  return `read_csv(${lit(path)}, header = true, delim = ',', quote = '"', escape = '"', ` +
    `columns = {${cols}})`;
}

const opt = parseArgs(process.argv);

const tripsCols = {
  id: 'BIGINT', key: 'BIGINT', cat: 'VARCHAR', fare: 'DOUBLE', tip: 'DOUBLE',
  distance: 'DOUBLE', ts: 'TIMESTAMP',
};
const dimsCols = { key: 'BIGINT', name: 'VARCHAR', weight: 'DOUBLE' };
const aggs = 'sum(fare) AS sum_fare, avg(tip) AS avg_tip, count(*) AS n';

// [op, table it makes, its SELECT, the untimed check over the result]
const ops = [
  ['ingest_trips', 'trips', `SELECT * FROM ${readCsv(opt.trips, tripsCols)}`, 'sum(fare)'],
  ['ingest_dims', 'dims', `SELECT * FROM ${readCsv(opt.dims, dimsCols)}`, 'sum(weight)'],
  ['filter', 'r', 'SELECT * FROM trips WHERE fare > 10 AND (tip IS NULL OR tip < 5)',
    'sum(fare)'],
  ['groupby1', 'r', `SELECT key, ${aggs} FROM trips GROUP BY key`, 'sum(sum_fare)'],
  ['groupby2', 'r', `SELECT key, cat, ${aggs} FROM trips GROUP BY key, cat`, 'sum(sum_fare)'],
  ['join', 'r', 'SELECT * FROM trips JOIN dims USING (key)', 'sum(weight)'],
  ['sort', 'r', 'SELECT * FROM trips ORDER BY fare', 'sum(fare)'],
];

const db = await DuckDBInstance.create(':memory:');
const conn = await db.connect();
await conn.run(`SET threads = ${opt.threads}`);
const scalar = async (sql) => (await conn.runAndReadAll(sql)).getRows()[0][0];
const version = await scalar('SELECT version()');

for (const [op, table, select, check] of ops) {
  const times = [];
  let rows = 0;
  let sum = null;
  for (let k = 0; k < opt.repeat; k++) {
    await conn.run(`DROP TABLE IF EXISTS ${table}`);
    const t0 = performance.now();
    await conn.run(`CREATE TABLE ${table} AS ${select}`);
    times.push(+((performance.now() - t0) / 1e3).toFixed(6));
    rows = Number(await scalar(`SELECT count(*) FROM ${table}`));
    sum = Number(await scalar(`SELECT ${check} FROM ${table}`));
  }
  if (table === 'r') await conn.run('DROP TABLE r');
  console.log(JSON.stringify({
    bench: 'table', engine: 'duckdb', version, op, threads: opt.threads, repeat: opt.repeat,
    rows, check: sum, seconds: Math.min(...times), seconds_all: times,
  }));
}

// write_csv: COPY of trips into one CSV file in --out, as dagr's write_csv; removed after.
if (opt.out) {
  const path = `${opt.out}/duckdb_trips.csv`;
  const times = [];
  for (let k = 0; k < opt.repeat; k++) {
    const t0 = performance.now();
    await conn.run(`COPY trips TO ${lit(path)} (HEADER, DELIMITER ',')`);
    times.push(+((performance.now() - t0) / 1e3).toFixed(6));
    fs.rmSync(path, { force: true });
  }
  const rows = Number(await scalar('SELECT count(*) FROM trips'));
  console.log(JSON.stringify({
    bench: 'table', engine: 'duckdb', version, op: 'write_csv', threads: opt.threads,
    repeat: opt.repeat, rows, seconds: Math.min(...times), seconds_all: times,
  }));
}

conn.closeSync();
db.closeSync();
// maxRSS is in KiB.
console.log(JSON.stringify({
  bench: 'table', engine: 'duckdb', version, op: 'peak_rss', threads: opt.threads,
  mb: Math.round(process.resourceUsage().maxRSS / 1024),
}));
