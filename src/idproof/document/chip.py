"""ePassport / eID chip passive authentication (ICAO Doc 9303 parts 10-12).

Passive authentication proves that the data groups read from a chip (DG1: the MRZ, DG2: the face
image, ...) are the ones the issuing state signed. EF.SOD carries a CMS SignedData over a list of
data-group hashes (the LDS security object), signed by a Document Signer Certificate (DSC), which a
Country Signing CA (CSCA) issued. We check, in order: the SOD structure, the CMS signature, the
DSC -> CSCA chain against a caller-supplied trust store, certificate validity and key usage, and
each data group's hash. It does *not* prove the chip itself is genuine (a copied chip passes):
that is active / chip authentication, which needs a live NFC session.

Validity model: both certificates are checked at ``at`` (default: now), the "shell model". ICAO
sizes the validity periods for this: a DSC stays valid for its short signing period plus the
lifetime of the documents it signed, and a CSCA for its signing period plus the longest DSC
validity. EF.SOD carries no trustworthy signing time (signingTime is optional and self-asserted),
so checking "at signing time" would have to trust the chip's own claim. Callers that want the
chain model can pass ``at=`` explicitly (e.g. the document's date of issue).

Crypto is never done here by hand: hashes and signatures go through ``cryptography``, CMS and
ASN.1 structure through ``asn1crypto``. The only hand-written parser is the small BER-TLV reader
for the LDS wrappers (tag 0x77, 0x61, 0x75, ...), which is plain framing.

Failure texts never contain MRZ text or image bytes (personal data; they end up in logs).
"""

from __future__ import annotations

import io
import re
import stat
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from asn1crypto import algos, cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from PIL import Image

from idproof.document.mrz import MrzError, MrzResult, parse_mrz
from idproof.errors import IdproofError, ImageError

__all__ = [
    "OID_CSCA_MASTER_LIST",
    "OID_LDS_SECURITY_OBJECT",
    "ChipError",
    "ChipFailure",
    "ChipReading",
    "CscaMasterList",
    "DataGroupHash",
    "LdsSecurityObject",
    "MAX_PORTRAIT_PIXELS",
    "Tlv",
    "TrustStore",
    "iter_tlv",
    "load_chip_files",
    "passive_authentication",
    "read_tlv",
]

OID_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"  # id-icao-mrtd-security-ldsSecurityObject
OID_CSCA_MASTER_LIST = "2.23.136.1.1.2"  # id-icao-cscaMasterList

MAX_PORTRAIT_PIXELS = 16_000_000  # ICAO portraits are well under 1 MP; refuse decompression bombs
MAX_FILE_BYTES = 4 * 1024 * 1024  # a whole LDS is a few hundred kB at most
MAX_TRUST_FILE_BYTES = 64 * 1024 * 1024  # master lists run to a few MB

_DG_NAMES = {
    1: "MRZ", 2: "face image", 3: "fingerprints", 4: "iris", 5: "displayed portrait",
    7: "displayed signature", 11: "additional personal details", 12: "additional document details",
    13: "optional details", 14: "security options", 15: "active authentication key",
}
# First tag of each elementary file (Doc 9303-10, table 34).
_EF_TAGS = {"SOD": 0x77, "COM": 0x60, **{f"DG{n}": t for n, t in zip(range(1, 17), (
    0x61, 0x75, 0x63, 0x76, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70))}}


class ChipError(IdproofError):
    """Chip data cannot be used at all: a file is missing or is not an LDS file, a trust store is
    empty or unreadable, or (from the TLV reader) the framing is broken. ``passive_authentication``
    itself raises it only for unusable *arguments*; hostile bytes become ``ChipFailure``s."""

    code = "chip_unreadable"

    def __init__(self, message: str, *, fix: str = "", code: str | None = None) -> None:
        super().__init__(message, fix=fix)
        if code is not None:
            self.code = code


@dataclass(frozen=True)
class ChipFailure:
    code: str  # sod_malformed, chip_signature_invalid, dg_hash_mismatch, ...
    qualifier: str  # "DG2" for data-group failures, else ""
    text: str  # for a person / operator; never contains document data

    @property
    def reason(self) -> str:
        """``code:qualifier`` (e.g. ``dg_hash_mismatch:DG2``), or just ``code``."""
        return f"{self.code}:{self.qualifier}" if self.qualifier else self.code


@dataclass(frozen=True)
class ChipReading:
    """What the chip said, and whether passive authentication proved it.

    ``mrz`` and ``portrait_rgb`` are filled whenever DG1 / DG2 parse, even if a check failed (so an
    operator can see *what* was tampered with): only ``passive_authenticated`` makes them evidence.
    """

    mrz: MrzResult | None = field(repr=False)  # personal data: kept out of repr (and so of logs)
    portrait_rgb: np.ndarray | None = field(repr=False)  # RGB uint8, memory only
    portrait_format: str | None  # "jpeg" | "jpeg2000"
    failures: tuple[ChipFailure, ...]
    checks: dict[str, bool]
    hash_algorithm: str | None
    dsc_subject: str | None
    csca_subject: str | None
    signature_algorithm: str | None = None

    @property
    def passive_authenticated(self) -> bool:
        """Every check ran and passed, and nothing failed."""
        return not self.failures and bool(self.checks) and all(self.checks.values())

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(f.reason for f in self.failures)


# --- BER-TLV framing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tlv:
    tag: int  # multi-byte tags as one integer, e.g. 0x5F1F, 0x7F61
    value: bytes = field(repr=False)
    start: int  # offset of the tag byte in the buffer it was read from
    end: int  # offset just after the value

    @property
    def constructed(self) -> bool:
        first = self.tag
        while first > 0xFF:
            first >>= 8
        return bool(first & 0x20)


def _tlv_error(what: str) -> ChipError:
    return ChipError(
        f"Chip data is not valid BER-TLV: {what}.",
        fix="Read the chip again and export the raw file bytes (not hex text or base64).",
        code="chip_tlv_malformed",
    )


