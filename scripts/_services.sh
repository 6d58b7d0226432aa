# Makes sure the services the integration tests talk to are running on this machine:
# Mosquitto on 127.0.0.1:1883 and PostgreSQL on 127.0.0.1:5432 (user postgres, no password,
# a database `test`). On a fresh Debian machine it installs them from Debian's packages,
# starts them, and lets local TCP connections in without a password (a test machine only).

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

wait_port() {
  for _ in $(seq 1 30); do
    port_open "$1" && return 0
    sleep 1
  done
  return 1
}

ensure_services() {
  if ! port_open 1883; then
    apt_install mosquitto
    as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
    wait_port 1883 || echo "warning: Mosquitto did not start on 127.0.0.1:1883"
  fi
  if ! port_open 5432; then
    apt_install postgresql
    local version hba
    version="$(ls /etc/postgresql | sort -V | tail -n1)"
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      # Tests connect as postgres over TCP without a password: trust loopback only.
      as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_port 5432 || echo "warning: PostgreSQL did not start on 127.0.0.1:5432"
  fi
  if port_open 5432 && command -v psql >/dev/null 2>&1; then
    if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
      as_root su postgres -c "psql -c \"CREATE DATABASE test\"" >/dev/null 2>&1 || true
    fi
  fi
}
