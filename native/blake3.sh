#!/bin/sh
# What binding.gyp needs of the official BLAKE3 C implementation that Debian's librust-blake3-dev
# ships (/usr/share/cargo/registry/blake3-<version>/c; scripts/setup.sh installs it; nothing is
# copied into the repository): `dir` (include directory), `sources` (the portable code, the runtime
# dispatch and, on x86-64, the SSE2/SSE4.1/AVX2/AVX-512 assembly for Unix, which needs no per-file
# -m flags), `defines`. gyp's make rules want sources under the project, so `sources` links them
# into build/blake3 (created by each configure; build/ is git-ignored) and prints those paths.
# Without the package the addon still builds, with CAIRN_NO_BLAKE3: native reads then never read
# the host cache (native/ncache.c).
d=$(ls -d /usr/share/cargo/registry/blake3-*/c 2>/dev/null | sort -V | tail -n 1)
[ -n "$d" ] && [ -f "$d/blake3.c" ] || d=""
arch=$(uname -m)
case "$1" in
  dir) [ -z "$d" ] || echo "$d" ;;
  sources)
    [ -n "$d" ] || exit 0
    files="blake3.c blake3_dispatch.c blake3_portable.c"
    case "$arch" in
      x86_64) files="$files blake3_sse2_x86-64_unix.S blake3_sse41_x86-64_unix.S blake3_avx2_x86-64_unix.S blake3_avx512_x86-64_unix.S" ;;
      aarch64) files="$files blake3_neon.c" ;;
    esac
    mkdir -p build/blake3
    for f in $files; do ln -sf "$d/$f" "build/blake3/$f" && echo "build/blake3/$f"; done
    ;;
  defines)
    if [ -z "$d" ]; then echo CAIRN_NO_BLAKE3; exit 0; fi
    case "$arch" in
      x86_64|aarch64) ;;
      *) echo BLAKE3_NO_SSE2 BLAKE3_NO_SSE41 BLAKE3_NO_AVX2 BLAKE3_NO_AVX512 BLAKE3_USE_NEON=0 ;;
    esac
    ;;
esac
exit 0
