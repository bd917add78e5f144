# Sourced by the entrypoints of every image (app, Asterisk, PostgreSQL, Redis).
# The containers share two named volumes: /data (the app's data directory: config, its own
# secrets.toml, Asterisk's rendered config, recordings, prompt audio) and /secrets (the
# PostgreSQL and Redis passwords). Nothing secret is baked into an image or printed.

IVR_UID=10001  # the user every service runs as (PostgreSQL and Redis: their own users)
IVR_GID=10001  # also the group that may read /secrets

# ensure_secret NAME: /secrets/NAME, 48 random hex digits, generated once. Several containers
# may start at once: each writes a temporary file and hard-links it into place; a link
# never replaces an existing file, so the first one wins and the others read it.
ensure_secret() {
  _f="/secrets/$1"
  if [ ! -s "$_f" ]; then
    _old_umask="$(umask)"
    umask 077
    _tmp="$(mktemp /secrets/.new.XXXXXX)"
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$_tmp"
    ln "$_tmp" "$_f" 2>/dev/null || true
    rm -f "$_tmp"
    umask "$_old_umask"
  fi
  chown "0:$IVR_GID" /secrets "$_f"
  chmod 0750 /secrets
  chmod 0640 "$_f"
}

# as_user USER COMMAND...: exec COMMAND as USER (root only starts the services).
as_user() {
  _user="$1"
  shift
  exec setpriv --reuid="$_user" --regid="$(id -g "$_user")" --init-groups -- "$@"
}
