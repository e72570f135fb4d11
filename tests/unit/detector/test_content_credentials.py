"""C2PA manifests: what they claim, whether they hold, and that reading them never goes online."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pixelcheck.analysis.detector.content_credentials import CredentialReader, interpret_manifest_store
from pixelcheck.analysis.detector.verdict import SignatureState

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


def _manifest(source_type: str | None, issuer: str = "OpenAI", generator: str = "ChatGPT") -> dict:
    action = {"action": "c2pa.created", **({"digitalSourceType": source_type} if source_type else {})}
    return {
        "claim_generator_info": [{"name": generator}],
        "signature_info": {"issuer": issuer},
        "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": [action]}}],
    }


def _store(active: dict, ingredient: dict | None = None, codes: tuple[str, ...] = ()) -> dict:
    manifests = {"urn:active": active, **({"urn:ingredient": ingredient} if ingredient else {})}
    return {"active_manifest": "urn:active", "manifests": manifests, "validation_status": [{"code": c} for c in codes]}


def test_ai_statement_in_ingredient_manifest_is_found() -> None:
    store = _store(_manifest(None), ingredient=_manifest(TRAINED))
    found = interpret_manifest_store(store, "Valid")
    assert found.source_type == "trainedAlgorithmicMedia" and found.source_in_ingredient
    assert found.claim_generator == "ChatGPT" and found.signer == "OpenAI"


def test_expired_certificate_is_invalid_but_credential_only() -> None:
    found = interpret_manifest_store(
        _store(_manifest(TRAINED), codes=("signingCredential.untrusted", "signingCredential.expired")), "Invalid"
    )
    assert found.state is SignatureState.INVALID and found.credential_only
    assert found.errors == ("signingCredential.expired",)


def test_tampered_manifest_is_not_credential_only() -> None:
    found = interpret_manifest_store(_store(_manifest(TRAINED), codes=("assertion.dataHash.mismatch",)), "Invalid")
    assert found.state is SignatureState.INVALID and not found.credential_only


def test_capture_statement_with_untrusted_test_signer_is_valid() -> None:
    found = interpret_manifest_store(_store(_manifest(" " + CAPTURE), codes=("signingCredential.untrusted",)), "Valid")
    assert found.state is SignatureState.VALID and found.source_type == "digitalCapture" and found.errors == ()


def test_file_without_manifest_is_absent() -> None:
    from tests.unit.detector.synthesized import jpeg_bytes, photo_like

    found = CredentialReader().read(jpeg_bytes(photo_like(64, 64)))
    assert not found.present and found.state is SignatureState.ABSENT


def test_empty_file_is_absent() -> None:
    assert CredentialReader().read(b"").state is SignatureState.ABSENT


SHARED = "data/provenance"


@pytest.mark.parametrize(
    ("name", "state", "source_type"),
    [
        ("ai-image-dataset/metadata/cat-yawn-dalle.png", SignatureState.INVALID, "trainedAlgorithmicMedia"),
        ("c2pa-python/C.jpg", SignatureState.VALID, "algorithmicMedia"),
        ("c2pa-python/C_with_CAWG_data.jpg", SignatureState.VALID, "digitalCapture"),
        ("c2pa-public-testfiles/adobe-20220124-E-sig-CA.jpg", SignatureState.INVALID, ""),
        ("c2pa-public-testfiles/adobe-20220124-XCA.jpg", SignatureState.INVALID, ""),
        ("c2pa-public-testfiles/nikon-20221019-building.jpeg", SignatureState.INVALID, ""),
        ("c2pa-python/files-for-signing-tests/prerelease.jpg", SignatureState.UNREADABLE, ""),
    ],
)
def test_shared_c2pa_fixtures_read_as_indexed(
    shared_file: Callable[[str], Path], name: str, state: SignatureState, source_type: str
) -> None:
    found = CredentialReader().read(shared_file(f"{SHARED}/{name}").read_bytes())
    assert (found.state, found.source_type) == (state, source_type)


def test_remote_manifest_reference_is_never_fetched(shared_file: Callable[[str], Path]) -> None:
    import time

    started = time.perf_counter()
    found = CredentialReader().read(shared_file(f"{SHARED}/c2pa-python/cloud.jpg").read_bytes())
    assert found.remote_reference and not found.present  # refused by the offline settings, not fetched
    assert time.perf_counter() - started < 2.0


def test_offline_settings_disable_every_fetch() -> None:
    from pixelcheck.analysis.detector.content_credentials import _OFFLINE_SETTINGS

    assert _OFFLINE_SETTINGS["verify"] == {"remote_manifest_fetch": False, "ocsp_fetch": False}
    assert _OFFLINE_SETTINGS["core"]["allowed_network_hosts"] == []
