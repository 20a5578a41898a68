"""A throw-away ePassport PKI and chip-data generator, for tests and ``idproof specimen``.

It issues what a state's document signer would: DG1 (MRZ), DG2 (ISO/IEC 19794-5 face record) and
an EF.SOD signed by a fresh DSC under a fresh CSCA. Keys live in memory only and nothing here is
meant to be trusted by anyone: the CSCA is generated on every call unless you pass a ``TestPKI``.
Certificates and signatures via ``cryptography``, CMS/ASN.1 via ``asn1crypto``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import numpy as np
from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from PIL import Image

from idproof.document.chip import (
    OID_CSCA_MASTER_LIST,
    OID_LDS_SECURITY_OBJECT,
    CscaMasterList,
    LdsSecurityObject,
)

__all__ = ["ChipData", "TestPKI", "build_dg1", "build_dg2", "build_master_list", "issue_chip"]

Algorithm = Literal["ecdsa-p256", "rsa-pss-2048"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_HASHES = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
           "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def _tlv(tag: int, value: bytes) -> bytes:
    """BER-TLV with a definite, minimal length."""
    t = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return t + length + value


# --- PKI ------------------------------------------------------------------------------------------------


def _new_key(algorithm: Algorithm) -> PrivateKey:
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "rsa-pss-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unknown algorithm {algorithm!r}; use 'ecdsa-p256' or 'rsa-pss-2048'")


def _pss(h: hashes.HashAlgorithm) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)


def _sign_cert(builder: x509.CertificateBuilder, key: PrivateKey) -> x509.Certificate:
    if isinstance(key, rsa.RSAPrivateKey):
        return builder.sign(key, hashes.SHA256(), rsa_padding=_pss(hashes.SHA256()))
    return builder.sign(key, hashes.SHA256())


def _name(country: str, cn: str) -> x509.Name:
    # X.509 countryName is ISO 3166 alpha-2; ICAO codes are alpha-3 ("UTO"): a test PKI takes the
    # first two letters, pass a 2-letter code for a real country.
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, country[:2].upper()),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "idproof test PKI (not trusted)"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])


def _default_validity(years: int) -> tuple[datetime, datetime]:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return now - timedelta(days=1), now + timedelta(days=365 * years)


@dataclass(frozen=True)
class TestPKI:
    """A CSCA and one Document Signer under it."""

    __test__ = False  # not a pytest test class, despite the name

    csca_key: PrivateKey = field(repr=False)
    csca_cert: x509.Certificate
    dsc_key: PrivateKey = field(repr=False)
    dsc_cert: x509.Certificate

    @classmethod
    def generate(
        cls,
        *,
        country: str = "UTO",
        algorithm: Algorithm = "ecdsa-p256",
        csca_valid: tuple[datetime, datetime] | None = None,
        dsc_valid: tuple[datetime, datetime] | None = None,
        dsc_key_usage_ok: bool = True,
    ) -> TestPKI:
        """``dsc_key_usage_ok=False`` issues a DSC without digitalSignature (nonRepudiation only)."""
        csca_key, dsc_key = _new_key(algorithm), _new_key(algorithm)
        csca_from, csca_to = csca_valid or _default_validity(15)
        dsc_from, dsc_to = dsc_valid or _default_validity(10)
        csca_name = _name(country, f"CSCA {country.upper()}")
        csca_ski = x509.SubjectKeyIdentifier.from_public_key(csca_key.public_key())
        csca = _sign_cert(
            x509.CertificateBuilder()
            .subject_name(csca_name).issuer_name(csca_name)
            .public_key(csca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(csca_from).not_valid_after(csca_to)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(csca_ski, critical=False),
            csca_key,
        )
        dsc = _sign_cert(
            x509.CertificateBuilder()
            .subject_name(_name(country, f"Document Signer {country.upper()}")).issuer_name(csca_name)
            .public_key(dsc_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(dsc_from).not_valid_after(dsc_to)
            .add_extension(_key_usage(digital_signature=dsc_key_usage_ok, content_commitment=not dsc_key_usage_ok),
                           critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(csca_ski), critical=False),
            csca_key,
        )
        return cls(csca_key, csca, dsc_key, dsc)

    def csca_pem(self) -> bytes:
        return self.csca_cert.public_bytes(serialization.Encoding.PEM)


def _key_usage(**on: bool) -> x509.KeyUsage:
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
    return x509.KeyUsage(**{n: on.get(n, False) for n in names})


# --- data groups ----------------------------------------------------------------------------------------


def build_dg1(mrz_lines: Sequence[str]) -> bytes:
    """EF.DG1: tag 0x61 around 0x5F1F with the MRZ lines concatenated (no separators)."""
    text = "".join(mrz_lines)
    if len(text) not in (90, 72, 88) or not text.isascii():
        raise ValueError("MRZ lines must be 3x30, 2x36 or 2x44 ASCII characters")
    return _tlv(0x61, _tlv(0x5F1F, text.encode("ascii")))


def build_dg2(image: bytes, *, image_format: str = "jpeg") -> bytes:
    """EF.DG2: 0x75 / 0x7F61 / 0x7F60 / 0x5F2E with an ISO/IEC 19794-5:2005 facial record."""
    fmt = image_format.lower().replace(" ", "")
    codes = {"jpeg": 0, "jpg": 0, "jpeg2000": 1, "jp2": 1}
    if fmt not in codes:
        raise ValueError("image_format must be 'jpeg' or 'jpeg2000'")
    try:
        with Image.open(io.BytesIO(image), formats=["JPEG2000" if codes[fmt] else "JPEG"]) as img:
            width, height = img.size
    except Exception as exc:  # noqa: BLE001 - Pillow raises several types for "not this format"
        raise ValueError(f"the portrait is not a {'JPEG 2000' if codes[fmt] else 'JPEG'} image") from exc
    # Facial information (20 bytes) + image information (12 bytes) + image data.
    block_len = 20 + 12 + len(image)
    facial_info = (block_len.to_bytes(4, "big") + b"\x00\x00"  # no feature points
                   + b"\x00\x00\x00" + b"\x00\x00\x00" + b"\x00\x00"  # gender/eyes/hair, mask, expression
                   + b"\x00\x00\x00" + b"\x00\x00\x00")  # pose angles and their uncertainty
    image_info = (bytes([1, codes[fmt]])  # full frontal, JPEG / JPEG 2000
                  + width.to_bytes(2, "big") + height.to_bytes(2, "big")
                  + bytes([1, 2]) + b"\x00\x00" + b"\x00\x00")  # 24-bit RGB, static photo; device; quality
    body = facial_info + image_info + image
    record = b"FAC\x00010\x00" + (14 + len(body)).to_bytes(4, "big") + b"\x00\x01" + body
    header = _tlv(0xA1, _tlv(0x80, b"\x01\x01") + _tlv(0x81, b"\x02")  # version, type: face
                  + _tlv(0x87, b"\x01\x01") + _tlv(0x88, b"\x00\x08"))  # format owner / type: 19794-5
    bit = _tlv(0x7F60, header + _tlv(0x5F2E, record))
    return _tlv(0x75, _tlv(0x7F61, _tlv(0x02, b"\x01") + bit))


# --- CMS ------------------------------------------------------------------------------------------------


def _signed_data(content_type: str, econtent: bytes, key: PrivateKey, cert: x509.Certificate,
                 hash_name: str) -> bytes:
    h = _HASHES[hash_name]()
    digest = hashes.Hash(h)
    digest.update(econtent)
    cert_asn1 = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    if isinstance(key, rsa.RSAPrivateKey):
        sig_alg = algos.SignedDigestAlgorithm({
            "algorithm": "rsassa_pss",
            "parameters": algos.RSASSAPSSParams({
                "hash_algorithm": {"algorithm": hash_name},
                "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": hash_name}},
                "salt_length": h.digest_size,
                "trailer_field": "trailer_field_bc",
            }),
        })
    else:
        sig_alg = algos.SignedDigestAlgorithm({"algorithm": f"{hash_name}_ecdsa"})
    attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": [cms.ContentType(content_type)]}),
        cms.CMSAttribute({"type": "message_digest", "values": [digest.finalize()]}),
    ])
    signer_info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier({"issuer_and_serial_number": cms.IssuerAndSerialNumber(
            {"issuer": cert_asn1.issuer, "serial_number": cert_asn1.serial_number})}),
        "digest_algorithm": {"algorithm": hash_name},
        "signed_attrs": attrs,
        "signature_algorithm": sig_alg,
        "signature": b"",
    })
    # The signature covers the attributes as a SET (0x31), not as the [0] they are stored under.
    to_sign = b"\x31" + signer_info["signed_attrs"].dump()[1:]
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(to_sign, _pss(h), h)
    else:
        signature = key.sign(to_sign, ec.ECDSA(h))
    signer_info["signature"] = signature
    signed = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [{"algorithm": hash_name}],
        "encap_content_info": {"content_type": content_type, "content": core.ParsableOctetString(econtent)},
        "certificates": [cert_asn1],
        "signer_infos": [signer_info],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


@dataclass(frozen=True)
class ChipData:
    sod: bytes = field(repr=False)
    dg1: bytes = field(repr=False)
    dg2: bytes = field(repr=False)
    pki: TestPKI

    @property
    def data_groups(self) -> dict[int, bytes]:
        return {1: self.dg1, 2: self.dg2}

    def write(self, folder: Path | str) -> None:
        """EF_SOD.bin, EF_DG1.bin, EF_DG2.bin and the CSCA as csca.pem."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "EF_SOD.bin").write_bytes(self.sod)
        (folder / "EF_DG1.bin").write_bytes(self.dg1)
        (folder / "EF_DG2.bin").write_bytes(self.dg2)
        (folder / "csca.pem").write_bytes(self.pki.csca_pem())