def read_tlv(data: bytes, offset: int = 0) -> Tlv:
    """Read one BER-TLV element at ``offset``. Definite lengths of up to 4 bytes only.

    Raises ``ChipError`` (code ``chip_tlv_malformed``) on truncation, indefinite or overlong lengths.
    """
    n = len(data)
    if not 0 <= offset < n:
        raise _tlv_error("no tag at the expected position (data truncated)")
    p = offset
    tag = data[p]
    p += 1
    if tag & 0x1F == 0x1F:  # high tag number: continuation bytes while bit 8 is set
        if p < n and data[p] == 0x80:
            raise _tlv_error("non-minimal tag encoding")
        for _ in range(3):
            if p >= n:
                raise _tlv_error("tag truncated")
            b = data[p]
            p += 1
            tag = (tag << 8) | b
            if not b & 0x80:
                break
        else:
            raise _tlv_error("tag longer than 4 bytes")
    if p >= n:
        raise _tlv_error("length missing (data truncated)")
    first = data[p]
    p += 1
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise _tlv_error("indefinite length (not allowed in the LDS)")
    elif first <= 0x84:
        k = first & 0x7F
        if p + k > n:
            raise _tlv_error("length truncated")
        length = int.from_bytes(data[p:p + k], "big")
        p += k
    else:
        raise _tlv_error("length field longer than 4 bytes")
    if p + length > n:
        raise _tlv_error(f"value of tag {tag:X} runs past the end of the data ({length} bytes announced, {n - p} left)")
    return Tlv(tag, bytes(data[p:p + length]), offset, p + length)


def iter_tlv(data: bytes) -> Iterator[Tlv]:
    """Successive TLV elements filling ``data`` exactly (raises ``ChipError`` on leftovers)."""
    p = 0
    while p < len(data):
        t = read_tlv(data, p)
        yield t
        p = t.end


def _child(parent: bytes, tag: int) -> Tlv | None:
    for t in iter_tlv(parent):
        if t.tag == tag:
            return t
    return None


def _ef_content(data: bytes) -> bytes:
    """The elementary file as the issuer hashed it: its outer TLV. Block-wise reads can leave
    0x00/0xFF padding behind it, which is dropped; anything else stays (and fails the hash)."""
    try:
        t = read_tlv(data)
    except ChipError:
        return data
    rest = data[t.end:]
    if rest and rest.strip(b"\x00") and rest.strip(b"\xff"):
        return data
    return data[:t.end]


# --- ASN.1 structures (Doc 9303-10 §4.6.2, 9303-12 §9) --------------------------------------------------


class DataGroupHash(core.Sequence):
    _fields = [("data_group_number", core.Integer), ("data_group_hash_value", core.OctetString)]


class DataGroupHashValues(core.SequenceOf):
    _child_spec = DataGroupHash


class LdsVersionInfo(core.Sequence):
    _fields = [("lds_version", core.PrintableString), ("unicode_version", core.PrintableString)]


class LdsSecurityObject(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("hash_algorithm", algos.DigestAlgorithm),
        ("data_group_hash_values", DataGroupHashValues),
        ("lds_version_info", LdsVersionInfo, {"optional": True}),
    ]


class CscaCertificates(core.SetOf):
    _child_spec = asn1_x509.Certificate


class CscaMasterList(core.Sequence):
    _fields = [("version", core.Integer), ("cert_list", CscaCertificates)]


# --- algorithms ------------------------------------------------------------------------------------------

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
    "sha384": hashes.SHA384, "sha512": hashes.SHA512,
}
_DIGEST_OIDS = {
    "1.3.14.3.2.26": "sha1", "2.16.840.1.101.3.4.2.4": "sha224", "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384", "2.16.840.1.101.3.4.2.3": "sha512",
}
# signature OID -> (scheme, hash); hash None = taken from the SignerInfo digest algorithm
_SIG_OIDS: dict[str, tuple[str, str | None]] = {
    "1.2.840.113549.1.1.1": ("rsa_pkcs1v15", None),  # plain rsaEncryption, common in CMS
    "1.2.840.113549.1.1.5": ("rsa_pkcs1v15", "sha1"),
    "1.2.840.113549.1.1.14": ("rsa_pkcs1v15", "sha224"),
    "1.2.840.113549.1.1.11": ("rsa_pkcs1v15", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa_pkcs1v15", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa_pkcs1v15", "sha512"),
    "1.2.840.113549.1.1.10": ("rsa_pss", None),  # hash from the PSS parameters
    "1.2.840.10045.2.1": ("ecdsa", None),  # id-ecPublicKey used as a signature OID: seen in real SODs
    "1.2.840.10045.4.1": ("ecdsa", "sha1"),
    "1.2.840.10045.4.3.1": ("ecdsa", "sha224"),
    "1.2.840.10045.4.3.2": ("ecdsa", "sha256"),
    "1.2.840.10045.4.3.3": ("ecdsa", "sha384"),
    "1.2.840.10045.4.3.4": ("ecdsa", "sha512"),
    # BSI TR-03111 ecdsa-plain-*: r || s instead of a DER SEQUENCE
    "0.4.0.127.0.7.1.1.4.1.1": ("ecdsa_plain", "sha1"),
    "0.4.0.127.0.7.1.1.4.1.2": ("ecdsa_plain", "sha224"),
    "0.4.0.127.0.7.1.1.4.1.3": ("ecdsa_plain", "sha256"),
    "0.4.0.127.0.7.1.1.4.1.4": ("ecdsa_plain", "sha384"),
    "0.4.0.127.0.7.1.1.4.1.5": ("ecdsa_plain", "sha512"),
}
_MGF1 = "1.2.840.113549.1.1.8"


class _Unsupported(Exception):
    """An algorithm or key this module cannot check (-> unsupported_algorithm)."""


class _BadSignature(Exception):
    pass


class _Malformed(Exception):
    pass


