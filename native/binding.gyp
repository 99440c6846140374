# The libfuse3 low-level binding (cairn_fuse.node). Built by `npm run build:native` (npm's own
# node-gyp, against the Node headers on the machine) from scripts/setup.sh; needs libfuse3-dev.
{
  "targets": [
    {
      "target_name": "cairn_fuse",
      "sources": ["cairn_fuse.c", "nread.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "<!@(pkg-config --cflags fuse3)"],
      "libraries": ["<!@(pkg-config --libs fuse3)", "-lm"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
