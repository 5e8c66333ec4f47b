"""The masking rules: every credential shape is masked, and identity survives it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.cli import cli
from catalog.secrets import (
    MaskingFormatter,
    is_secret_key,
    mask_message,
    mask_text,
    mask_url,
    mask_value,
    may_hold_secrets,
    remember_given,
    scrub,
)
from lineage.ingest import masked
from lineage.openlineage import loads

SECRET = "S3cr-et9"


@pytest.mark.parametrize(
    "text",
    [
        f"postgres://reader:{SECRET}@db:5432",
        f"postgres://reader:{SECRET}@tail@db:5432/shop",  # an @ in the password
        f"postgres://reader:{SECRET}/x?y#z@db:5432/shop",  # / ? # in the password
        f"s3://bucket/key.parquet?X-Amz-Signature={SECRET}&X-Amz-Date=20240601",
        f"https://acct.blob.core.windows.net/c/f?sv=2022&sig={SECRET}",
        f"export AWS_SECRET_ACCESS_KEY={SECRET}",
        f"jdbc:sqlserver://db:1433;databaseName=shop;password={SECRET}",
        f"spark.hadoop.fs.s3a.secret.key={SECRET}",
        f"host=db user=u password={SECRET} dbname=shop",
        f"https://api.example.com/v1?api_key={SECRET}",
        f"https://api.example.com/v1?token%3D{SECRET}",
        f'config {{"password": "{SECRET}"}}',
        f'{{"clientSecret":"{SECRET}"}}',
        f"Authorization: Bearer {SECRET}",
        f"postgres://reader:{SECRET}\\u0040db:5432",  # JSON escapes
        f"password\\u003d{SECRET}",
    ],
)
def test_every_credential_shape_is_masked(text: str) -> None:
    shown = mask_text(text)
    assert SECRET not in shown and "***" in shown


@pytest.mark.parametrize(
    "text",
    [
        "postgres://db:5432",
        "abfss://container@account.dfs.core.windows.net/raw",  # identity, not a credential
        "kafka://broker1:9092,broker2:9092",
        "s3://lake/events/key=5/dt=2024-06-01",  # a Hive partition
        "SELECT * FROM t WHERE primary_key=3",
        "http://host:8080/path",
        "reader@db",
    ],
)
def test_identity_and_ordinary_text_are_kept(text: str) -> None:
    assert mask_text(text) == text


def test_a_decoded_event_is_masked_in_every_string_and_secret_named_key() -> None:
    value = {
        "job": {"namespace": f"airflow://admin:{SECRET}@air:8080", "name": "dag"},
        "run": {
            "facets": {
                "custom": {
                    "apiKey": SECRET,
                    "nested": [{"dsn": f"mysql://u:{SECRET}@h/db"}, {"password": SECRET}],
                    "max_tokens": 512,
                    "primaryKey": "id",
                }
            }
        },
    }
    out = mask_value(value)
    assert SECRET not in json.dumps(out)
    assert out["run"]["facets"]["custom"]["max_tokens"] == 512
    assert out["run"]["facets"]["custom"]["primaryKey"] == "id"
    assert out["job"]["namespace"] == "airflow://admin:***@air:8080"
    clean = {"a": ["b", {"c": "d"}]}
    assert mask_value(clean) is clean  # nothing to mask: nothing copied


def test_a_body_with_escaped_secrets_is_stored_masked() -> None:
    raw = (
        '{"job": {"namespace": "postgres://u:'
        + SECRET
        + '\\u0040db:5432", "name": "j"}, "x": "password\\u003d'
        + SECRET
        + '"}'
    )
    text, value = masked(raw, loads(raw))
    assert SECRET not in text and SECRET not in json.dumps(value)
    assert loads(text) == value
    plain = '{"job": {"namespace": "scheduler", "name": "j"}}'
    assert masked(plain, loads(plain)) == (plain, loads(plain))
    assert not may_hold_secrets(plain)


def test_messages_mask_urls_that_do_not_parse_and_given_secrets_in_pieces() -> None:
    assert SECRET not in mask_url(f"postgres://u:{SECRET}@[db/x")
    assert mask_url(f"qdrant://{SECRET}@db:6333") == "qdrant://***@db:6333"
    url = "postgresql://u:Secr@et4@127.0.0.1:1/db"
    assert "et4" not in scrub("failed to resolve host 'et4@127.0.0.1'", url)
    remember_given(["--api-key", "Lone-Key-77", "qdrant://Given-Key-78@h:1"], {})
    message = mask_message("refused Lone-Key-77 and Given-Key-78")
    assert "Lone-Key-77" not in message and "Given-Key-78" not in message


def test_log_lines_are_masked_tracebacks_too() -> None:
    formatter = MaskingFormatter("%(message)s")
    try:
        raise ValueError(f"cannot reach postgres://u:{SECRET}@db")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "%s", ("boom",), None)
        import sys

        record.exc_info = sys.exc_info()
    assert SECRET not in formatter.format(record)


@pytest.mark.parametrize(
    "args",
    [
        ["scan", "qdrant://[::1"],
        ["scan", "postgres://u:p@[db/x"],
        ["scan", "mlflow://[x:5000"],
        ["scan", "postgres://db:99999/x"],
    ],
)
def test_a_url_that_does_not_parse_is_one_line_and_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["--catalog", f"sqlite:///{tmp_path / 'c.db'}", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


def test_a_catalog_url_that_does_not_parse_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(cli, ["--catalog", "postgresql://u:S3cr@[db/x", "assets"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "S3cr" not in result.stderr


def test_sql_with_an_equals_sign_needs_no_walk_and_a_presigned_url_does() -> None:
    event = {
        "job": {"facets": {"sql": {"query": "SELECT a FROM t WHERE updated_at >= '2024-06-01'"}}},
        "x": "s3://bucket/k?X-Amz-Date=20240601T000000Z&X-Amz-Expires=3600",
    }
    sql_only = json.dumps({"job": event["job"]})
    assert not may_hold_secrets(sql_only)
    assert mask_value(loads(sql_only)) == loads(sql_only)
    presigned = json.dumps(event)
    assert may_hold_secrets(presigned)
    assert "20240601T000000Z" not in json.dumps(mask_value(event))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["=", ">=", " ", "&", "/", "_", ".", "-", "x", "amz", "x-amz-", "X-AMZ-", "a1", '"']
        )
        | st.text(alphabet="abcdefghijklmnopqrstuvwxyz_=.- ", max_size=8),
        max_size=12,
    ).map("".join)
)
def test_what_may_hold_no_secrets_is_never_masked(text: str) -> None:
    """The hints are sound: a text they pass over is left as it is by every rule."""
    if not may_hold_secrets(text):
        assert mask_text(text) == text
        assert mask_value({"k": text, text: [text]}) == {"k": text, text: [text]}


#: The hints as they were first written: ten substring searches in the lowercased text.
_WORDS = ("bearer", "basic", "token", "pass", "pwd", "secret", "key", "sig", "cred", "auth")


def _hinted(text: str) -> bool:
    low = text.lower()
    return (
        any(c in text for c in "@\\%")
        or any(word in low for word in _WORDS)
        or ("=" in text and "x-amz-" in low)
    )


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from([*_WORDS, "x-amz-", "=", "Bearer", "PaSs", "X-Amz-", "KEY", "sIg"])
        | st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_=.- ", max_size=6),
        max_size=10,
    ).map("".join)
)
def test_an_ascii_text_is_hinted_in_any_case_as_its_lowercased_copy_was(text: str) -> None:
    """An ASCII text's words are sought in any case in the text itself (no lowercased copy
    is made): the same answer as the ten searches in its lowercased copy."""
    assert text.isascii()
    assert may_hold_secrets(text) == _hinted(text)


def test_a_lone_surrogate_neither_breaks_the_hints_nor_hides_a_word() -> None:
    """A text with a lone surrogate (a log record may hold one) is looked at all the same."""
    assert not may_hold_secrets("run \udc80 done")
    assert may_hold_secrets("run \udc80 with TOKEN")
    assert may_hold_secrets("\ud83d sig")


@pytest.mark.parametrize(
    "name", ["pa\u017f\u017fword", "\u017fecret", "s\u0130g", "ap\u0131_key", "api\u212aey"]
)
def test_a_secret_named_with_letters_the_rules_fold_is_masked(name: str) -> None:
    """The rules' `re.I` takes a long s for `s`, a dotless or dotted capital I for `i`
    and the Kelvin sign for `k`; `str.lower()` does not make the first three ASCII:
    the hints fold them too, or such a name's value would be stored unmasked."""
    raw = json.dumps({"run": {"facets": {"custom": {name: SECRET}}}}, ensure_ascii=False)
    text, value = masked(raw, loads(raw))
    assert is_secret_key(name)
    assert SECRET not in text and SECRET not in json.dumps(value)