def _hash_name(alg: algos.DigestAlgorithm) -> str:
    oid = alg["algorithm"].dotted
    name = _DIGEST_OIDS.get(oid)
    if name is None:
        raise _Unsupported(f"hash algorithm {oid}")
    return name


def _digest(name: str, data: bytes) -> bytes:
    h = hashes.Hash(_HASHES[name]())
    h.update(data)
    return h.finalize()


def _verify(public_key: object, signature: bytes, data: bytes, alg: algos.SignedDigestAlgorithm,
            digest_name: str | None) -> str:
    """Verify with ``cryptography``; returns a readable algorithm name. Raises _BadSignature/_Unsupported."""
    oid = alg["algorithm"].dotted
    if oid not in _SIG_OIDS:
        raise _Unsupported(f"signature algorithm {oid}")
    scheme, hname = _SIG_OIDS[oid]
    if scheme == "rsa_pss":
        params = alg["parameters"]
        if not isinstance(params, algos.RSASSAPSSParams):
            raise _Unsupported("RSASSA-PSS without parameters")
        hname = _hash_name(params["hash_algorithm"])
        mgf = params["mask_gen_algorithm"]
        if mgf["algorithm"].dotted != _MGF1 or params["trailer_field"].native not in (1, "trailer_field_bc"):
            raise _Unsupported("RSASSA-PSS with a mask generation function other than MGF1")
        mgf_hash = _hash_name(algos.DigestAlgorithm.load(mgf["parameters"].dump()))
        salt = params["salt_length"].native
        if not isinstance(salt, int) or salt < 0:
            raise _BadSignature("invalid RSASSA-PSS salt length")
        pad: padding.AsymmetricPadding = padding.PSS(mgf=padding.MGF1(_HASHES[mgf_hash]()), salt_length=salt)
    else:
        hname = hname or digest_name
        if hname is None:
            raise _Unsupported(f"signature algorithm {oid} without a hash")
        pad = padding.PKCS1v15()
    h = _HASHES[hname]()
    try:
        if scheme.startswith("rsa"):
            if not isinstance(public_key, rsa.RSAPublicKey):
                raise _BadSignature("the signature algorithm is RSA but the certificate key is not")
            public_key.verify(signature, data, pad, h)
        else:
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                raise _BadSignature("the signature algorithm is ECDSA but the certificate key is not")
            if scheme == "ecdsa_plain":
                half = len(signature) // 2
                if not signature or len(signature) % 2:
                    raise _BadSignature("plain ECDSA signature of odd length")
                signature = encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                                  int.from_bytes(signature[half:], "big"))
            public_key.verify(signature, data, ec.ECDSA(h))
    except (InvalidSignature, ValueError, TypeError, OverflowError) as exc:
        raise _BadSignature(type(exc).__name__) from exc
    return f"{'rsa-pss' if scheme == 'rsa_pss' else scheme.replace('_', '-')}-{hname}"


# --- certificates -----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Cert:
    der: bytes
    asn1: asn1_x509.Certificate
    crypto: x509.Certificate

    @classmethod
    def load(cls, der: bytes) -> _Cert:
        """Raises ValueError (or another parser error) when either library cannot read it."""
        a = asn1_x509.Certificate.load(der, strict=True)
        a["tbs_certificate"].dump()  # force the lazy parse of everything we use later
        _ = (a.subject.hashable, a.issuer.hashable, a.serial_number)
        return cls(der, a, x509.load_der_x509_certificate(der))

    def public_key(self) -> object:
        try:
            return self.crypto.public_key()
        except UnsupportedAlgorithm as exc:  # unknown key type or curve
            raise _Unsupported(f"a key type or curve of {self.subject}") from exc
        except Exception as exc:  # noqa: BLE001 - a corrupt key cannot verify anything
            raise _BadSignature(f"the public key of {self.subject} cannot be read") from exc

    @property
    def subject(self) -> str:
        try:
            return self.crypto.subject.rfc4514_string()
        except Exception:  # noqa: BLE001 - exotic attribute encodings
            return "(unreadable name)"

    def issued(self, child: _Cert) -> str:
        """Verify ``child``'s signature with this certificate's key."""
        return _verify(self.public_key(), child.asn1["signature_value"].native,
                       child.asn1["tbs_certificate"].dump(), child.asn1["signature_algorithm"], None)


def _utc(d: datetime) -> str:
    return d.strftime("%Y-%m-%d")


def _validity(cert: x509.Certificate, at: datetime) -> str | None:
    """None when valid at ``at``, else why not."""
    nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
    if at < nb:
        return f"not valid until {_utc(nb)} (checked at {_utc(at)})"
    if at > na:
        return f"expired on {_utc(na)} (checked at {_utc(at)})"
    return None


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def _is_ca(cert: x509.Certificate) -> bool:
    ku = _key_usage(cert)
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    return bc.ca and ku is not None and ku.key_cert_sign