def _encode(portrait: bytes | np.ndarray, fmt: str) -> bytes:
    if not isinstance(portrait, np.ndarray):
        return bytes(portrait)
    buf = io.BytesIO()
    if fmt in ("jpeg2000", "jp2"):
        Image.fromarray(portrait).save(buf, "JPEG2000", irreversible=True, quality_mode="rates", quality_layers=[20])
    else:
        Image.fromarray(portrait).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def issue_chip(
    mrz_lines: Sequence[str],
    portrait: bytes | np.ndarray,
    *,
    pki: TestPKI | None = None,
    image_format: str = "jpeg",
    hash_name: str = "sha256",
) -> ChipData:
    """Issue DG1, DG2 and a signed EF.SOD. ``portrait`` is the encoded image (in ``image_format``)
    or an RGB uint8 array, which is encoded here."""
    if hash_name not in _HASHES:
        raise ValueError(f"hash_name must be one of {', '.join(_HASHES)}")
    pki = pki or TestPKI.generate()
    fmt = image_format.lower()
    dg1 = build_dg1(mrz_lines)
    dg2 = build_dg2(_encode(portrait, fmt), image_format=fmt)

    def digest(data: bytes) -> bytes:
        h = hashes.Hash(_HASHES[hash_name]())
        h.update(data)
        return h.finalize()

    lds = LdsSecurityObject({
        "version": 0,
        "hash_algorithm": {"algorithm": hash_name},
        "data_group_hash_values": [
            {"data_group_number": 1, "data_group_hash_value": digest(dg1)},
            {"data_group_number": 2, "data_group_hash_value": digest(dg2)},
        ],
    })
    cms_bytes = _signed_data(OID_LDS_SECURITY_OBJECT, lds.dump(), pki.dsc_key, pki.dsc_cert, hash_name)
    return ChipData(sod=_tlv(0x77, cms_bytes), dg1=dg1, dg2=dg2, pki=pki)


def build_master_list(cscas: Sequence[x509.Certificate], signer: TestPKI | None = None) -> bytes:
    """An ICAO CSCA master list (DER CMS SignedData) holding ``cscas``, signed by ``signer``'s DSC
    (a fresh test PKI when None). To verify it later, trust ``signer``'s CSCA."""
    signer = signer or TestPKI.generate()
    ml = CscaMasterList({
        "version": 0,
        "cert_list": [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in cscas],
    })
    return _signed_data(OID_CSCA_MASTER_LIST, ml.dump(), signer.dsc_key, signer.dsc_cert, "sha256")
