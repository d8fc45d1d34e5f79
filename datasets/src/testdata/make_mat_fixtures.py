"""Writes the MAT-file test fixtures of `gumbolt_datasets::matfile` with scipy.io.savemat.

Run from this directory (any recent numpy/scipy; the committed files were written with
scipy 1.17.1, numpy 2.x):  python make_mat_fixtures.py

- scipy_{plain,zlib}.mat: assorted variables (real double/single/uint8/logical matrices, a 1x1
  single, a char array, a cell, a struct, a complex and a 3-D array), without and with
  compression (miCOMPRESSED elements).
- scipy_chardata_zlib.mat: the layout of Burda et al.'s chardata.mat on 4 training and 3 test
  images: `data`/`testdata` are 784 x n, one image per column, pixels in Fortran (column-major)
  order; `target`/`testtarget` are 50 x n one-hot. Image i has grey level
  ((5 i + 3 r + 7 c) mod 65) / 64 at row r, column c (test images continue the numbering after
  the training images); image i has alphabet (7 i) mod 50.
"""
import numpy as np
import scipy.io

generic = {
    "a": np.array([[1.5, -2.0], [0.25, 3.0], [7.0, -0.5]]),
    "single": (np.arange(1, 7, dtype=np.float32).reshape(2, 3) / 8).astype(np.float32),
    "bytes": np.array([[0, 255], [7, 128]], dtype=np.uint8),
    "x": np.array([[42.0]]),
    "s1": np.array([[0.75]], dtype=np.float32),
    "lg": np.array([[True, False, True]]),
    "txt": "hello",
    "cel": np.array([np.array([1.0]), "two"], dtype=object),
    "st": {"f": np.array([[1.0]])},
    "cpx": np.array([[1 + 2j, 3 - 1j]]),
    "nd": np.arange(8, dtype=np.float64).reshape(2, 2, 2),
}
scipy.io.savemat("scipy_plain.mat", generic, do_compression=False)
scipy.io.savemat("scipy_zlib.mat", generic, do_compression=True)


def image(i):
    r, c = np.meshgrid(np.arange(28), np.arange(28), indexing="ij")
    return ((5 * i + 3 * r + 7 * c) % 65) / 64.0


def block(first, n):
    data = np.stack([image(i).flatten(order="F") for i in range(first, first + n)], axis=1)
    target = np.zeros((50, n))
    for k, i in enumerate(range(first, first + n)):
        target[(7 * i) % 50, k] = 1.0
    return data, target


data, target = block(0, 4)
testdata, testtarget = block(4, 3)
scipy.io.savemat(
    "scipy_chardata_zlib.mat",
    {"data": data, "testdata": testdata, "target": target, "testtarget": testtarget},
    do_compression=True,
)