class TrustStore:
    """Trusted CSCA certificates. Trust comes from where you got them (ICAO PKD, a national master
    list, the issuing state's website), not from anything in the files."""

    __slots__ = ("_anchors",)

    def __init__(self, certificates: Iterable[x509.Certificate] = ()) -> None:
        anchors: list[_Cert] = []
        seen: set[bytes] = set()
        for c in certificates:
            if not isinstance(c, x509.Certificate):
                raise ChipError("A trust store holds cryptography x509.Certificate objects.",
                                fix="Load CSCA files with TrustStore.from_paths / from_pem / from_master_list.",
                                code="chip_trust_store_invalid")
            der = c.public_bytes(serialization.Encoding.DER)
            if der in seen:
                continue
            seen.add(der)
            try:
                anchors.append(_Cert.load(der))
            except Exception as exc:  # noqa: BLE001 - asn1crypto is stricter than cryptography on some names
                raise ChipError("A CSCA certificate could not be parsed.", fix="Remove it from the trust store.",
                                code="chip_trust_store_invalid") from exc
        self._anchors = tuple(anchors)

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        return tuple(a.crypto for a in self._anchors)

    def __len__(self) -> int:
        return len(self._anchors)

    def __iter__(self) -> Iterator[x509.Certificate]:
        return iter(self.certificates)

    def __add__(self, other: TrustStore) -> TrustStore:
        return TrustStore((*self.certificates, *other.certificates))

    def __repr__(self) -> str:
        return f"TrustStore({len(self)} CSCA certificate{'s' if len(self) != 1 else ''})"

    @classmethod
    def from_pem(cls, data: bytes | str) -> TrustStore:
        """One or more PEM certificates."""
        raw = data.encode() if isinstance(data, str) else bytes(data)
        try:
            return cls(x509.load_pem_x509_certificates(raw))
        except ValueError as exc:
            raise ChipError("No readable PEM certificate found in the CSCA data.",
                            fix="Pass PEM text with -----BEGIN CERTIFICATE----- blocks.",
                            code="chip_trust_store_invalid") from exc

    @classmethod
    def from_paths(cls, paths: Iterable[Path | str]) -> TrustStore:
        """PEM or DER certificates or CSCA master lists; a directory contributes its .pem/.crt/.cer/
        .der/.ml files (not recursively)."""
        certs: list[x509.Certificate] = []
        for p in map(Path, paths):
            if p.is_dir():
                files = sorted(f for f in p.iterdir()
                               if f.suffix.lower() in {".pem", ".crt", ".cer", ".der", ".ml"} and f.is_file())
            else:
                files = [p]
            for f in files:
                certs.extend(_read_trust_file(f))
        if not certs:
            raise ChipError("No CSCA certificates found in the given paths.",
                            fix="Point to CSCA certificate files (PEM/DER) or an ICAO CSCA master list (.ml).",
                            code="chip_trust_store_invalid")
        return cls(certs)

    @classmethod
    def from_master_list(cls, data: bytes, *, verify_with: TrustStore | None = None,
                         at: datetime | None = None) -> TrustStore:
        """The CSCAs in an ICAO CSCA master list (CMS SignedData, eContentType 2.23.136.1.1.2).

        With ``verify_with``, the list's signature and its signer's chain to a CSCA in
        ``verify_with`` (e.g. the publishing state's CSCA) must check out, else ``ChipError``.
        Without it the list is taken as is, like any other certificate file.
        """
        fix = "Pass the master list file as published (a DER CMS object, usually .ml)."
        try:
            signed = _open_signed_data(bytes(data))
            if signed.content_type != OID_CSCA_MASTER_LIST:
                raise _Malformed(f"content type {signed.content_type} is not a CSCA master list")
            ml = CscaMasterList.load(signed.econtent, strict=True)
            ders = [c.dump() for c in ml["cert_list"]]
        except Exception as exc:  # noqa: BLE001 - any parser error means "not a master list"
            raise ChipError("The data is not a readable ICAO CSCA master list.", fix=fix,
                            code="chip_trust_store_invalid") from exc
        if verify_with is not None:
            report = _Report()
            signer = _verify_signer(signed, report, who="master list signer")
            if signer is not None:
                _verify_chain(signer, verify_with, _as_utc(at), report, who="master list signer")
            if report.failures:
                raise ChipError(f"The master list does not verify: {report.failures[0].text}",
                                fix="Check that the master list and the CSCA used to verify it belong together.",
                                code="chip_trust_store_invalid")
        certs = []
        for der in ders:
            try:
                certs.append(_Cert.load(der).crypto)
            except Exception:  # noqa: BLE001 - one unreadable entry must not void the whole list
                continue
        if not certs:
            raise ChipError("The master list holds no readable certificates.", fix=fix,
                            code="chip_trust_store_invalid")
        return cls(certs)


def _read_trust_file(path: Path) -> list[x509.Certificate]:
    fix = "Point to CSCA certificate files (PEM/DER) or an ICAO CSCA master list (.ml)."
    data = _read_bounded(path, MAX_TRUST_FILE_BYTES, fix)
    if b"-----BEGIN" in data:
        try:
            return x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise ChipError(f"The PEM file {path.name!r} holds no readable certificate.", fix=fix,
                            code="chip_trust_store_invalid") from exc
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        pass
    try:
        return list(TrustStore.from_master_list(data).certificates)
    except ChipError as exc:
        raise ChipError(f"{path.name!r} is neither a certificate nor a CSCA master list.", fix=fix,
                        code="chip_trust_store_invalid") from exc


def _read_bounded(path: Path, limit: int, fix: str) -> bytes:
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise ChipError(f"{path.name!r} is not a regular file.", fix=fix, code="chip_files_missing")
        if st.st_size > limit:
            raise ChipError(f"{path.name!r} is {st.st_size:,} bytes, over the limit of {limit:,}.", fix=fix)
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError as exc:
        raise ChipError(f"File not found: {path.name!r}.", fix=fix, code="chip_files_missing") from exc
    except OSError as exc:
        raise ChipError(f"Could not read {path.name!r} ({type(exc).__name__}).", fix=fix,
                        code="chip_files_missing") from exc
    if len(data) > limit:
        raise ChipError(f"{path.name!r} is over the limit of {limit:,} bytes.", fix=fix)
    return data


# --- chip files -------------------------------------------------------------------------------------------

_EXTENSIONS = (".bin", ".der", ".dat", ".raw", ".ber")
_NAME_RE = re.compile(r"^(?:ef[._\- ]?)?(?:(sod)|(com)|(?:dg|data[_\- ]?group[_\- ]?)0*(\d{1,2}))$")
_FIDS = {"011d": "SOD", "011e": "COM", **{f"01{n:02x}": f"DG{n}" for n in range(1, 17)}}
_FILE_NAMES_HELP = "EF_SOD.bin / EF.SOD / SOD.bin / sod, EF_DG1.bin / DG1.bin / dg1, ... (or file IDs 011D, 0101, ...)"


