# Makes sure the services the integration tests talk to are running on this machine:
# Mosquitto on 127.0.0.1:1883 and PostgreSQL on 127.0.0.1:5432 with a database `test`.
# On a fresh Debian machine it installs them from Debian's packages and starts them.

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

ensure_services() {
  if ! port_open 1883; then
    apt_install mosquitto
    as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
  fi
  if ! port_open 5432; then
    apt_install postgresql
    local version
    version="$(ls /etc/postgresql | sort -V | tail -n1)"
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  fi
  if port_open 5432 && command -v psql >/dev/null 2>&1; then
    if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
      as_root su postgres -c "psql -c \"CREATE DATABASE test\"" >/dev/null 2>&1 || true
    fi
  fi
}
