"""C2PA Content Credentials: read the manifest store offline and say what it claims and whether it holds.

c2pa-python is imported lazily, configured never to touch the network (no remote manifests, no OCSP),
and every read runs in a worker thread with a deadline so a hostile file cannot stall an analysis.
"""

from __future__ import annotations

import io
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from pixelcheck.analysis.detector.verdict import SignatureState

# IPTC digital source types (last path segment of the cv.iptc.org URI).
AI_SOURCE_TYPES = frozenset(
    {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia", "algorithmicMedia", "compositeSynthetic"}
)
CAPTURE_SOURCE_TYPES = frozenset(
    {"digitalCapture", "negativeFilm", "positiveFilm", "minorHumanEdits", "compositeCapture"}
)

# Failures that concern the signing certificate's standing, not the integrity of the content.
CREDENTIAL_ONLY_CODES = frozenset(
    {
        "signingCredential.untrusted",
        "signingCredential.expired",
        "signingCredential.ocsp.unknown",
        "signingCredential.ocsp.skipped",
        "timeStamp.untrusted",
        "timeStamp.mismatch",
        "timeStamp.outsideValidity",
        "cawg.x509.credential.untrusted",
    }
)
_IGNORED_CODES = frozenset(
    {"signingCredential.untrusted", "cawg.x509.credential.untrusted"}
)  # no trust list configured
# Never touch the network because of an uploaded file: no remote manifests, no OCSP, no host allowed at all;
# and cap how far an embedded (compressed) manifest may inflate in memory.
_OFFLINE_SETTINGS = {
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
    "core": {"allowed_network_hosts": [], "max_decompressed_manifest_size_in_mb": 32},
}
_MAX_BYTES = 200 * 1024 * 1024  # larger than any accepted upload; refuses anything absurd outright


@dataclass(frozen=True)
class CredentialFindings:
    """What the manifest store says, reduced to what the verdict needs."""

    present: bool = False
    state: SignatureState = SignatureState.ABSENT
    claim_generator: str = ""
    signer: str = ""
    source_type: str = ""  # the most telling digital source type found in any manifest
    source_in_ingredient: bool = False  # True when that statement sits in an ingredient, not the active manifest
    errors: tuple[str, ...] = ()  # validation failure codes, untrusted-signer notices left out
    credential_only: bool = False  # INVALID only because the certificate expired / is not trusted
    remote_reference: bool = False  # the file points to a manifest online, which is never fetched
    notes: tuple[str, ...] = field(default_factory=tuple)


def _short_source_type(value: object) -> str:
    """'http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia' → 'trainedAlgorithmicMedia'."""
    return str(value).strip().rstrip("/").rsplit("/", 1)[-1] if value else ""


def _source_types(manifest: dict[str, Any]) -> list[str]:
    """Digital source types declared by the actions assertions of one manifest."""
    found: list[str] = []
    for assertion in manifest.get("assertions") or []:
        if not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        for action in (assertion.get("data") or {}).get("actions") or []:
            short = _short_source_type(action.get("digitalSourceType"))
            if short:
                found.append(short)
    return found


def _claim_generator(manifest: dict[str, Any]) -> str:
    """Human-readable claim generator: name and version from claim_generator_info, else the legacy string."""
    infos = manifest.get("claim_generator_info") or []
    if infos and isinstance(infos[0], dict) and infos[0].get("name"):
        first = infos[0]
        return f"{first['name']} {first.get('version', '')}".strip()
    return str(manifest.get("claim_generator", ""))


def interpret_manifest_store(store: dict[str, Any], state_name: str) -> CredentialFindings:
    """Reduce the reader's JSON (and its validation state) to findings; pure, so it is easy to test."""
    manifests: dict[str, Any] = store.get("manifests") or {}
    active_label = store.get("active_manifest") or ""
    active = manifests.get(active_label) or {}
    codes = [str(item.get("code", "")) for item in store.get("validation_status") or []]
    errors = tuple(dict.fromkeys(code for code in codes if code and code not in _IGNORED_CODES))
    state = SignatureState.INVALID if state_name.lower() == "invalid" else SignatureState.VALID
    ai_type, capture_type, ai_in_ingredient = "", "", False
    for label, manifest in manifests.items():
        for short in _source_types(manifest):
            if short in AI_SOURCE_TYPES and (not ai_type or label == active_label):
                ai_type, ai_in_ingredient = short, label != active_label
            elif short in CAPTURE_SOURCE_TYPES and (not capture_type or label == active_label):
                capture_type = short
    # An AI statement anywhere in the history outweighs a capture statement: the AI content is in there.
    source_type = ai_type or capture_type
    signature = active.get("signature_info") or {}
    return CredentialFindings(
        present=True,
        state=state,
        claim_generator=_claim_generator(active),
        signer=str(signature.get("issuer") or signature.get("common_name") or ""),
        source_type=source_type,
        source_in_ingredient=bool(ai_type) and ai_in_ingredient,
        errors=errors,
        credential_only=state is SignatureState.INVALID and all(code in CREDENTIAL_ONLY_CODES for code in errors),
    )


class CredentialReader:
    """Reads C2PA manifests offline with a per-file deadline; one instance per detector, thread-safe."""

    def __init__(self, timeout_seconds: float = 5.0) -> None:
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._context: Any = None
        self._module: Any = None
        self._unavailable_reason = ""
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="c2pa")

    def _load(self) -> Any:
        """Import c2pa and build the offline context once; remember why if it cannot be loaded."""
        with self._lock:
            if self._module is None and not self._unavailable_reason:
                try:
                    import c2pa  # imported here: a heavy native library only the provenance stage needs

                    self._context = c2pa.Context.from_dict(_OFFLINE_SETTINGS)
                    self._module = c2pa
                except Exception as error:  # a broken native library must not take the service down
                    self._unavailable_reason = f"C2PA library unavailable: {error}"
            return self._module

    def _read(self, source: bytes | str) -> CredentialFindings:
        """Blocking read of one file's manifest store."""
        c2pa = self._load()
        if c2pa is None:
            return CredentialFindings(notes=(self._unavailable_reason,))
        with open(source, "rb") if isinstance(source, str) else io.BytesIO(source) as stream:
            return self._read_stream(c2pa, stream)

    def _read_stream(self, c2pa: Any, stream: BinaryIO) -> CredentialFindings:
        try:
            reader = c2pa.Reader.try_create(stream, context=self._context)
        except Exception as error:
            message = str(error)
            if "remote" in message.lower():
                return CredentialFindings(remote_reference=True, notes=("remote manifest reference not fetched",))
            if "notsupported" in message.lower().replace(" ", "") or "unsupported" in message.lower():
                return CredentialFindings()
            return CredentialFindings(present=True, state=SignatureState.UNREADABLE, errors=(message[:200],))
        if reader is None:
            return CredentialFindings()
        with reader:
            store = json.loads(reader.json())
            state_name = str(reader.get_validation_state() or "")
        return interpret_manifest_store(store, state_name)

    def read(self, source: bytes | str) -> CredentialFindings:
        """Findings for one file (its bytes, or its path: a video clip's local copy); never raises, never waits
        longer than the deadline."""
        try:
            size = len(source) if isinstance(source, bytes) else os.path.getsize(source)
        except OSError:
            size = 0
        if not size or size > _MAX_BYTES:
            return CredentialFindings()
        future = self._pool.submit(self._read, source)
        try:
            return future.result(timeout=self._timeout)
        except FutureTimeout:
            return CredentialFindings(
                present=True, state=SignatureState.UNREADABLE, errors=("manifest read timed out",)
            )
        except Exception as error:
            return CredentialFindings(present=True, state=SignatureState.UNREADABLE, errors=(str(error)[:200],))

    def close(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
