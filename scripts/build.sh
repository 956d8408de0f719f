#!/usr/bin/env bash
# Builds the release library and installs it at the repository root as
# libft_malloc_$HOSTTYPE.so plus the symlink libft_malloc.so -> libft_malloc_$HOSTTYPE.so, as the
# ft_malloc subject asks. HOSTTYPE comes from the environment (HOSTTYPE=Testing scripts/build.sh),
# else is "$(uname -m)_$(uname -s)". Prints the path of the symlink.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# bash sets HOSTTYPE itself (e.g. x86_64) without exporting it: only an exported value counts.
host="$(printenv HOSTTYPE || true)"
[[ -n "$host" ]] || host="$(uname -m)_$(uname -s)"

cargo build --release >&2

target_dir="${CARGO_TARGET_DIR:-$root/target}"
case "$(uname -s)" in
    Darwin) built="$target_dir/release/libft_malloc.dylib" ;;
    *) built="$target_dir/release/libft_malloc.so" ;;
esac
[[ -f "$built" ]] || { echo "build.sh: $built not found" >&2; exit 1; }

cp -f "$built" "$root/libft_malloc_$host.so"
ln -sfn "libft_malloc_$host.so" "$root/libft_malloc.so"
echo "$root/libft_malloc.so"
