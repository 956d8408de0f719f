#!/usr/bin/env bash
# Usage: scripts/run.sh CMD [ARGS...]
# Runs CMD with libft_malloc preloaded (built first via build.sh when missing). Works from any
# directory; the command replaces this script, so its exit status passes through.
set -euo pipefail
if (($# == 0)); then
    echo "usage: $0 CMD [ARGS...]" >&2
    exit 2
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lib="$root/libft_malloc.so"
if [[ ! -e "$lib" ]]; then
    lib="$("$root/scripts/build.sh")"
fi

if [[ "$(uname -s)" == Darwin ]]; then
    export DYLD_LIBRARY_PATH="$root${DYLD_LIBRARY_PATH:+:$DYLD_LIBRARY_PATH}"
    export DYLD_INSERT_LIBRARIES="$lib"
    export DYLD_FORCE_FLAT_NAMESPACE=1
else
    # LD_PRELOAD splits on spaces and colons: for such a path, preload the bare name and let
    # the loader find it through LD_LIBRARY_PATH.
    case "$lib" in
        *[[:space:]:]*)
            export LD_LIBRARY_PATH="$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            preload="$(basename "$lib")"
            ;;
        *) preload="$lib" ;;
    esac
    export LD_PRELOAD="$preload${LD_PRELOAD:+ $LD_PRELOAD}"
fi
exec "$@"