def _file_key(name: str) -> str | None:
    stem = name.lower()
    for ext in _EXTENSIONS:
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
            break
    if stem in _FIDS:
        return _FIDS[stem]
    m = _NAME_RE.match(stem)
    if not m:
        return None
    if m.group(1):
        return "SOD"
    if m.group(2):
        return "COM"
    n = int(m.group(3))
    return f"DG{n}" if 1 <= n <= 16 else None


def load_chip_files(folder: Path | str) -> dict[str, bytes]:
    """Read an NFC app's dump of the chip: ``{"SOD": ..., "DG1": ..., "DG2": ..., "COM": ...}``.

    Names are matched case-insensitively (see ``_FILE_NAMES_HELP``). Empty files (placeholders for
    data groups the app could not read) are skipped. Raises ``ChipError`` when the folder is
    missing, has no EF.SOD, two files claim the same data group, or a file does not start with the
    LDS tag of the file it is named after.
    """
    folder = Path(folder)
    fix = f"Point to the folder the NFC reader app exported; expected names like {_FILE_NAMES_HELP}."
    if not folder.is_dir():
        raise ChipError(f"Chip data folder not found: {folder.name!r}.", fix=fix, code="chip_files_missing")
    out: dict[str, bytes] = {}
    origin: dict[str, str] = {}
    for f in sorted(folder.iterdir()):
        key = _file_key(f.name)
        if key is None or not f.is_file():
            continue
        data = _read_bounded(f, MAX_FILE_BYTES, fix)
        if not data:
            continue
        if data[0] != _EF_TAGS[key]:
            hint = " It looks like hex text: convert it to raw bytes (e.g. xxd -r -p)." if re.fullmatch(
                rb"[0-9A-Fa-f\s]+", data[:256]) else ""
            raise ChipError(
                f"{f.name!r} is not an LDS {key} file: it starts with 0x{data[0]:02X}, expected "
                f"0x{_EF_TAGS[key]:02X}.{hint}",
                fix="Export the raw elementary-file bytes from the NFC reader app.", code="chip_unreadable")
        if key in out and out[key] != data:
            raise ChipError(f"Both {origin[key]!r} and {f.name!r} claim to be {key}, with different content.",
                            fix="Keep one dump per folder.", code="chip_unreadable")
        out[key], origin[key] = data, f.name
    if "SOD" not in out:
        raise ChipError(f"No EF.SOD file in {folder.name!r}: passive authentication needs it.", fix=fix,
                        code="chip_files_missing")
    return out


# --- passive authentication -------------------------------------------------------------------------------


class _Report:
    def __init__(self) -> None:
        self.checks: dict[str, bool] = {}
        self.failures: list[ChipFailure] = []
        self.signature_algorithm: str | None = None

    def fail(self, code: str, text: str, qualifier: str = "") -> None:
        self.failures.append(ChipFailure(code, qualifier, text))


@dataclass(frozen=True)
class _Signed:
    content_type: str
    econtent: bytes
    signed_data: cms.SignedData
    signer_info: cms.SignerInfo


def _open_signed_data(blob: bytes) -> _Signed:
    ci = cms.ContentInfo.load(blob, strict=True)
    if ci["content_type"].dotted != "1.2.840.113549.1.7.2":
        raise _Malformed("not a CMS SignedData")
    sd = ci["content"]
    eci = sd["encap_content_info"]
    content = eci["content"]
    econtent = content.native if not isinstance(content, core.Void) else None
    if not isinstance(econtent, bytes):
        raise _Malformed("the signed content is missing")
    infos = sd["signer_infos"]
    if len(infos) < 1:
        raise _Malformed("no SignerInfo")
    # asn1crypto parses lazily: parse every CMS field now, so garbage anywhere (even in fields we do
    # not use) is "malformed" here rather than surfacing half-way through the checks.
    _ = (sd["version"].native, sd["digest_algorithms"].native, infos.native)
    return _Signed(eci["content_type"].dotted, econtent, sd, infos[0])


def _signer_certificate(signed: _Signed) -> _Cert | None:
    sid = signed.signer_info["sid"]
    certs = signed.signed_data["certificates"]
    if isinstance(certs, core.Void):
        return None
    for choice in certs:
        if choice.name != "certificate":
            continue
        c = choice.chosen
        if sid.name == "issuer_and_serial_number":
            ok = c.issuer == sid.chosen["issuer"] and c.serial_number == sid.chosen["serial_number"].native
        else:
            ok = c.key_identifier is not None and c.key_identifier == sid.chosen.native
        if ok:
            return _Cert.load(c.dump())
    return None


def _verify_signer(signed: _Signed, r: _Report, *, who: str = "document signer") -> _Cert | None:
    """CMS signature check (RFC 5652 §5.4/5.6). Sets checks["sod_signature"]; returns the signer cert."""
    si = signed.signer_info
    try:
        signer = _signer_certificate(signed)
    except Exception:  # noqa: BLE001 - hostile certificate bytes
        signer = None
    if signer is None:
        r.fail("dsc_not_found", f"The {who} certificate that made the signature is not in the signed data, "
               "so the signature cannot be checked.")
        return None
    try:
        digest_name = _hash_name(si["digest_algorithm"])
        attrs = si["signed_attrs"]
        if isinstance(attrs, core.Void):
            to_verify = signed.econtent  # allowed by CMS, unusual for ICAO
        else:
            found: dict[str, list] = {}
            for a in attrs:
                found.setdefault(a["type"].dotted, []).append(a["values"])
            ct, md = found.get("1.2.840.113549.1.9.3"), found.get("1.2.840.113549.1.9.4")
            if not ct or not md or len(ct) != 1 or len(md) != 1 or len(ct[0]) != 1 or len(md[0]) != 1:
                raise _BadSignature("the signed attributes lack a single contentType and messageDigest")
            if ct[0][0].dotted != signed.content_type:
                raise _BadSignature("the signed contentType attribute does not match the content")
            if md[0][0].native != _digest(digest_name, signed.econtent):
                raise _BadSignature("the signed messageDigest does not match the content")
            # The signature covers the DER SET OF attributes, not the [0] IMPLICIT tag it travels in.
            raw = attrs.dump()
            to_verify = b"\x31" + raw[1:]
        alg = _verify(signer.public_key(), si["signature"].native, to_verify, si["signature_algorithm"], digest_name)
    except _Unsupported as exc:
        r.fail("unsupported_algorithm", f"The {who} signature uses {exc} that idproof cannot verify.")
        r.checks["sod_signature"] = False
        return None
    except _BadSignature as exc:
        r.fail("chip_signature_invalid", f"The {who} signature does not verify ({exc}): the data was "
               "altered after signing or does not come from the issuer.")
        r.checks["sod_signature"] = False
        return None
    r.checks["sod_signature"] = True
    r.signature_algorithm = alg
    return signer


