# The libfuse3 low-level binding (cairn_fuse.node). Built by `npm run build:native` (npm's own
# node-gyp, against the Node headers on the machine) from scripts/setup.sh; needs libfuse3-dev, and
# for native host-cache reads the BLAKE3 C sources of librust-blake3-dev (blake3.sh finds them), and
# for native fetches libcurl4-openssl-dev (without it the addon builds with CAIRN_NO_CURL).
{
  "targets": [
    {
      "target_name": "cairn_fuse",
      "sources": ["cairn_fuse.c", "ll_ops.c", "ll_post.c", "ll_reply.c", "ll_mount.c", "ll_notify.c", "napi_util.c", "nattr.c", "nread.c", "nchunks.c", "nread_api.c", "ncache.c", "ntree.c", "nopen.c", "nfetch.c", "<!@(sh blake3.sh sources)"],
      "include_dirs": ["<!@(sh blake3.sh dir)"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "<!@(pkg-config --cflags fuse3)"],
      "libraries": ["<!@(pkg-config --libs fuse3)", "-lm", "<!@(pkg-config --libs libcurl 2>/dev/null || true)"],
      "defines": ["NAPI_VERSION=8", "<!@(sh blake3.sh defines)", "<!@(pkg-config --exists libcurl || echo CAIRN_NO_CURL)"]
    }
  ]
}
