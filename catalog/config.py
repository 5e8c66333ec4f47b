"""Settings: command-line option, then `STEWARD_*` environment, then `steward.toml`."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from catalog.db import DEFAULT_CATALOG_URL
from catalog.errors import InvalidInput

CONFIG_FILE = "steward.toml"
#: Keys allowed in the `[steward]` table of steward.toml.
KNOWN_KEYS = {"catalog": str}
#: The entry-point group of connectors: a table named after one's kind configures it.
CONNECTORS_GROUP = "steward.connectors"


def connector_kinds() -> set[str]:
    """Kinds of the installed connectors (entry-point names; nothing is imported)."""
    return {ep.name for ep in entry_points(group=CONNECTORS_GROUP)}


@dataclass(frozen=True)
class Settings:
    catalog_url: str = DEFAULT_CATALOG_URL
    config_file: Path | None = None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput(f"{path}: cannot read: {err}") from err
    except tomllib.TOMLDecodeError as err:
        raise InvalidInput(f"{path}: not valid TOML: {err}") from err
    kinds = connector_kinds()
    unknown_tables = sorted(set(data) - {"steward"} - kinds)
    if unknown_tables:
        raise InvalidInput(
            f"{path}: unknown table [{unknown_tables[0]}]",
            hint="tables read: [steward], and one per connector: "
            + ", ".join(f"[{k}]" for k in sorted(kinds)),
        )
    for kind in sorted(kinds & set(data)):
        if not isinstance(data[kind], dict):
            raise InvalidInput(f"{path}: '{kind}' must be a table")
    return data


def connector_settings(kind: str, cwd: Path | None = None) -> tuple[dict[str, Any], str]:
    """The `[KIND]` table of steward.toml (in the working directory), and where it is
    (`steward.toml [postgres]`, for messages); empty without the file or the table.

    Its keys are the connector's options (checked by its config class); options
    given on the command line win over them.
    """
    path = (cwd or Path.cwd()) / CONFIG_FILE
    if not path.is_file():
        return {}, ""
    table = _read(path).get(kind, {})
    if "url" in table:
        raise InvalidInput(f"{path}: [{kind}] 'url' is not a setting", hint="give it to scan")
    return dict(table), f"{path} [{kind}]"


def load_file(path: Path) -> dict[str, Any]:
    """The `[steward]` table of a config file, checked key by key."""
    data = _read(path)
    table = data.get("steward", {})
    if not isinstance(table, dict):
        raise InvalidInput(f"{path}: 'steward' must be a table")
    for key, value in table.items():
        expected = KNOWN_KEYS.get(key)
        if expected is None:
            raise InvalidInput(
                f"{path}: [steward] unknown key '{key}'",
                hint=f"known keys: {', '.join(sorted(KNOWN_KEYS))}",
            )
        if not isinstance(value, expected):
            raise InvalidInput(f"{path}: [steward] '{key}' must be a {expected.__name__}")
    return table


def load_settings(catalog_url: str | None = None, cwd: Path | None = None) -> Settings:
    """Resolve settings in order: explicit value, environment, config file, default."""
    path = (cwd or Path.cwd()) / CONFIG_FILE
    file_values = load_file(path) if path.is_file() else {}
    url = (
        catalog_url
        or os.environ.get("STEWARD_CATALOG_URL")
        or file_values.get("catalog")
        or DEFAULT_CATALOG_URL
    )
    return Settings(catalog_url=url, config_file=path if path.is_file() else None)
