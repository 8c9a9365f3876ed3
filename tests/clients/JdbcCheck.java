// Client-compatibility check with MariaDB Connector/J against a running myshard.
// Usage: java -cp mariadb-java-client.jar:. JdbcCheck PORT
import java.sql.*;

public class JdbcCheck {
    static String url(int port, String db, String extra) {
        return "jdbc:mariadb://127.0.0.1:" + port + "/" + db + "?" + extra;
    }

    static void ok(String name) {
        System.out.println("ok " + name);
    }

    static void expectError(int code, String url, String user, String pass) throws Exception {
        try (Connection c = DriverManager.getConnection(url, user, pass)) {
            throw new AssertionError("expected error " + code);
        } catch (SQLException e) {
            if (e.getErrorCode() != code) {
                throw new AssertionError("expected " + code + ", got " + e.getErrorCode() + " " + e.getMessage());
            }
        }
    }

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        try (Connection c = DriverManager.getConnection(url(port, "shop", ""), "nat", "nat");
             Statement s = c.createStatement()) {
            ResultSet rs = s.executeQuery("SELECT id, name, amount FROM items ORDER BY id");
            rs.next();
            if (rs.getInt(1) != 1) throw new AssertionError("first id");
            rs.next();
            rs.getString(2);
            if (!rs.wasNull()) throw new AssertionError("NULL name expected");
            ok("native password, query with NULL");
            try {
                s.executeUpdate("INSERT INTO items (id, name) VALUES (1, 'dup')");
                throw new AssertionError("duplicate accepted");
            } catch (SQLException e) {
                if (e.getErrorCode() != 1062 || !"23000".equals(e.getSQLState()))
                    throw new AssertionError("got " + e.getErrorCode() + " " + e.getSQLState());
            }
            ok("backend error code and SQLSTATE");
            c.setAutoCommit(false);
            s.executeUpdate("INSERT INTO items (id, name) VALUES (900, 'tx')");
            c.rollback();
            c.setAutoCommit(true);
            rs = s.executeQuery("SELECT COUNT(*) FROM items WHERE id = 900");
            rs.next();
            if (rs.getInt(1) != 0) throw new AssertionError("rollback lost");
            ok("transaction rollback");
        }
        try (Connection c = DriverManager.getConnection(url(port, "shop", "allowPublicKeyRetrieval=true"), "jdbc", "jdbc");
             Statement s = c.createStatement()) {
            ResultSet rs = s.executeQuery("SELECT DATABASE()");
            rs.next();
            if (!"shop".equals(rs.getString(1))) throw new AssertionError("database");
            ok("caching_sha2 with public key retrieval");
        }
        try (Connection c = DriverManager.getConnection(url(port, "shop", "useSsl=true&trustServerCertificate=true"), "jdbc", "jdbc");
             Statement s = c.createStatement()) {
            ResultSet rs = s.executeQuery("SELECT 1");
            rs.next();
            ok("TLS");
        }
        // Server-side prepared statements (binary protocol) over a table sharded across four
        // shards answer as the text protocol does.
        String[][] cases = {
            {"SELECT * FROM ps_types WHERE id = ?", "3"},
            {"SELECT * FROM ps_types WHERE id = ?", "7"},
            {"SELECT id, n, price, day, at, f, label FROM ps_types WHERE id BETWEEN ? AND 30 ORDER BY id", "4"},
            {"SELECT grp, COUNT(*), SUM(price), AVG(price), MIN(day), MAX(at) FROM ps_types WHERE id > ? GROUP BY grp ORDER BY grp", "0"},
            {"SELECT id, price FROM ps_types WHERE price > ? ORDER BY price DESC LIMIT 5", "10"},
            {"SELECT id, LENGTH(data), data FROM ps_types WHERE id = ?", "40"},
        };
        try (Connection c = DriverManager.getConnection(url(port, "sbshard", "allowPublicKeyRetrieval=true&useServerPrepStmts=true"), "app", "app");
             Statement s = c.createStatement()) {
            for (String[] tc : cases) {
                ResultSet text = s.executeQuery(tc[0].replace("?", tc[1]));
                PreparedStatement ps = c.prepareStatement(tc[0]);
                ps.setLong(1, Long.parseLong(tc[1]));
                ResultSet bin = ps.executeQuery();
                int cols = text.getMetaData().getColumnCount();
                if (cols != bin.getMetaData().getColumnCount()) throw new AssertionError(tc[0] + ": column count");
                int rows = 0;
                while (text.next()) {
                    if (!bin.next()) throw new AssertionError(tc[0] + ": fewer rows prepared");
                    rows++;
                    for (int i = 1; i <= cols; i++) {
                        if (!text.getMetaData().getColumnLabel(i).equals(bin.getMetaData().getColumnLabel(i)))
                            throw new AssertionError(tc[0] + ": label " + i);
                        Object a = text.getObject(i), b = bin.getObject(i);
                        boolean same = (a == null) ? b == null
                            : (a instanceof byte[]) ? java.util.Arrays.equals((byte[]) a, (byte[]) b)
                            : (a instanceof Number && b instanceof Number && !(a instanceof java.math.BigDecimal))
                                ? ((Number) a).doubleValue() == ((Number) b).doubleValue()
                            : a.equals(b);
                        if (!same) throw new AssertionError(tc[0] + " row " + rows + " column " + i + ": text " + a + " prepared " + b);
                    }
                }
                if (bin.next()) throw new AssertionError(tc[0] + ": more rows prepared");
                if (rows == 0) throw new AssertionError(tc[0] + ": no rows");
                ps.close();
            }
            ok("server prepared statements answer as text");
        }
        // As Spring/Hibernate use it: server-side prepared statements, batched inserts
        // rewritten by the driver, autocommit off, commit and rollback, over a sharded table.
        long base = 7740000;
        try (Connection c = DriverManager.getConnection(
                url(port, "mall", "useServerPrepStmts=true&rewriteBatchedStatements=true"), "mall", "mall")) {
            try (Statement s = c.createStatement()) {
                s.executeUpdate("DELETE FROM users WHERE id BETWEEN " + base + " AND " + (base + 99));
            }
            c.setAutoCommit(false);
            try (PreparedStatement ins = c.prepareStatement("INSERT INTO users (id, name, region) VALUES (?, ?, ?)")) {
                for (int i = 1; i <= 20; i++) {
                    ins.setLong(1, base + i);
                    ins.setString(2, "j'" + i + "\\");
                    ins.setString(3, i % 2 == 0 ? "EU" : "US");
                    ins.addBatch();
                }
                int[] counts = ins.executeBatch();
                int total = 0;
                for (int n : counts) total += n == Statement.SUCCESS_NO_INFO ? 1 : n;
                if (total != 20) throw new AssertionError("batch counts " + java.util.Arrays.toString(counts));
            }
            c.commit();
            try (PreparedStatement q = c.prepareStatement(
                    "SELECT id, name FROM users WHERE id BETWEEN ? AND ? ORDER BY id DESC LIMIT 3")) {
                q.setLong(1, base);
                q.setLong(2, base + 99);
                ResultSet rs = q.executeQuery();
                long[] want = {base + 20, base + 19, base + 18};
                for (long w : want) {
                    if (!rs.next() || rs.getLong(1) != w) throw new AssertionError("order by desc");
                }
                if (rs.next()) throw new AssertionError("limit");
                c.commit();
            }
            ok("batched inserts with server prepared statements under autocommit off, then a cross-shard ORDER BY");
            try (PreparedStatement upd = c.prepareStatement("UPDATE users SET region = ? WHERE id = ?")) {
                upd.setString(1, "AS");
                upd.setLong(2, base + 1);
                upd.executeUpdate();
                c.commit();
                upd.setString(1, "AS");
                upd.setLong(2, base + 2);
                upd.executeUpdate();
                c.rollback();
            }
            try (PreparedStatement q = c.prepareStatement(
                    "SELECT id FROM users WHERE id BETWEEN ? AND ? AND region = 'AS'")) {
                q.setLong(1, base);
                q.setLong(2, base + 99);
                ResultSet rs = q.executeQuery();
                if (!rs.next() || rs.getLong(1) != base + 1 || rs.next()) throw new AssertionError("commit/rollback");
                c.commit();
            }
            ok("commit and rollback with autocommit off");
            c.setAutoCommit(true);
            try (Statement s = c.createStatement()) {
                s.executeUpdate("DELETE FROM users WHERE id BETWEEN " + base + " AND " + (base + 99));
            }
        }
        expectError(1045, url(port, "shop", ""), "nat", "bad");
        ok("wrong password is 1045");
        expectError(1049, url(port, "no_such_db", ""), "nat", "nat");
        ok("unknown schema is 1049");
    }
}
