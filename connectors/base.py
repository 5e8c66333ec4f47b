"""The connector interface: a `kind`, a config class, and one method.

Shaped like openlineage-python's transports: a connector class names its
`kind` and URL `schemes`, declares a pydantic `config_class` (unknown keys
rejected, secrets as `SecretStr`), and implements `scan()`, which reads its
source and returns a `Scan`: asset specs plus the scopes it covered in full
(so that assets it no longer finds there can be marked deleted). Optional
abilities (sampling vectors or feature values) are separate small protocols.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from catalog.apply import Scope
from catalog.errors import InvalidInput
from catalog.identity import redact_url
from catalog.profiles import DEFAULT_SAMPLE_SIZE, PROFILE_SAMPLE_SIZE
from catalog.runs import RunMarks
from catalog.specs import AssetSpec, RunSpec

#: A progress callback: (items done, items in all or None, what is being read).
Progress = Callable[[int, int | None, str], None]


class ConnectorConfig(BaseModel):
    """Base of connector configs: unknown keys are an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str

    @classmethod
    def from_options(
        cls,
        url: str,
        options: dict[str, Any],
        settings: dict[str, Any] | None = None,
        settings_file: str = "",
    ) -> ConnectorConfig:
        """The config of `url` from command-line `options` over `settings` (the
        connector's table of steward.toml, `settings_file` naming it in errors)."""
        given = {k: v for k, v in options.items() if v not in (None, (), [], False)}
        unknown = sorted(set(given) - set(cls.model_fields))
        if unknown:
            flag = "--" + unknown[0].replace("_", "-")
            raise InvalidInput(f"{flag} does not apply to {redact_url(url)}")
        settings = settings or {}
        try:
            return cls(url=url, **{**settings, **given})
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "url"
            if first["loc"] and first["loc"][0] in settings and first["loc"][0] not in given:
                raise InvalidInput(f"{settings_file} {where}: {first['msg']}") from None
            raise InvalidInput(f"{redact_url(url)}: {where}: {first['msg']}") from None


SAMPLE_SIZE_ENV = "STEWARD_SAMPLE_SIZE"


def env_sample_size() -> int | None:
    """`$STEWARD_SAMPLE_SIZE`, the default of `--sample-size` (None when unset)."""
    raw = os.environ.get(SAMPLE_SIZE_ENV, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) < 1:
        raise InvalidInput(
            f"${SAMPLE_SIZE_ENV} is {raw!r}, not a positive number of vectors",
            hint=f"e.g. {SAMPLE_SIZE_ENV}=1000, or unset it",
        )
    return int(raw)


class SamplingOptions(BaseModel):
    """Options of a connector that samples vectors (the `VectorSampler` ability)."""

    #: Take the larger `--profile` sample (the routine one otherwise).
    profile: bool = False
    #: Vectors per sample; None: 1,000 on every scan, 2,000 with `profile`.
    sample_size: int | None = Field(default=None, ge=1)
    #: Make this scan's samples the baselines of the drift rule.
    rebaseline: bool = False

    @property
    def vectors_per_sample(self) -> int:
        """`sample_size`, else `$STEWARD_SAMPLE_SIZE`, else the routine or `--profile` default."""
        default = PROFILE_SAMPLE_SIZE if self.profile else DEFAULT_SAMPLE_SIZE
        return self.sample_size or env_sample_size() or default


class KeyedConfig(ConnectorConfig, SamplingOptions):
    """A config with an API key (given, or from the environment variable `key_env`)
    and the vector-sampling settings of a vector store."""

    key_env: ClassVar[str] = ""

    api_key: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _key_from_env(cls, data: Any) -> Any:
        env = cls.key_env
        if isinstance(data, dict) and not data.get("api_key") and env and os.environ.get(env):
            data = {**data, "api_key": os.environ[env]}
        return data

    def scrub(self, message: str) -> str:
        """`message` with the API key masked."""
        key = self.api_key.get_secret_value() if self.api_key else ""
        return message.replace(key, "***") if key else message


@dataclass
class Scan:
    """What one scan of a source found."""

    specs: list[AssetSpec]
    #: Parts of the catalog the scan read in full: absent assets there are deleted.
    scopes: list[Scope] = field(default_factory=list)
    #: What registered these assets, e.g. `scan postgres://host:5432/db` (no credentials).
    origin: str = ""
    #: Parts of the source that could not be read (e.g. a schema without permission).
    warnings: list[str] = field(default_factory=list)
    #: Runs of jobs the source tracks (MLflow's), written with the specs.
    runs: list[RunSpec] = field(default_factory=list)
    #: Reads the runs that changed since the catalog's marks of `runs_namespace`:
    #: called by `run_scan` once the catalog is open (not for `--plan`).
    read_runs: Callable[[RunMarks], Scan] | None = None
    runs_namespace: str = ""

    def extend(self, more: Scan) -> None:
        """Add what a follow-up read found."""
        self.specs += more.specs
        self.scopes += more.scopes
        self.warnings += [w for w in more.warnings if w not in self.warnings]
        self.runs += more.runs


C = TypeVar("C", bound=ConnectorConfig)


class Connector(ABC, Generic[C]):
    """A source of asset specs."""

    kind: ClassVar[str]
    #: URL schemes this connector reads, e.g. ("postgres", "postgresql").
    schemes: ClassVar[tuple[str, ...]] = ()
    config_class: ClassVar[type[ConnectorConfig]]

    def __init__(self, config: C) -> None:
        self.config = config

    @classmethod
    def accepts(cls, url: str) -> bool:
        """Whether this connector reads `url` (by default: by its scheme)."""
        return urlsplit(url).scheme.lower() in cls.schemes

    @abstractmethod
    def scan(self, progress: Progress | None = None) -> Scan:
        """Read the source and describe every asset in it."""

    def close(self) -> None:
        """Release what the connector holds open (clients, locks); nothing by default."""

    def __enter__(self: Self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
