#!/bin/sh
# Redis in docker-compose, before the image's own entrypoint: the local stack's users
# (stack/secrets.py `redis_acl`) written to an owner-only ACL file from the passwords in its
# environment, each kept as its SHA-256 as Redis does, then the variables dropped, so no
# password is on redis-server's command line nor in its environment. The ACL file is under
# /data, which the image's entrypoint hands to the redis user before it starts the server.
set -eu
umask 077
acl=/data/users.acl
entrypoint=docker-entrypoint.sh
: "${REDIS_GUARD_PASSWORD:?}" "${REDIS_ADMIN_PASSWORD:?}"

sha256() {
  printf %s "$1" | sha256sum | cut -d" " -f1  # printf is the shell's own: no process shows the password
}

mkdir -p "$(dirname "$acl")"
cat > "$acl" <<EOF
user default off
user orderpipe-guard on #$(sha256 "$REDIS_GUARD_PASSWORD") resetkeys ~order_trigger_lock:* ~dead_letter_claim:* resetchannels -@all +auth +hello +ping +select +get +set +evalsha +eval +script|load
user orderpipe-admin on #$(sha256 "$REDIS_ADMIN_PASSWORD") ~* &* +@all
EOF

unset REDIS_GUARD_PASSWORD REDIS_ADMIN_PASSWORD
exec "$entrypoint" redis-server --appendonly yes --aclfile "$acl" "$@"
