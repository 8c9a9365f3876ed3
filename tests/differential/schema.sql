-- The differential suite's schema: one plain MariaDB holds all rows; through myshard the
-- same tables are spread over four shards. "-- shard:" names each table's sharding column
-- (one hash rule for all, so customers and their orders are co-located) or "broadcast".

-- shard: id
CREATE TABLE customers (
  id BIGINT PRIMARY KEY,
  name VARCHAR(40) NOT NULL,
  region CHAR(2) NULL,
  tier INT NULL,
  credit DECIMAL(12,2) NULL,
  joined DATE NULL,
  score DOUBLE NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

-- shard: customer_id
CREATE TABLE orders (
  id BIGINT PRIMARY KEY,
  customer_id BIGINT NOT NULL,
  product_id INT NOT NULL,
  qty INT NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  status VARCHAR(12) NULL,
  ordered_at DATETIME NULL,
  note VARCHAR(30) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

-- shard: broadcast
CREATE TABLE products (
  id INT PRIMARY KEY,
  title VARCHAR(40) NOT NULL,
  category VARCHAR(20) NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  weight FLOAT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

-- shard: id
CREATE TABLE events (
  id BIGINT PRIMARY KEY,
  kind VARCHAR(10) NOT NULL,
  amount BIGINT NOT NULL,
  happened DATETIME(3) NULL,
  flag TINYINT NULL,
  payload VARCHAR(50) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

-- shard: id
CREATE TABLE tags (
  id INT PRIMARY KEY,
  label VARCHAR(20) NOT NULL,
  weight INT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
