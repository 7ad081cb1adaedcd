#!/bin/sh
# Installs the Debian packages vlens needs when any is missing: with apt-get
# when run as root, otherwise prints the exact command and fails.
# Usage: scripts/deps.sh [build|test|bench]
set -e
what=${1:-build}
pkgs="gcc make pkg-config libstb-dev libcjson-dev libmicrohttpd-dev libgif-dev libwebp-dev zlib1g-dev
libpcre2-dev libutf8proc-dev libopenblas-dev fonts-dejavu-core"
case "$what" in
  test) pkgs="$pkgs clang libclang-rt-14-dev python3 python3-numpy" ;;
  bench) pkgs="$pkgs python3 python3-numpy python3-torch python3-pil" ;;
  tools) pkgs="$pkgs python3 python3-numpy python3-torch python3-pil" ;;
esac
missing=""
for p in $pkgs; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" = 0 ]; then
  echo "vlens: installing missing Debian packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || true
  $cmd >&2
else
  echo "vlens: missing Debian packages:$missing" >&2
  echo "vlens: run as root:  sudo $cmd" >&2
  exit 1
fi
