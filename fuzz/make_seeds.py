"""Writes the seed corpora of the fuzz targets into fuzz/seeds/<target>/ (run from anywhere:
python3 fuzz/make_seeds.py). The seeds are the heads of the bundled data, the bad-input corpus
of examples/tests/corpus/, the MAT-file test fixtures, and small files of each format written
here. Only the standard library is needed."""
import gzip
import json
import os
import shutil
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
CORPUS = os.path.join(ROOT, "examples", "tests", "corpus")
DATA = os.path.join(ROOT, "data")


def target(name):
    d = os.path.join(SEEDS, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def put(d, name, data):
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def copy_corpus(d, sub, prefix):
    for name in sorted(os.listdir(os.path.join(CORPUS, sub))):
        with open(os.path.join(CORPUS, sub, name), "rb") as f:
            put(d, prefix + name, f.read())


def head(path, n):
    with gzip.open(path, "rb") as f:
        return b"".join(f.readline() for _ in range(n))


# ---- amat ---------------------------------------------------------------------------------
d = target("amat")
mnist = head(os.path.join(DATA, "binarized_mnist", "binarized_mnist_test.amat.gz"), 3)
put(d, "mnist_head.amat", mnist)
put(d, "mnist_head.amat.gz", gzip.compress(mnist, mtime=0))
put(d, "mnist_head_two_members.amat.gz",
    gzip.compress(mnist[: len(mnist) // 2], mtime=0) + gzip.compress(mnist[len(mnist) // 2:], mtime=0))
grey = head(os.path.join(DATA, "omniglot_rebuilt", "omniglot_test_grey.amat.gz"), 1)
put(d, "omniglot_grey_head.amat", grey)
put(d, "small.amat", "0 1 1\n1\t0 0\r\n  0 0 1  \n\n")
put(d, "small_grey.amat", "0.1234 1 0.5e-1\n0 .25 1.0\n")
put(d, "small_decimals.amat", "0.0 1.000 -0\n+1 1e0 0\n")
copy_corpus(d, "amat", "corpus_")
copy_corpus(d, "grey", "corpus_grey_")

# ---- omniglot_rebuilt: alphabets.txt \0 grey .amat \0 labels ------------------------------
d = target("omniglot_rebuilt")
with open(os.path.join(DATA, "omniglot_rebuilt", "alphabets.txt"), "rb") as f:
    alphabets = f.read()
with open(os.path.join(DATA, "omniglot_rebuilt", "omniglot_test_labels.txt"), "rb") as f:
    labels = b"".join(f.readlines()[:2])
grey2 = head(os.path.join(DATA, "omniglot_rebuilt", "omniglot_test_grey.amat.gz"), 2)
put(d, "bundled_head", alphabets + b"\0" + grey2 + b"\0" + labels)
put(d, "small_dim4", alphabets + b"\0" + b"0 0.5 1 0.25\n1 1 0 0\n" + b"\0" + b"3\n49\n")
put(d, "crlf_blank_tail", alphabets.replace(b"\n", b"\r\n") + b"\0" + b"0 0 0 1\n\n" + b"\0" + b"7\r\n\r\n")
for sub in ["labels", "alphabets", "grey"]:
    for name in sorted(os.listdir(os.path.join(CORPUS, sub))):
        with open(os.path.join(CORPUS, sub, name), "rb") as f:
            bad = f.read()
        parts = {"alphabets": alphabets, "grey": b"0 0.5 1 0.25\n", "labels": b"3\n"}
        parts[sub] = bad
        put(d, f"corpus_{sub}_{name}", parts["alphabets"] + b"\0" + parts["grey"] + b"\0" + parts["labels"])

# ---- matfile ------------------------------------------------------------------------------
d = target("matfile")
fixtures = os.path.join(ROOT, "datasets", "src", "testdata")
for name in sorted(os.listdir(fixtures)):
    if name.endswith(".mat"):
        with open(os.path.join(fixtures, name), "rb") as f:
            put(d, "fixture_" + name, f.read())
copy_corpus(d, "mat", "corpus_")


def mat_file(big, compressed, variables):
    """A MAT v5 file: variables = [(name, class, (mi type, fmt char), rows, cols, values)]."""
    e = ">" if big else "<"
    out = bytearray(b"MATLAB 5.0 MAT-file, gumbolt fuzz seed".ljust(116, b" "))
    out += b"\0" * 8 + struct.pack(e + "H", 0x0100) + (b"MI" if big else b"IM")

    def tag(ty, n):
        return struct.pack(e + "II", ty, n)

    def pad(b):
        return b + b"\0" * (-len(b) % 8)

    for name, cls, (ty, fmt), rows, cols, values in variables:
        body = tag(6, 8) + struct.pack(e + "II", cls, 0)
        body += tag(5, 8) + struct.pack(e + "ii", rows, cols)
        nb = name.encode()
        if len(nb) <= 4:  # small data element
            body += struct.pack(e + "HH", 1, len(nb)) if not big else struct.pack(e + "HH", len(nb), 1)
            body += nb.ljust(4, b"\0")
        else:
            body += tag(1, len(nb)) + pad(nb)
        data = struct.pack(e + fmt * len(values), *values)
        body += tag(ty, len(data)) + pad(data)
        element = tag(14, len(body)) + body
        if compressed:
            z = zlib.compress(element)
            element = tag(15, len(z)) + z
        out += element
    return bytes(out)


n, m = 2, 1
def img(i):
    return [((5 * i + 3 * r + 7 * c) % 65) / 64.0 for c in range(28) for r in range(28)]
data = [v for i in range(n) for v in img(i)]
testdata = [v for i in range(n, n + m) for v in img(i)]
def one_hot(first, k):
    v = [0] * (50 * k)
    for j in range(k):
        v[50 * j + (7 * (first + j)) % 50] = 1
    return v
chardata = [
    ("data", 6, (9, "d"), 784, n, data),
    ("testdata", 7, (7, "f"), 784, m, testdata),
    ("target", 6, (2, "B"), 50, n, one_hot(0, n)),
    ("testtarget", 6, (2, "B"), 50, m, one_hot(n, m)),
]
for big in (False, True):
    for compressed in (False, True):
        name = f"chardata_{'be' if big else 'le'}{'_zlib' if compressed else ''}.mat"
        put(d, name, mat_file(big, compressed, chardata))
put(d, "generic_le.mat", mat_file(False, False, [
    ("a", 6, (9, "d"), 3, 2, [1.5, 0.25, 7.0, -2.0, 3.0, -0.5]),
    ("single", 7, (7, "f"), 2, 1, [0.125, 0.5]),
    ("bytes", 9, (2, "B"), 2, 2, [0, 7, 255, 128]),
    ("s1", 7, (7, "f"), 1, 1, [0.75]),
]))

# Regression seed: a compressed element declaring a 65536 x 65535 uint8 matrix (16 GiB as f32)
# that delivers 2 MiB; the reader used to reserve all of it (fixed in matfile.rs `read_real`).
le = lambda v: struct.pack("<I", v)
rows, cols = 65536, 65535
sub = (le(6) + le(8) + le(6) + le(0) + le(5) + le(8) + le(rows) + le(cols) + le(1) + le(4)
       + b"data\0\0\0\0" + le(2) + le(rows * cols))
z = zlib.compress(le(14) + le(len(sub) + rows * cols) + sub + bytes(2 << 20), 9)
put(d, "regression_declared_size_16gib.mat",
    b"MATLAB 5.0 MAT-file".ljust(116, b" ") + bytes(8) + struct.pack("<H", 0x100) + b"IM"
    + le(15) + le(len(z)) + z)

# ---- checkpoint ---------------------------------------------------------------------------
d = target("checkpoint")
MAGIC = b"\x89GUMBOLT\r\n\x1a\n"


def ckpt(meta, tensors, version=1):
    """tensors = [(name, dtype, shape, values)]"""
    header = json.dumps({"format": "gumbolt-checkpoint", "meta": meta,
                         "tensors": [{"name": t[0], "dtype": t[1], "shape": t[2]} for t in tensors]},
                        separators=(",", ":")).encode()
    payload = b"".join(struct.pack("<" + ("f" if t[1] == "f32" else "I") * len(t[3]), *t[3])
                       for t in tensors)
    body = MAGIC + struct.pack("<IQQ", version, len(header), len(payload)) + header + payload
    return body + struct.pack("<I", zlib.crc32(body))


put(d, "sample.ckpt", ckpt({"iteration": 7, "name": "x"}, [
    ("w", "f32", [2, 3], [1.0, -0.0, 1.1754944e-38, 3.5, 1e-40, 7.0]),
    ("order", "u32", [3], [3, 0, 2**32 - 1]),
    ("empty", "f32", [0], []),
]))
meta = {
    "model_kind": "gumbolt/rbm/pcd",
    "model": {"structure": "linear", "pixels": 4, "latent_units": 2, "hidden_units": 2,
              "hidden_layers": 0, "k": 1, "objective": "gumbolt", "tau": 0.14285714285714285,
              "batch_norm": {"eps": 0.01, "momentum": 0.8}, "seed": 3,
              "train": {"total_iterations": 2, "lr": {"base": 0.003, "milestones": [[0.6, 0.3]]},
                        "kl_warmup_fraction": 0.3,
                        "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 0.001, "weight_decay": 0.0001}}},
    "negative_phase": {"chains": 2, "seed": 5, "sweeps": 2},
    "trainer": {"batch_size": 2, "seed": 3,
                "monitor": {"interval": {"every": 2}, "k": 2, "train_images": 2, "valid_images": 2,
                            "images_per_pass": 2, "log_z": {"method": "exact", "prefer_exact": True},
                            "seed": 1},
                "checkpoint_interval": {"every": 5}},
    "iteration": 2, "adam_steps": 0,
    "noise_rng": {"s": [1, 2, 3, 4]},
    "order": {"epoch": 0, "position": 2, "rng": {"s": [5, 6, 7, 8]}},
    "binarize_rng": {"s": [9, 10, 11, 12]},
    "train_seconds": 0.125, "last_monitor": 2,
    "data": {"n": 3, "dim": 4, "kind": "binary", "crc32": 930605554},
    "writer": "gumbolt-models 0.1.0",
}
put(d, "training_meta.ckpt", ckpt(meta, [
    ("x_mean", "f32", [4], [0.5, 0.25, 0.0, 1.0]),
    ("pcd.chains", "f32", [2, 2], [0.0, 1.0, 1.0, 0.0]),
    ("data.order", "u32", [3], [2, 0, 1]),
]))
put(d, "version_2.ckpt", ckpt({}, [], version=2))
put(d, "no_tensors.ckpt", ckpt(None, []))
copy_corpus(d, "checkpoint", "corpus_")

# ---- rbm_json -----------------------------------------------------------------------------
d = target("rbm_json")
put(d, "small.json", '{"a": [1], "b": [2, 3], "W": [[0.5, -1]]}')
put(d, "pretty.json", '{\n  "a": [1.0, -0.0],\n  "b": [2.5e-3],\n  "W": [\n    [0.5],\n    [-1E2]\n  ]\n}\n')
put(d, "keys_reordered.json", '{"W": [[1, 2, 3]], "b": [0, 0, 0], "a": [-3.4e38]}')
copy_corpus(d, "rbm", "corpus_")

for t in sorted(os.listdir(SEEDS)):
    files = os.listdir(os.path.join(SEEDS, t))
    size = sum(os.path.getsize(os.path.join(SEEDS, t, f)) for f in files)
    print(f"{t}: {len(files)} seeds, {size} bytes")
