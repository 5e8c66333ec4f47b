from __future__ import annotations

import pytest

from catalog.errors import InvalidInput
from catalog.identity import (
    AssetKey,
    normalize_namespace,
    parse_uri,
    read_namespace,
    redact_url,
    strip_credentials,
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://LocalHost", "postgres://localhost:5432"),
        ("postgresql://db.internal:5433", "postgres://db.internal:5433"),
        ("postgres://alice:s3cret@DB.Example.com/shop", "postgres://db.example.com:5432/shop"),
        ("qdrant://Q.example", "qdrant://q.example:6333"),
        ("qdrants://q.example:443", "qdrants://q.example:443"),
        ("qdrant+local:///var/lib/qdrant/", "qdrant+local:///var/lib/qdrant"),
        ("s3://bucket/", "s3://bucket"),
        ("http://[::1]/api", "http://[::1]:80/api"),
        ("food_delivery", "food_delivery"),
        ("  bigquery ", "bigquery"),
        ("postgres://h:5432?password=x&sslmode=require", "postgres://h:5432"),
        # OpenLineage naming: Azure's container@account is identity, not a credential.
        (
            "abfss://Raw@Acct.dfs.core.windows.net/",
            "abfss://Raw@acct.dfs.core.windows.net",
        ),
        ("wasbs://c@acct.blob.core.windows.net", "wasbs://c@acct.blob.core.windows.net"),
        ("abfss://u:secret@acct.dfs.core.windows.net", "abfss://acct.dfs.core.windows.net"),
        ("postgres://alice@db", "postgres://db:5432"),  # a database user is not identity
        # Multi-host authorities (JDBC naming of the Java client, Kafka bootstrap lists).
        ("oracle://H1:1521,h2:1522", "oracle://h1:1521,h2:1522"),
        ("kafka://b1:9092,B2", "kafka://b1:9092,b2:9092"),
        ("cassandra://u:pw@a:9042,b:9042", "cassandra://a:9042,b:9042"),
    ],
)
def test_namespace_normalisation(given: str, expected: str) -> None:
    assert normalize_namespace(given) == expected


def test_normalisation_is_idempotent() -> None:
    once = normalize_namespace("POSTGRES://User:pw@Host/db")
    assert normalize_namespace(once) == once


@pytest.mark.parametrize("bad", ["", "   ", "postgres://h:99999", "postgres://h:port"])
def test_bad_namespaces_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_namespace(bad)


def test_two_azure_containers_are_two_namespaces() -> None:
    raw = normalize_namespace("abfss://raw@account.dfs.core.windows.net")
    curated = normalize_namespace("abfss://curated@account.dfs.core.windows.net")
    assert raw != curated


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("database://host:port", "database://host:port"),
        ("postgres://u:pw@host:port/x?password=pw", "postgres://host:port/x"),
    ],
)
def test_an_unreadable_namespace_is_kept_verbatim_with_a_warning(given: str, kept: str) -> None:
    namespace, warning = read_namespace(given)
    assert namespace == kept
    assert warning is not None and "kept verbatim" in warning and "pw" not in warning


def test_a_readable_namespace_has_no_warning() -> None:
    """The twin: what normalises is normalised, silently."""
    assert read_namespace("postgres://H:5432") == ("postgres://h:5432", None)


def test_credentials_never_survive() -> None:
    url = "postgres://alice:hunter2@db:5432/shop?password=hunter2&api_key=k3y"
    assert "hunter2" not in normalize_namespace(url)
    assert "hunter2" not in strip_credentials(url)
    assert "k3y" not in strip_credentials(url)
    shown = redact_url(url)
    assert "hunter2" not in shown and "k3y" not in shown
    assert "alice" in shown  # the user name helps, the password never does


def test_asset_key_uri() -> None:
    key = AssetKey.of("postgres://DB", "shop.public.orders")
    assert key.uri == "postgres://db:5432/shop.public.orders"
    with pytest.raises(InvalidInput):
        AssetKey.of("postgres://db", " ")


def test_dataset_uris_parse_to_keys() -> None:
    assert parse_uri("postgres://u:pw@DB:5432/shop.public.events") == AssetKey(
        "postgres://db:5432", "shop.public.events"
    )
    assert parse_uri("file:///data/a.parquet") == AssetKey("file", "/data/a.parquet")
    # A local file is shown as the file:// URL it is.
    assert AssetKey("file", "/data/a.parquet").uri == "file:///data/a.parquet"
    for bad in ("events", "postgres://db:5432", "file:///"):
        with pytest.raises(InvalidInput):
            parse_uri(bad)


def test_a_password_holding_an_at_sign_is_masked_whole() -> None:
    shown = redact_url("postgres://u:p@ss@host:5432/db")
    assert shown == "postgres://u:***@host:5432/db"


def test_secret_parameters_are_masked_without_eating_the_message() -> None:
    shown = redact_url("namespace 'postgres://h:1?password=pw' has an invalid port")
    assert shown == "namespace 'postgres://h:1?password=***' has an invalid port"
    assert redact_url("x?primary_key=id&api_key=k") == "x?primary_key=id&api_key=***"
