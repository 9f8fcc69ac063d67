"""The export's Merkle tree is RFC 6962's: the Certificate Transparency test vectors, and any
number of leaves against the RFC's recursive definition."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from infra.exports import MerkleTree, leaf_hash, node_hash

# certificate-transparency's merkle_tree_test.cc: leaves and the roots of their prefixes.
LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, as written."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def test_the_certificate_transparency_vectors() -> None:
    for n, expected in enumerate(ROOTS, 1):
        tree = MerkleTree()
        for leaf in LEAVES[:n]:
            tree.add(leaf)
        assert tree.size == n
        assert tree.root().hex() == expected


def test_the_empty_tree() -> None:
    assert MerkleTree().root() == hashlib.sha256(b"").digest()


@given(st.lists(st.binary(max_size=8), max_size=70))
def test_any_number_of_leaves_matches_the_definition(leaves: list[bytes]) -> None:
    tree = MerkleTree()
    for leaf in leaves:
        tree.add(leaf)
    assert tree.root() == mth(leaves)


@given(st.lists(st.binary(max_size=4), min_size=2, max_size=30), st.data())
def test_changing_or_swapping_a_leaf_changes_the_root(
    leaves: list[bytes], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(leaves) - 2))
    swapped = [*leaves]
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    changed = [*leaves]
    changed[i] = changed[i] + b"!"
    assert _root(changed) != _root(leaves)
    if swapped != leaves:
        assert _root(swapped) != _root(leaves)


def _root(leaves: list[bytes]) -> bytes:
    tree = MerkleTree()
    for leaf in leaves:
        tree.add(leaf)
    return tree.root()
