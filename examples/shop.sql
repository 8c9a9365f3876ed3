-- The demo schema `shop`, loaded through myshard by scripts/demo.
CREATE TABLE customers (
  id INT PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  region CHAR(2) NOT NULL,
  created DATETIME NOT NULL
);
CREATE TABLE products (
  id INT PRIMARY KEY,
  title VARCHAR(100) NOT NULL,
  price DECIMAL(10,2) NOT NULL
);
CREATE TABLE orders (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  product_id INT NOT NULL,
  quantity INT NOT NULL,
  ordered_at DATETIME NOT NULL,
  KEY (customer_id)
);
INSERT INTO customers (id, name, region, created) VALUES
  (1, 'Ada Lovelace', 'EU', '2026-01-05 10:00:00'),
  (2, 'Grace Hopper', 'US', '2026-02-11 09:30:00'),
  (3, 'Katherine Johnson', 'US', '2026-03-02 14:15:00'),
  (4, 'Tu Youyou', 'AS', '2026-04-20 08:45:00');
INSERT INTO products (id, title, price) VALUES
  (1, 'Keyboard', 49.90), (2, 'Monitor', 219.00), (3, 'Cable', 4.50);
INSERT INTO orders (customer_id, product_id, quantity, ordered_at) VALUES
  (1, 1, 1, '2026-05-01 12:00:00'), (1, 3, 4, '2026-05-01 12:00:00'),
  (2, 2, 2, '2026-05-03 16:20:00'), (3, 3, 10, '2026-05-04 11:05:00'),
  (4, 1, 1, '2026-05-06 19:40:00');