def _verify_chain(dsc: _Cert, trust: TrustStore, at: datetime, r: _Report, *,
                  who: str = "document signer") -> _Cert | None:
    """DSC issued by a trusted CSCA (names + signature), then validity and key usage of both."""
    try:
        issuer = dsc.asn1.issuer
        candidates = [a for a in trust._anchors if a.asn1.subject == issuer]
        aki = dsc.asn1.authority_key_identifier
        candidates.sort(key=lambda a: aki is None or a.asn1.key_identifier != aki)  # key-id matches first
    except Exception:  # noqa: BLE001 - hostile name / extension encodings
        candidates = []
    issuers: list[_Cert] = []
    unsupported: str | None = None
    for cand in candidates:
        try:
            cand.issued(dsc)
            issuers.append(cand)
        except _Unsupported as exc:
            unsupported = str(exc)
        except Exception:  # noqa: BLE001 - _BadSignature or hostile bytes: "not this CSCA"
            continue
    r.checks["dsc_chain"] = bool(issuers)
    issuer_name = _name_text(dsc)
    if not issuers:
        if unsupported is not None:
            r.fail("unsupported_algorithm", f"The CSCA signature on the {who} certificate uses {unsupported} "
                   "that idproof cannot verify.")
        elif candidates:
            r.fail("csca_untrusted", f"The {who} certificate names a trusted CSCA ({issuer_name}) as its issuer, "
                   "but that CSCA's signature on it does not verify: the certificate is forged or altered.")
        else:
            r.fail("csca_untrusted", f"No CSCA in the trust store issued the {who} certificate (issuer: "
                   f"{issuer_name}). Add that country's CSCA certificate (e.g. from the ICAO or a national "
                   "master list) - otherwise the document is not genuine.")
    # Several CSCA certificates can share one key (re-issued with a longer validity): prefer one
    # that is valid now and allowed to sign certificates.
    issuers.sort(key=lambda a: (_validity(a.crypto, at) is not None, not _is_ca(a.crypto)))
    csca = issuers[0] if issuers else None

    problem = _validity(dsc.crypto, at)
    r.checks["dsc_validity"] = problem is None
    if problem:
        r.fail("dsc_expired", f"The {who} certificate is {problem}.")
    ku = _key_usage(dsc.crypto)
    r.checks["dsc_key_usage"] = ku is not None and ku.digital_signature
    if not r.checks["dsc_key_usage"]:
        r.fail("dsc_key_usage_invalid", f"The {who} certificate is not allowed to make signatures (its key "
               "usage lacks digitalSignature).")
    if csca is not None:
        problem = _validity(csca.crypto, at)
        r.checks["csca_validity"] = problem is None
        if problem:
            r.fail("csca_expired", f"The issuing CSCA certificate ({csca.subject}) is {problem}.")
        r.checks["csca_key_usage"] = _is_ca(csca.crypto)
        if not r.checks["csca_key_usage"]:
            r.fail("csca_untrusted", f"The issuing CSCA certificate ({csca.subject}) is not a CA allowed to sign "
                   "certificates (basicConstraints CA / keyCertSign missing).")
    return csca


def _name_text(cert: _Cert) -> str:
    try:
        return cert.crypto.issuer.rfc4514_string()
    except Exception:  # noqa: BLE001
        return "(unreadable name)"


