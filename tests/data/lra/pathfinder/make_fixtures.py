#!/usr/bin/env python3
"""Writes the Pathfinder test fixtures (tests/test_pathfinder.c). Run once from
this directory; the project never runs it. Only the standard library: zlib
level 0 gives stored deflate blocks, Z_FIXED fixed-Huffman blocks, level 9
dynamic-Huffman blocks (a real encoder). palette_gnuplot.png comes from gnuplot."""
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xffffffff)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def filtered(pix, w, h, filt):
    """Rows with filter byte filt(y) (0 none, 1 sub, 2 up, 3 average, 4 Paeth)."""
    out = bytearray()
    for y in range(h):
        f = filt(y)
        out.append(f)
        for x in range(w):
            a = pix[y * w + x - 1] if x else 0
            b = pix[(y - 1) * w + x] if y else 0
            c = pix[(y - 1) * w + x - 1] if x and y else 0
            pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][f]
            out.append((pix[y * w + x] - pred) & 255)
    return bytes(out)


def deflate(raw, mode):
    if mode == "stored":
        return zlib.compress(raw, 0)
    if mode == "fixed":
        co = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_FIXED)
    else:
        co = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY)
    return co.compress(raw) + co.flush()


def block_type(z):
    return (z[2] >> 1) & 3


def png(w, h, idat, colour=0, depth=8, interlace=0, split=None):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace)
    parts = [idat] if split is None else [idat[:split], idat[split:]]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", b"Comment\x00attnbench fixture")
            + b"".join(chunk(b"IDAT", p) for p in parts) + chunk(b"IEND", b""))


def pattern(w, h):
    """The pixels the C test recomputes: ((x/4 + y/3) mod 3) * 90 + x mod 3 (skewed
    enough for zlib to choose dynamic Huffman codes)."""
    return bytes(((x // 4 + y // 3) % 3) * 90 + x % 3 for y in range(h) for x in range(w))


def skewed(w):
    """(x, y) -> 15 * ctz(h | 2^16) + (h >> 20) % 8, h = ((x * 2654435761) ^ (y * 40503)) * 2246822519 mod 2^32."""
    out = bytearray()
    for y in range(w):
        for x in range(w):
            h = (((x * 2654435761) ^ (y * 40503)) * 2246822519) & 0xFFFFFFFF
            v = h | (1 << 16)
            ctz = (v & -v).bit_length() - 1
            out.append(15 * ctz + ((h >> 20) & 7))
    return bytes(out)


def write(path, data):
    full = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "wb") as f:
        f.write(data)


def main():
    w, h = 37, 29  # odd width: filters see unaligned rows
    raw = filtered(pattern(w, h), w, h, lambda y: y % 5)
    for mode, want in (("stored", 0), ("fixed", 1), ("dynamic", 2)):
        z = deflate(raw, mode)
        assert block_type(z) == want, (mode, block_type(z))
        # the dynamic file splits its data over two IDAT chunks
        write(f"png/gray_{mode}.png", png(w, h, z, split=len(z) // 2 if mode == "dynamic" else None))
    # a bigger dynamic-Huffman image with long back-references (all-Paeth rows)
    W = 64
    big = bytes(((x // 8 + y // 8) % 2) * 200 + (x % 7) for y in range(W) for x in range(W))
    z = deflate(filtered(big, W, W, lambda y: 4), "dynamic")
    assert block_type(z) == 2
    write("png/checker_dynamic.png", png(W, W, z))
    # skewed intensities: rare values get Huffman codes longer than the decoder's 9-bit table
    write("png/skewed_dynamic.png", png(96, 96, deflate(filtered(skewed(96), 96, 96, lambda y: 0), "dynamic")))

    good = bytearray(open(os.path.join(HERE, "png/gray_fixed.png"), "rb").read())
    bad = bytearray(good)
    bad[-20] ^= 0x40  # a byte inside the IDAT data: its CRC no longer matches
    write("png/bad_crc.png", bytes(bad))
    z = deflate(raw, "fixed")
    write("png/truncated_idat.png", png(w, h, z[: len(z) // 2]))  # valid chunks, short stream
    write("png/truncated_file.png", bytes(good[: len(good) - 30]))
    write("png/depth16.png", png(w, h, deflate(raw, "stored"), depth=16))
    rgb = b"".join(b"\x00" + bytes(3 * w) for _ in range(h))  # a valid RGB image, filter 0 rows
    write("png/rgb.png", png(w, h, deflate(rgb, "dynamic"), colour=2))
    write("png/interlaced.png", png(w, h, deflate(raw, "stored"), interlace=1))
    bad_filter = bytearray(raw)
    bad_filter[(w + 1) * 3] = 7
    write("png/bad_filter.png", png(w, h, deflate(bytes(bad_filter), "stored")))
    write("png/empty.png", b"")
    os.system(f"cd {HERE}/png && gnuplot -e \"set terminal png size 32,32; set output 'palette_gnuplot.png'; plot x\"")

    # official layout: pathfinder32/curv_contour_length_14, metadata 2.npy and 10.npy
    # (numeric order differs from lexical), 3 images each; imgs/2/sample_2.png is
    # empty like the release's pathfinder32/curv_baseline/imgs/0/sample_172.png.
    root = "official/pathfinder32/curv_contour_length_14"
    for k in (2, 10):
        lines = []
        for i in range(3):
            ident = 10 * k + i
            label = (k + i) % 2
            img = bytes([ident, label] + [(x * 3 + y * 5 + ident) % 256 for y in range(32) for x in range(32)][2:])
            data = b"" if (k, i) == (2, 2) else png(32, 32, deflate(filtered(img, 32, 32, lambda y: y % 5), "dynamic"))
            write(f"{root}/imgs/{k}/sample_{i}.png", data)
            lines.append(f"imgs/{k} sample_{i}.png {ident} {label} 14 0.5\n")
        write(f"{root}/metadata/{k}.npy", "".join(lines).encode())
    # a wrong-size image and a metadata line with a bad label
    one = png(16, 16, deflate(filtered(bytes(256), 16, 16, lambda y: 0), "stored"))
    write("bad_size/pathfinder32/curv_contour_length_14/imgs/0/sample_0.png", one)
    write("bad_size/pathfinder32/curv_contour_length_14/metadata/0.npy", b"imgs/0 sample_0.png 0 1 14 0.5\n" * 3)
    write("bad_label/pathfinder32/curv_contour_length_14/imgs/0/sample_0.png", one)
    write("bad_label/pathfinder32/curv_contour_length_14/metadata/0.npy", b"imgs/0 sample_0.png 0 7 14 0.5\n")


if __name__ == "__main__":
    main()
