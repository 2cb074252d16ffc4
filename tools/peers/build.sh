#!/usr/bin/env bash
# Builds the peer programs the end-to-end tests and the demo run: Jaeger v2
# (tools/peers/jaeger/go.mod), the OpenTelemetry Collector of collector-config/builder-config.yaml
# (with the builder pinned in tools/peers/builder/go.mod) and the Go test service
# (tests/peers/goservice).
#
# Cached per machine: the programs go to $CHAINOTEL_PEERS_CACHE/<hash of the pin files and the Go
# version>/bin (default ~/.cache/chainotel/peers), and .peers/bin of this checkout links there. A
# checkout whose pins match a finished build only makes the link, so a fresh clone (CI) on the same
# machine does not rebuild; a changed pin builds into a new folder. Go's own module and build caches
# stay where `go env` puts them (~/go/pkg/mod, ~/.cache/go-build), also shared by every clone.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
peers="${PEERS_DIR:-$root/.peers}"
cache_root="${CHAINOTEL_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chainotel/peers}"
pins=(tools/peers/build.sh tools/peers/jaeger/go.mod tools/peers/jaeger/go.sum
      tools/peers/builder/go.mod tools/peers/builder/go.sum collector-config/builder-config.yaml
      tests/peers/goservice/go.mod tests/peers/goservice/go.sum tests/peers/goservice/main.go)
programs=(jaeger otelcol-chainotel goservice)

command -v go >/dev/null || { echo "peers: no Go toolchain on PATH (install Go >= 1.26)" >&2; exit 1; }
hash="$(cd "$root" && { go version; sha256sum "${pins[@]}"; } | sha256sum | cut -c1-16)"
out="$cache_root/$hash"

built() { for p in "${programs[@]}"; do [[ -x "$out/bin/$p" ]] || return 1; done; }
link() { mkdir -p "$peers"; ln -sfn "$out/bin" "$peers/bin"; }

if built; then
  link
  echo "peers: up to date ($out/bin)"
  exit 0
fi

mkdir -p "$cache_root"
# One build at a time on this machine: the builds are CPU-heavy, and a second clone waiting here
# finds the finished programs afterwards instead of building them again.
exec 9>"$cache_root/.lock"
flock 9
if built; then
  link
  echo "peers: built meanwhile by another checkout ($out/bin)"
  exit 0
fi
work="$out.partial"
rm -rf "$work"
mkdir -p "$work/bin"
start=$(date +%s)
echo "peers: building Jaeger v2 (tools/peers/jaeger)"
(cd "$root/tools/peers/jaeger" && nice go build -trimpath -ldflags='-s -w' -o "$work/bin/jaeger" \
  github.com/jaegertracing/jaeger/cmd/jaeger)
echo "peers: building the Collector (collector-config/builder-config.yaml)"
(cd "$root/tools/peers/builder" && go build -trimpath -o "$work/ocb" go.opentelemetry.io/collector/cmd/builder)
# The manifest's output_path (./otelcol-chainotel) is relative to the working directory.
(cd "$work" && nice ./ocb --config "$root/collector-config/builder-config.yaml")
cp "$work/otelcol-chainotel/otelcol-chainotel" "$work/bin/otelcol-chainotel"
echo "peers: building the Go test service (tests/peers/goservice)"
(cd "$root/tests/peers/goservice" && nice go build -trimpath -o "$work/bin/goservice" .)
rm -rf "$out"
mv "$work" "$out"
link
echo "peers: built in $(( $(date +%s) - start )) s ($out/bin)"
