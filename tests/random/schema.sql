-- The random differential tester's schema (tests/random/fuzz.py): one plain MariaDB holds all
-- rows; through myshard the tables are spread over four shards. "-- shard:" names each
-- table's sharding column (one hash rule for all: cust and ord are co-located on the
-- customer) or "broadcast". item is sharded by its own id, over two tables per shard, so joins
-- to it are off the key.
-- Text columns use several collations: utf8mb4_general_ci (cust.name, region.title), latin1
-- (cust.region), utf8mb4_bin (ord.sku), utf8mb4_unicode_ci (ord.note) and the NO PAD
-- utf8mb4_general_nopad_ci (item.label), so merged sorts, groups and DISTINCT must follow
-- each column's own collation.

-- shard: id
CREATE TABLE cust (
  id INT PRIMARY KEY,
  name VARCHAR(20) NOT NULL,
  region CHAR(2) CHARACTER SET latin1 COLLATE latin1_swedish_ci NULL,
  score INT NULL,
  bal DECIMAL(8,2) NULL,
  tag VARBINARY(6) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

-- shard: cust_id
CREATE TABLE ord (
  id INT PRIMARY KEY,
  cust_id INT NOT NULL,
  amount INT NULL,
  sku VARCHAR(12) COLLATE utf8mb4_bin NULL,
  note VARCHAR(20) COLLATE utf8mb4_unicode_ci NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

-- shard: id split 2
CREATE TABLE item (
  id INT PRIMARY KEY,
  ord_id INT NULL,
  qty INT NULL,
  label VARCHAR(12) COLLATE utf8mb4_general_nopad_ci NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;

-- shard: broadcast
CREATE TABLE region (
  code CHAR(2) PRIMARY KEY,
  title VARCHAR(20) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;