def _as_utc(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(timezone.utc)
    if not isinstance(at, datetime):
        raise ChipError("`at` must be a datetime.", fix="Pass e.g. datetime.now(timezone.utc).")
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise ChipError(f"{what} must be bytes, got {type(data).__name__}.", fix="Pass the raw file content as bytes.")


_KEY_RE = re.compile(r"^(?:ef[._]?)?dg0*(\d{1,2})$", re.I)


def _data_groups(groups: Mapping[int | str, bytes]) -> dict[int, bytes]:
    if not isinstance(groups, Mapping):
        raise ChipError("data_groups must be a mapping such as {1: dg1_bytes, 2: dg2_bytes}.",
                        fix="Pass the dict from load_chip_files or {1: ..., 2: ...}.")
    out: dict[int, bytes] = {}
    for key, value in groups.items():
        if isinstance(key, str) and key.upper() in ("SOD", "COM", "EF.SOD", "EF.COM"):
            continue  # the dict from load_chip_files can be passed as is
        if isinstance(key, int) and not isinstance(key, bool):
            n = key
        elif isinstance(key, str) and (m := _KEY_RE.match(key.strip())):
            n = int(m.group(1))
        else:
            n = 0
        if not 1 <= n <= 16:
            raise ChipError(f"Unknown data group key {key!r}.", fix="Use 1..16 or 'DG1'..'DG16'.")
        out[n] = _as_bytes(value, f"DG{n}")
    return out


def _dg_label(n: int) -> str:
    return f"Data group {n}" + (f" ({_DG_NAMES[n]})" if n in _DG_NAMES else "")


def passive_authentication(
    sod: bytes,
    data_groups: Mapping[int | str, bytes],
    trust: TrustStore,
    *,
    at: datetime | None = None,
) -> ChipReading:
    """Check EF.SOD, its signature, the DSC -> CSCA chain and every data group's hash; read DG1/DG2.

    ``data_groups`` maps 1..16 or "DG1".."DG16" to file bytes (the dict from ``load_chip_files``
    works as is). DG1 and DG2 are required. Data groups supplied but not listed in EF.SOD are
    ignored (never read). Certificates are checked at ``at`` (default now; see the module docstring).

    Never raises on hostile bytes: every problem becomes a ``ChipFailure``. ``ChipError`` only when
    the arguments themselves are unusable (wrong types, unknown data-group keys).
    """
    sod_bytes = _as_bytes(sod, "EF.SOD")
    groups = _data_groups(data_groups)
    if not isinstance(trust, TrustStore):
        raise ChipError("trust must be a TrustStore.", fix="Build one with TrustStore.from_paths(...).")
    at = _as_utc(at)

    r = _Report()
    # Every check starts failed; only what actually ran and passed turns True.
    for k in ("sod_parsed", "sod_signature", "dsc_chain", "dsc_validity", "csca_validity", "dsc_key_usage",
              "csca_key_usage", "dg_hash:DG1", "dg_hash:DG2", "dg_parsed:DG1", "dg_parsed:DG2"):
        r.checks[k] = False
    signature_algorithm = hash_name = dsc_subject = csca_subject = None
    sod_hashes: dict[int, bytes] | None = None

    # 1. EF.SOD structure
    signed: _Signed | None = None
    try:
        signed, sod_hashes, hash_name = _read_sod(sod_bytes)
        r.checks["sod_parsed"] = True
    except _Unsupported as exc:
        r.checks["sod_parsed"] = True
        r.fail("unsupported_algorithm", f"EF.SOD hashes the data groups with {exc}, which idproof cannot check.")
    except ChipError as exc:
        r.fail("sod_malformed", f"EF.SOD could not be read ({exc.message}). Read the chip again; if it keeps "
               "failing, the chip data is damaged or not an ICAO 9303 security object.")
    except Exception as exc:  # noqa: BLE001 - asn1crypto raises many types on hostile input
        detail = str(exc) if isinstance(exc, _Malformed) else f"invalid ASN.1: {type(exc).__name__}"
        r.fail("sod_malformed", f"EF.SOD could not be read ({detail}). Read the chip again; if it keeps "
               "failing, the chip data is damaged or not an ICAO 9303 security object.")
    if signed is None and sod_hashes is None:
        try:  # the SOD may still be signed even when its hash algorithm is unsupported
            signed = _open_signed_data(read_tlv(sod_bytes).value)
        except Exception:  # noqa: BLE001
            signed = None

    # 2. signature and 3. chain
    if signed is not None:
        try:
            dsc = _verify_signer(signed, r)
            if dsc is not None:
                dsc_subject = dsc.subject
                signature_algorithm = r.signature_algorithm
                csca = _verify_chain(dsc, trust, at, r)
                csca_subject = csca.subject if csca else None
        except Exception as exc:  # noqa: BLE001 - a last line of defence; the checks stay failed
            r.fail("sod_malformed", f"EF.SOD's signature data could not be read (invalid ASN.1: "
                   f"{type(exc).__name__}). Read the chip again; if it keeps failing, the chip data is damaged.")

    # 4. data-group hashes
    for n in sorted(set(groups) | {1, 2}):
        name = f"DG{n}"
        if n not in groups:
            if n in (1, 2):
                r.fail("dg_missing", f"{_dg_label(n)} was not supplied; read it from the chip.", name)
            continue
        if sod_hashes is None:
            continue  # EF.SOD unusable: already reported
        if n not in sod_hashes:
            if n in (1, 2):
                r.fail("dg_missing", f"EF.SOD holds no hash for {_dg_label(n).lower()}, so it cannot be "
                       "authenticated.", name)
            continue
        ok = _digest(hash_name, _ef_content(groups[n])) == sod_hashes[n]  # type: ignore[arg-type]
        r.checks[f"dg_hash:{name}"] = ok
        if not ok:
            r.fail("dg_hash_mismatch", f"{_dg_label(n)} does not match the hash signed in EF.SOD: it was altered "
                   "or read incorrectly.", name)

    # 5. contents
    mrz = rgb = fmt = None
    if 1 in groups:
        try:
            mrz = _read_dg1(_ef_content(groups[1]), at)
            r.checks["dg_parsed:DG1"] = True
        except Exception as exc:  # noqa: BLE001 - every parse problem is a failure, never an exception
            r.fail("dg_malformed", f"{_dg_label(1)} could not be parsed ({_detail(exc)}).", "DG1")
    if 2 in groups:
        try:
            rgb, fmt = _read_dg2(_ef_content(groups[2]))
            r.checks["dg_parsed:DG2"] = True
        except Exception as exc:  # noqa: BLE001
            r.fail("dg_malformed", f"{_dg_label(2)} could not be parsed ({_detail(exc)}).", "DG2")

    return ChipReading(
        mrz=mrz,
        portrait_rgb=rgb,
        portrait_format=fmt,
        failures=tuple(r.failures),
        checks=dict(r.checks),
        hash_algorithm=hash_name,
        dsc_subject=dsc_subject,
        csca_subject=csca_subject,
        signature_algorithm=signature_algorithm,
    )


def _detail(exc: Exception) -> str:
    # Our own messages are written to be log-safe; foreign ones (Pillow, asn1crypto) can quote bytes.
    if isinstance(exc, (_Malformed, MrzError, ChipError, ImageError)):
        return exc.message if isinstance(exc, IdproofError) else str(exc)
    return type(exc).__name__


def _read_sod(sod: bytes) -> tuple[_Signed, dict[int, bytes], str]:
    outer = read_tlv(sod)
    if outer.tag != 0x77:
        raise _Malformed(f"it starts with tag 0x{outer.tag:X}, not 0x77")
    rest = sod[outer.end:]
    if rest.strip(b"\x00") and rest.strip(b"\xff"):
        raise _Malformed("unexpected bytes after the security object")
    signed = _open_signed_data(outer.value)
    if signed.content_type != OID_LDS_SECURITY_OBJECT:
        raise _Malformed(f"the signed content type is {signed.content_type}, not an LDS security object")
    lds = LdsSecurityObject.load(signed.econtent, strict=True)
    hashes_: dict[int, bytes] = {}
    for item in lds["data_group_hash_values"]:
        n = item["data_group_number"].native
        value = item["data_group_hash_value"].native
        if not isinstance(n, int) or not 1 <= n <= 16 or n in hashes_:
            raise _Malformed("invalid or repeated data group number in the hash list")
        hashes_[n] = value
    return signed, hashes_, _hash_name(lds["hash_algorithm"])


# --- DG1 / DG2 contents -------------------------------------------------------------------------------------

_MRZ_SHAPES = {90: (3, 30), 72: (2, 36), 88: (2, 44)}


def _read_dg1(data: bytes, at: datetime) -> MrzResult:
    outer = read_tlv(data)
    if outer.tag != 0x61:
        raise _Malformed(f"tag 0x{outer.tag:X} instead of 0x61")
    mrz_tlv = _child(outer.value, 0x5F1F)
    if mrz_tlv is None:
        raise _Malformed("no MRZ element (tag 5F1F)")
    try:
        text = mrz_tlv.value.decode("ascii")
    except UnicodeDecodeError as exc:
        raise _Malformed("the MRZ is not ASCII text") from exc
    if len(text) in _MRZ_SHAPES:
        rows, width = _MRZ_SHAPES[len(text)]
        return parse_mrz([text[i * width:(i + 1) * width] for i in range(rows)], today=at.date())
    return parse_mrz(text, today=at.date())


# Image signatures, for facial records whose header we cannot walk.
_JPEG_SOI = b"\xff\xd8\xff"
_JP2_BOX = b"\x00\x00\x00\x0c\x6a\x50\x20\x20"
_J2K_SOC = b"\xff\x4f\xff\x51"


def _read_dg2(data: bytes) -> tuple[np.ndarray, str]:
    outer = read_tlv(data)
    if outer.tag != 0x75:
        raise _Malformed(f"tag 0x{outer.tag:X} instead of 0x75")
    group = _child(outer.value, 0x7F61)  # Biometric Information Group Template
    if group is None:
        raise _Malformed("no biometric information group (tag 7F61)")
    for bit in iter_tlv(group.value):
        if bit.tag != 0x7F60:  # skips 0x02, the instance count
            continue
        for t in iter_tlv(bit.value):
            if t.tag in (0x5F2E, 0x7F2E):  # biometric data block
                image, fmt = _facial_image(t.value)
                return _decode_portrait(image, fmt), fmt
    raise _Malformed("no biometric data block (tag 5F2E)")


def _facial_image(bdb: bytes) -> tuple[bytes, str]:
    """The first image of an ISO/IEC 19794-5 facial record."""
    if bdb[:8] == b"FAC\x00010\x00":  # the 2005 edition, which ICAO 9303 prescribes
        try:
            return _walk_19794_5(bdb)
        except _Malformed:
            pass  # inconsistent header: fall back to the signature scan
    hits = [(bdb.find(sig), fmt) for sig, fmt in ((_JPEG_SOI, "jpeg"), (_JP2_BOX, "jpeg2000"), (_J2K_SOC, "jpeg2000"))]
    hits = [(i, fmt) for i, fmt in hits if i >= 0]
    if not hits:
        raise _Malformed("no JPEG or JPEG 2000 image in the facial record")
    i, fmt = min(hits)
    return bdb[i:], fmt


def _walk_19794_5(bdb: bytes) -> tuple[bytes, str]:
    # General header (14): "FAC\0" "010\0" record length (4) number of images (2)
    record_len = int.from_bytes(bdb[8:12], "big")
    if len(bdb) < 14 or not 14 < record_len <= len(bdb) or int.from_bytes(bdb[12:14], "big") < 1:
        raise _Malformed("facial record header")
    p = 14
    # Facial information (20): block length (4) feature points (2) gender, eyes, hair, mask (3),
    # expression (2), pose (3), pose uncertainty (3); then 8 bytes per feature point.
    block_len = int.from_bytes(bdb[p:p + 4], "big")
    points = int.from_bytes(bdb[p + 4:p + 6], "big")
    info = p + 20 + 8 * points
    # Image information (12): face image type, image data type (0 JPEG, 1 JPEG 2000), width, height, ...
    start, end = info + 12, p + block_len
    if not start < end <= record_len:
        raise _Malformed("facial record lengths")
    fmt = {0: "jpeg", 1: "jpeg2000"}.get(bdb[info + 1])
    image = bdb[start:end]
    if fmt == "jpeg" and image.startswith(_JPEG_SOI):
        return image, fmt
    if fmt == "jpeg2000" and (image.startswith(_JP2_BOX) or image.startswith(_J2K_SOC)):
        return image, fmt
    raise _Malformed("image type does not match the image data")


def _decode_portrait(image: bytes, fmt: str) -> np.ndarray:
    from idproof.imageio import _from_array, _load_strict, _pil_to_array  # the project's one decode path

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(image), formats=["JPEG2000" if fmt == "jpeg2000" else "JPEG"]) as img:
                if img.width * img.height > MAX_PORTRAIT_PIXELS:  # header only: nothing decoded yet
                    raise _Malformed(f"portrait of {img.width}x{img.height} pixels is over the limit")
                _load_strict(img)
                arr = _pil_to_array(img)
    except _Malformed:
        raise
    except Exception as exc:  # noqa: BLE001 - decoder errors may quote bytes; report the type only
        raise _Malformed(f"the {fmt.upper()} portrait cannot be decoded ({type(exc).__name__})") from exc
    return _from_array(arr, "chip portrait", MAX_PORTRAIT_PIXELS)
