# Installs what myshard's demo and tests need when it is missing (Debian/Ubuntu).
# Sourced by scripts/demo and scripts/test.

myshard_apt_install() {
  local pkgs=("$@")
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "installing: ${pkgs[*]}" >&2
  if [ -z "${MYSHARD_APT_UPDATED:-}" ]; then
    $sudo apt-get update -qq
    MYSHARD_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
}

myshard_need() {
  # myshard_need COMMAND PACKAGE...
  local cmd="$1"; shift
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    myshard_apt_install "$@"
  fi
}

myshard_prereqs_demo() {
  myshard_need mariadbd mariadb-server
  myshard_need mariadb mariadb-client
  myshard_need openssl openssl
  myshard_need script bsdutils
  if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      myshard_apt_install cargo rustc
    fi
  fi
}

myshard_prereqs_test() {
  myshard_prereqs_demo
  myshard_need sysbench sysbench
  myshard_need haproxy haproxy
  myshard_need javac default-jdk-headless
  myshard_need python3 python3 python3-pip
  [ -f /usr/share/java/mariadb-java-client.jar ] || myshard_apt_install libmariadb-java
  myshard_need go golang-go
  [ -d /usr/share/gocode/src/github.com/go-sql-driver/mysql ] \
    || myshard_apt_install golang-github-go-sql-driver-mysql-dev
  myshard_need node nodejs
  myshard_need npm npm
  # Node's mysql2 for the driver tests, at the version package-lock.json pins.
  local node_clients
  node_clients="$(dirname "${BASH_SOURCE[0]}")/../tests/clients/node"
  [ -d "$node_clients/node_modules/mysql2" ] \
    || npm ci --no-audit --no-fund --silent --prefix "$node_clients" \
    || echo "warning: npm ci in tests/clients/node failed; the Node driver test will retry it" >&2
  if ! python3 -c 'import pymysql, cryptography, prometheus_client, sqlalchemy' 2>/dev/null; then
    python3 -m pip install -q pymysql cryptography prometheus-client sqlalchemy 2>/dev/null \
      || python3 -m pip install -q --break-system-packages pymysql cryptography prometheus-client sqlalchemy 2>/dev/null \
      || myshard_apt_install python3-pymysql python3-cryptography python3-prometheus-client python3-sqlalchemy
  fi
}
