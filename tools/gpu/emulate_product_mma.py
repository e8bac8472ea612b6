#!/usr/bin/env python3
# Checks product_mma's index arithmetic (src/main/cuda/product.cu) without a GPU: its tile loads with their swizzle,
# the ldmatrix.x4 addresses of the A (weights) and B (rows of x) fragments, the mma.sync m16n8k16 fragment layouts
# (as tensor_cores.cuh describes them) and the epilogue's stores, emulated in numpy for one block at a time and
# compared with float64 products; every output written exactly once by each split of k (whose sums product_reduce
# adds). The cp.async pipeline and the kernel itself only a GPU checks (ProductMmaKernelTest). Run it after changing
# the kernel's layout: python3 tools/gpu/emulate_product_mma.py
import numpy as np
rng = np.random.default_rng(1)

def tile_offset(row, chunk):  # bytes
    return row * 128 + ((chunk ^ (row & 7)) << 4)

def run(m, n, k, CHUNKS, GROUPS, SPLITS=1):
    x = rng.standard_normal((m, k))
    w = rng.standard_normal((n, k))
    out = np.zeros((m, n))
    written = np.zeros((SPLITS, m, n), dtype=int)
    COLS = 16 * GROUPS; RPW = 64 * GROUPS // 8; PAIRS = RPW // 16
    tiles = (k + 63) // 64
    for bx, split in [(b, sp) for b in range((n + COLS - 1) // COLS) for sp in range(SPLITS)]:
        column0 = bx * COLS; columns = min(COLS, n - column0)
        first = split * tiles // SPLITS; count = (split + 1) * tiles // SPLITS - first
        acc = np.zeros((8, CHUNKS, 2 * PAIRS, 32, 4))  # warp, chunk, tile, lane, i
        for tile in range(first, first + count):
            k0 = tile * 64
            # shared memory as element arrays indexed by byte offset // 2
            W = np.zeros(COLS * 64); X = np.zeros(CHUNKS * 64 * 64)
            def load(dst, src, rows, valid):
                for i in range(rows * 8):
                    row, chunk = i >> 3, i & 7
                    at = k0 + chunk * 8
                    inside = row < valid and at < k
                    off = tile_offset(row, chunk) // 2
                    dst[off:off + 8] = src[row, at:at + 8] if inside else 0
            load(W, w[column0:], COLS, columns)
            load(X, x, CHUNKS * 64, m)
            for warp in range(8):
                cg, rp = warp % GROUPS, warp // GROUPS
                for step in range(4):
                    def ldmatrix_x4(mem, addr_of_lane):
                        regs = np.zeros((32, 4, 2))
                        for mat in range(4):
                            rows = [addr_of_lane(8 * mat + r) // 2 for r in range(8)]
                            for T in range(32):
                                base = rows[T // 4]
                                regs[T, mat] = mem[base + 2 * (T % 4): base + 2 * (T % 4) + 2]
                        return regs
                    a = ldmatrix_x4(W, lambda l: tile_offset(cg * 16 + (l & 15), 2 * step + (l >> 4)))
                    # rebuild A (16 x 16) from fragments
                    A = np.zeros((16, 16))
                    for T in range(32):
                        g, t = T >> 2, T & 3
                        A[g, 2*t:2*t+2] = a[T, 0]; A[g+8, 2*t:2*t+2] = a[T, 1]
                        A[g, 2*t+8:2*t+10] = a[T, 2]; A[g+8, 2*t+8:2*t+10] = a[T, 3]
                    for c in range(CHUNKS):
                        for pair in range(PAIRS):
                            b = ldmatrix_x4(X, lambda l: tile_offset(c * 64 + rp * RPW + pair * 16 + (l >> 4) * 8 + (l & 7),
                                                                     2 * step + ((l >> 3) & 1)))
                            for half in range(2):
                                B = np.zeros((16, 8))
                                for T in range(32):
                                    g, t = T >> 2, T & 3
                                    B[2*t:2*t+2, g] = b[T, 2 * half]; B[2*t+8:2*t+10, g] = b[T, 2 * half + 1]
                                D = A @ B
                                for T in range(32):
                                    g, t = T >> 2, T & 3
                                    acc[warp, c, 2*pair+half, T] += [D[g, 2*t], D[g, 2*t+1], D[g+8, 2*t], D[g+8, 2*t+1]]
        for warp in range(8):
            cg, rp = warp % GROUPS, warp // GROUPS
            for T in range(32):
                g, t = T >> 2, T & 3
                for c in range(CHUNKS):
                    for tl in range(2 * PAIRS):
                        row = c * 64 + rp * RPW + tl * 8 + 2 * t
                        for i in range(4):
                            r = row + (i & 1); col = column0 + cg * 16 + g + (i >> 1) * 8
                            if r < m and col < n:
                                written[split, r, col] += 1
                                out[r, col] += acc[warp, c, tl, T, i]  # a split's partial sum, added as product_reduce does
    ref = x @ w.T
    assert (written == 1).all(), "an output written other than once by a split"
    err = np.abs(out - ref).max() / np.abs(ref).max()
    print(f"m={m} n={n} k={k} chunks={CHUNKS} groups={GROUPS} splits={SPLITS}: max rel err {err:.2e}")
    assert err < 1e-9

run(70, 40, 136, 2, 2)
run(70, 40, 136, 2, 4)
run(9, 70, 72, 1, 4)
run(130, 33, 64, 4, 2)
run(70, 150, 200, 2, 8)
run(20, 48, 328, 1, 4, 3)
run(130, 130, 256, 4, 8, 2)
