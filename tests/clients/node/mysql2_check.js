// Node's mysql2 (promise API) against myshard, as an application uses it: `execute` (server
// prepared statements, binary protocol) and `query` (text), CRUD by the sharding key, a
// transaction over several shards committed and one rolled back, and a cross-shard ORDER BY.
// Usage: node mysql2_check.js PORT. Prints "ok …" lines; exits non-zero on the first failure.
'use strict';
const mysql = require('mysql2/promise');

const port = Number(process.argv[2]);
const base = 7700000;

function check(cond, what, detail) {
  if (!cond) {
    throw new Error(`${what}: ${JSON.stringify(detail)}`);
  }
  console.log(`ok ${what}`);
}

async function main() {
  const c = await mysql.createConnection({
    host: '127.0.0.1', port, user: 'mall', password: 'mall', database: 'mall',
  });
  await c.query('DELETE FROM users WHERE id BETWEEN ? AND ?', [base, base + 99]);

  // Create: prepared INSERTs, one row per shard key, values with quotes and backslashes.
  for (let i = 1; i <= 8; i++) {
    await c.execute('INSERT INTO users (id, name, region) VALUES (?, ?, ?)',
      [base + i, `n'${i}\\x`, i % 2 ? 'EU' : 'US']);
  }
  const [one] = await c.execute('SELECT id, name, region FROM users WHERE id = ?', [base + 3]);
  check(one.length === 1 && one[0].name === "n'3\\x" && one[0].region === 'EU',
    'execute reads a row by its key as written', one);

  // Update and delete by key.
  const [upd] = await c.execute('UPDATE users SET name = ? WHERE id = ?', ['renamed', base + 4]);
  check(upd.affectedRows === 1, 'execute updates by key', upd);
  const [del] = await c.execute('DELETE FROM users WHERE id = ?', [base + 8]);
  check(del.affectedRows === 1, 'execute deletes by key', del);

  // Cross-shard ORDER BY … LIMIT, text protocol and prepared.
  const [desc] = await c.query(
    'SELECT id, name FROM users WHERE id BETWEEN ? AND ? ORDER BY id DESC LIMIT 5',
    [base, base + 99]);
  check(JSON.stringify(desc.map((r) => r.id)) ===
    JSON.stringify([7, 6, 5, 4, 3].map((i) => base + i)), 'cross-shard ORDER BY DESC LIMIT', desc);
  const [byName] = await c.execute(
    'SELECT name, COUNT(*) AS n FROM users WHERE id BETWEEN ? AND ? GROUP BY name ORDER BY name',
    [base, base + 99]);
  check(byName.length === 7 && byName[byName.length - 1].name === 'renamed' &&
    byName.every((r) => Number(r.n) === 1), 'cross-shard GROUP BY with ORDER BY', byName);

  // A transaction over several shards: committed, then one rolled back.
  await c.beginTransaction();
  await c.execute('INSERT INTO users (id, name, region) VALUES (?, ?, ?)', [base + 20, 'tx', 'AS']);
  await c.execute('INSERT INTO users (id, name, region) VALUES (?, ?, ?)', [base + 21, 'tx', 'AS']);
  await c.execute('UPDATE users SET region = ? WHERE id = ?', ['AS', base + 1]);
  await c.commit();
  await c.beginTransaction();
  await c.execute('INSERT INTO users (id, name, region) VALUES (?, ?, ?)', [base + 30, 'gone', 'AS']);
  await c.execute('DELETE FROM users WHERE id = ?', [base + 2]);
  await c.rollback();
  const [after] = await c.query(
    'SELECT id FROM users WHERE id BETWEEN ? AND ? AND region = ? ORDER BY id', [base, base + 99, 'AS']);
  check(JSON.stringify(after.map((r) => r.id)) === JSON.stringify([base + 1, base + 20, base + 21]),
    'a committed transaction over shards is there, a rolled-back one is not', after);
  const [kept] = await c.execute('SELECT COUNT(*) AS n FROM users WHERE id = ?', [base + 2]);
  check(Number(kept[0].n) === 1, 'the rolled-back DELETE left its row', kept);

  // Errors reach the driver with their code, and the connection stays usable.
  let code = null;
  try {
    await c.execute('INSERT INTO users (id, name, region) VALUES (?, ?, ?)', [base + 1, 'dup', 'EU']);
  } catch (e) {
    code = e.errno;
  }
  check(code === 1062, 'a duplicate key is ERR 1062', code);
  const [still] = await c.query('SELECT 1 AS one');
  check(still[0].one === 1, 'the connection is usable after an error', still);

  await c.query('DELETE FROM users WHERE id BETWEEN ? AND ?', [base, base + 99]);
  await c.end();
}

main().catch((e) => {
  console.error(`FAILED ${e.message}`);
  process.exit(1);
});
