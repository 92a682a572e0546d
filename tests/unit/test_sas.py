"""Reading a customer's SAS without using it: what the Storage SDKs generate parses with its expiry and
kind; anything else is refused with a reason that never quotes the token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlencode

import pytest
from azure.storage.blob import ContainerSasPermissions, UserDelegationKey, generate_container_sas
from azure.storage.filedatalake import FileSystemSasPermissions, generate_file_system_sas
from hypothesis import given
from hypothesis import strategies as st

from shared import sas
from shared.model import SasToken
from shared.sas import SasError, lacking_permissions, parse, signed_time

KEY = "c2lnbmluZyBrZXkgb2YgdGhpcnR5LXR3byBieXRlcyEhIQ=="
ACCOUNT = "contoso"
LETTERS = "racwdlm"

moments = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2199, 12, 31), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=0))


def _delegation_key() -> UserDelegationKey:
    key = UserDelegationKey()
    key.signed_oid = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    key.signed_tid = "1c2d3e4f-5061-7283-94a5-b6c7d8e9f0a1"
    key.signed_start = "2024-01-01T00:00:00Z"
    key.signed_expiry = "2024-01-08T00:00:00Z"
    key.signed_service = "b"
    key.signed_version = "2025-01-05"
    key.value = KEY
    return key


def _generated(kind: str, permission: str, expiry: datetime, start: datetime | None, delegated: bool) -> str:
    credential = _delegation_key() if delegated else KEY
    if kind == "adls":
        return generate_file_system_sas(
            ACCOUNT,
            "exports",
            credential,
            permission=FileSystemSasPermissions.from_string(permission),
            expiry=expiry,
            start=start,
        )
    return generate_container_sas(
        ACCOUNT,
        "exports",
        user_delegation_key=credential if delegated else None,
        account_key=None if delegated else KEY,
        permission=ContainerSasPermissions.from_string(permission),
        expiry=expiry,
        start=start,
    )


@given(
    kind=st.sampled_from(["adls", "blob"]),
    extra=st.sets(st.sampled_from("acl")),
    expiry=moments,
    start_before=st.one_of(st.none(), st.integers(1, 10**6)),
    delegated=st.booleans(),
    question=st.booleans(),
)
def test_a_sas_the_sdks_generate_parses_with_its_expiry_and_kind(
    kind: str, extra: set[str], expiry: datetime, start_before: int | None, delegated: bool, question: bool
) -> None:
    """A filesystem or container SAS from the SDKs, service or user delegation, with the permissions the
    export uses, parses: its expiry is `se`, and the token is kept as given (less a leading '?')."""
    permission = "rwdm" + "".join(sorted(extra)) if kind == "adls" else "rwd" + "".join(sorted(extra))
    start = None if start_before is None else expiry - timedelta(seconds=start_before)
    token = _generated(kind, permission, expiry, start, delegated)
    parsed = parse(("?" if question else "") + token, kind)
    assert parsed.expires_at == expiry.timestamp()
    assert parsed.delegated is delegated
    assert parsed.token.value == token


def _outcome(value: str, kind: str) -> SasToken | str:
    """The SAS parsed, or the refusal's message."""
    try:
        return parse(value, kind)
    except SasError as error:
        return str(error)


def _fields(token: str) -> dict[str, str]:
    return dict(parse_qsl(token, keep_blank_values=True))


VALID = _generated("adls", LETTERS, datetime(2030, 1, 1, tzinfo=UTC), None, False)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sr": "b"}, "whole filesystem"),
        ({"sr": "d"}, "whole filesystem"),
        ({"ss": "b", "srt": "co"}, "account SAS"),
        ({"sig": ""}, "lacks sig"),
        ({"se": ""}, "lacks se"),
        ({"se": "tomorrow"}, "ISO 8601"),
        ({"se": "2030-02-30T00:00:00Z"}, "ISO 8601"),
        ({"st": "2031-01-01T00:00:00Z"}, "expires (se) before it starts"),
        ({"sp": "racwdl"}, "move (m)"),
        ({"sp": "acwdlm"}, "read (r)"),
        ({"skoid": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"}, "signed key fields"),
    ],
)
def test_a_sas_the_export_cannot_use_is_refused_with_the_reason(change: dict[str, str], reason: str) -> None:
    """An account, blob or directory SAS, a missing or malformed field, a permission the export needs
    missing, a partial user delegation SAS: refused, saying why, without the signature."""
    fields = {**_fields(VALID), **change}
    token = urlencode(fields)
    with pytest.raises(SasError) as refused:
        parse(token, "adls")
    assert reason in str(refused.value)
    assert _fields(VALID)["sig"] not in str(refused.value)


