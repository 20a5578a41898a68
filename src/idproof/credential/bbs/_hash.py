"""Hash constructions used by the BBS ciphersuites (RFC 9380 §5.3).

Only byte-level hashing lives here (``hashlib``); every group or field operation
is delegated to ``py_arkworks_bls12381``.
"""

from __future__ import annotations

import hashlib

__all__ = ["expand_message_xmd", "expand_message_xof", "i2osp", "os2ip"]


def i2osp(value: int, length: int) -> bytes:
    """RFC 8017 I2OSP: non-negative integer to big-endian octets of fixed length."""
    if value < 0 or value >= 1 << (8 * length):
        raise ValueError(f"integer {value} does not fit in {length} octets")
    return value.to_bytes(length, "big")


def os2ip(octets: bytes) -> int:
    """RFC 8017 OS2IP: big-endian octets to a non-negative integer."""
    return int.from_bytes(octets, "big")


def expand_message_xmd(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 §5.3.1 expand_message_xmd instantiated with SHA-256."""
    b_in_bytes, s_in_bytes = 32, 64
    if len(dst) > 255:  # RFC 9380 §5.3.3: oversized DSTs are hashed down
        dst = hashlib.sha256(b"H2C-OVERSIZE-DST-" + dst).digest()
    ell = -(-len_in_bytes // b_in_bytes)
    if ell > 255 or len_in_bytes > 65535:
        raise ValueError("expand_message_xmd: requested output too long")
    dst_prime = dst + i2osp(len(dst), 1)
    msg_prime = bytes(s_in_bytes) + msg + i2osp(len_in_bytes, 2) + b"\x00" + dst_prime
    b0 = hashlib.sha256(msg_prime).digest()
    b_prev = hashlib.sha256(b0 + b"\x01" + dst_prime).digest()
    out = [b_prev]
    for i in range(2, ell + 1):
        b_prev = hashlib.sha256(
            bytes(x ^ y for x, y in zip(b0, b_prev, strict=True)) + i2osp(i, 1) + dst_prime
        ).digest()
        out.append(b_prev)
    return b"".join(out)[:len_in_bytes]


def expand_message_xof(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 §5.3.2 expand_message_xof instantiated with SHAKE-256 (k = 128)."""
    if len(dst) > 255:  # RFC 9380 §5.3.3 with ceil(2 * k / 8) = 32 output bytes
        dst = hashlib.shake_256(b"H2C-OVERSIZE-DST-" + dst).digest(32)
    if len_in_bytes > 65535:
        raise ValueError("expand_message_xof: requested output too long")
    dst_prime = dst + i2osp(len(dst), 1)
    msg_prime = msg + i2osp(len_in_bytes, 2) + dst_prime
    return hashlib.shake_256(msg_prime).digest(len_in_bytes)
