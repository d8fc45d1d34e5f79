"""Writes a Boltzmann machine on a width × length strip (couplings along the strip, across it and
on one diagonal, so it has triangles and is not bipartite) as a `gumbolt logz --bm` JSON file, and
prints its exact log Z by the transfer matrix over the 2^width states of a column.

Usage: python3 scripts/strip_bm.py WIDTH LENGTH SEED OUT.json
Unit (x, y) is x·WIDTH + y; h ~ N(0, 0.3²), w ~ N(0, 0.6²) (Python's random.gauss).
"""
import json, math, random, sys

width, length, seed, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rng = random.Random(seed)
uid = lambda x, y: x * width + y
h = [rng.gauss(0, 0.3) for _ in range(width * length)]
w = {}
for x in range(length):
    for y in range(width):
        if y + 1 < width:
            w[(uid(x, y), uid(x, y + 1))] = rng.gauss(0, 0.6)
        if x + 1 < length:
            w[(uid(x, y), uid(x + 1, y))] = rng.gauss(0, 0.6)
            if y + 1 < width:
                w[(uid(x, y), uid(x + 1, y + 1))] = rng.gauss(0, 0.6)
# The file stores f32-representable values, so the exact value uses the same numbers.
import struct
f32 = lambda v: struct.unpack("f", struct.pack("f", v))[0]
h = [f32(v) for v in h]
w = {k: f32(v) for k, v in w.items()}
with open(out, "w") as f:
    json.dump({"h": h, "edges": [[i, j, v] for (i, j), v in w.items()]}, f)
bit = lambda s, y: (s >> y) & 1
def inside(x, s):
    v = sum(h[uid(x, y)] * bit(s, y) for y in range(width))
    return v + sum(w[(uid(x, y), uid(x, y + 1))] * bit(s, y) * bit(s, y + 1) for y in range(width - 1))
def between(x, a, b):
    v = sum(w[(uid(x, y), uid(x + 1, y))] * bit(a, y) * bit(b, y) for y in range(width))
    return v + sum(w[(uid(x, y), uid(x + 1, y + 1))] * bit(a, y) * bit(b, y + 1) for y in range(width - 1))
S = 1 << width
v = [math.exp(inside(0, s)) for s in range(S)]
log_scale = 0.0
for x in range(length - 1):
    nxt = [sum(v[a] * math.exp(between(x, a, b) + inside(x + 1, b)) for a in range(S)) for b in range(S)]
    m = max(nxt)
    log_scale += math.log(m)
    v = [t / m for t in nxt]
print(json.dumps({"units": width * length, "edges": len(w), "exact_log_z": log_scale + math.log(sum(v))}))
