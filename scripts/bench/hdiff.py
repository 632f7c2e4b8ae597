#!/usr/bin/env python3
"""HDiffPatch for scripts/bench.sh, through the PyPI package `hdiffpatch`.

The package is a Python wrapper around the HDiffPatch C++ library. It installs no `hdiffz` /
`hpatchz` executables, only an in-memory API: `hdiffpatch.diff(old, new, compression)` builds a
compressed diff with the suffix-array matcher (what `hdiffz -m` does; there is no single-stream
`-SD` mode in the API), and `hdiffpatch.apply(old, diff)` returns the new data as one bytes
object. So both sides hold old and new (and the diff) in memory: the patch RSS measured here is
the wrapper's, not that of `hpatchz -SD`'s streaming patcher (~16-21 MB in HDiffPatch's README).

    hdiff.py diff  OLD NEW OUT      # zstd level 19 as the diff's compressor
    hdiff.py patch OLD DIFF OUT
"""
import sys

import hdiffpatch


def read(path):
    with open(path, "rb") as f:
        return f.read()


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def main(argv):
    if len(argv) != 5 or argv[1] not in ("diff", "patch"):
        sys.exit(__doc__)
    mode, old, other, out = argv[1:]
    if mode == "diff":
        # validate=False: no built-in round trip; bench.sh applies and compares separately.
        data = hdiffpatch.diff(read(old), read(other), hdiffpatch.ZStdConfig(level=19, threads=1),
                               validate=False)
    else:
        data = hdiffpatch.apply(read(old), read(other))
    write(out, data)


if __name__ == "__main__":
    main(sys.argv)