def test_a_sas_url_a_repeated_field_or_text_that_is_no_query_is_refused() -> None:
    """The SAS URL instead of its token, a field given twice, spaces or a too long token."""
    for value, reason in [
        (f"https://{ACCOUNT}.dfs.core.windows.net/exports?{VALID}", "not the URL"),
        (VALID + "&sp=r", "twice"),
        ("sv=2024 &sig=x", "query string"),
        (VALID + "&x=" + "a" * sas.MAX_LENGTH, "query string"),
        ("", "query string"),
        ("?", "query string"),
    ]:
        with pytest.raises(SasError, match=reason):
            parse(value, "adls")


def test_a_blob_sas_needs_create_or_write_and_add_or_write_but_an_adls_sas_needs_write_and_move() -> None:
    """Append blobs are created with c or w and appended to with a or w; ADLS Gen2 flushes need w and a
    replay file is renamed into place (m)."""
    assert lacking_permissions("racd", "blob") == []
    assert lacking_permissions("rwd", "blob") == []
    assert lacking_permissions("rd", "blob") == ["create or write (c, w)", "add or write (a, w)"]
    assert lacking_permissions("racdm", "adls") == ["write (w)"]
    assert lacking_permissions("rwdm", "adls") == []


@given(st.text(max_size=300))
def test_any_text_parses_or_is_refused_without_being_quoted(value: str) -> None:
    """Whatever is given, the parser answers a SAS or a SasError, and the error never holds the value."""
    answer = _outcome(value, "blob")
    if isinstance(answer, str) and len(value) >= 16:
        assert value not in answer


@given(
    fields=st.dictionaries(
        st.sampled_from(["sv", "sr", "sp", "se", "st", "sig", "ss", "srt", "skoid", "spr", "sip"]),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEF0123456789-:%TZ+/=", min_size=0, max_size=40),
    )
)
def test_any_query_of_sas_fields_parses_or_is_refused_without_quoting_its_signature(
    fields: dict[str, str],
) -> None:
    """Query strings of SAS field names with arbitrary values: the signature never reaches the message."""
    fields["sig"] = "S1gnatureThatMustNotLeak0000"
    answer = _outcome(urlencode(fields), "adls")
    if isinstance(answer, str):
        assert fields["sig"] not in answer
    else:
        assert answer.expires_at == signed_time(fields["se"])


@given(
    moment=moments,
    fraction=st.integers(0, 9_999_999),
    form=st.sampled_from(["date", "minutes", "seconds", "fraction"]),
)
def test_signed_times_in_each_iso_8601_form_read_as_utc(moment: datetime, fraction: int, form: str) -> None:
    """YYYY-MM-DD, YYYY-MM-DDThh:mmZ, YYYY-MM-DDThh:mm:ssZ and with up to seven fractional digits."""
    if form == "date":
        text, expected = f"{moment:%Y-%m-%d}", moment.replace(hour=0, minute=0, second=0).timestamp()
    elif form == "minutes":
        text, expected = f"{moment:%Y-%m-%dT%H:%M}Z", moment.replace(second=0).timestamp()
    elif form == "seconds":
        text, expected = f"{moment:%Y-%m-%dT%H:%M:%S}Z", moment.timestamp()
    else:
        text, expected = f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:07d}Z", moment.timestamp() + fraction / 10**7
    assert signed_time(text) == pytest.approx(expected, abs=1e-6)
    if form != "date":  # only UTC, written with T and Z, is a SAS time
        assert signed_time(text.replace("T", " ")) is None
        assert signed_time(text.rstrip("Z") + "+01:00") is None
