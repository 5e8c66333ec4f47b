"""The connector interface: a `kind`, a config class, and one method.

Shaped like openlineage-python's transports: a connector class names its
`kind` and URL `schemes`, declares a pydantic `config_class` (unknown keys
rejected, secrets as `SecretStr`), and implements `scan()`, which reads its
source and returns a `Scan`: asset specs plus the scopes it covered in full
(so that assets it no longer finds there can be marked deleted). Optional
abilities (sampling vectors or feature values) are separate small protocols.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from catalog.apply import Scope
from catalog.errors import InvalidInput
from catalog.identity import redact_url
from catalog.specs import AssetSpec

#: A progress callback: (items done, items in all or None, what is being read).
Progress = Callable[[int, int | None, str], None]


class ConnectorConfig(BaseModel):
    """Base of connector configs: unknown keys are an error, not a silent no-op."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str

    @classmethod
    def from_options(cls, url: str, options: dict[str, Any]) -> ConnectorConfig:
        given = {k: v for k, v in options.items() if v not in (None, (), [], False)}
        unknown = sorted(set(given) - set(cls.model_fields))
        if unknown:
            flag = "--" + unknown[0].replace("_", "-")
            raise InvalidInput(f"{flag} does not apply to {redact_url(url)}")
        try:
            return cls(url=url, **given)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "url"
            raise InvalidInput(f"{redact_url(url)}: {where}: {first['msg']}") from None


class SamplingOptions(BaseModel):
    """Options of a connector that samples vectors (the `VectorSampler` ability)."""

    #: Take the larger `--profile` sample (the routine one otherwise).
    profile: bool = False
    #: Vectors per sample; None: 1,000 on every scan, 2,000 with `profile`.
    sample_size: int | None = Field(default=None, ge=1)
    #: Make this scan's samples the baselines of the drift rule.
    rebaseline: bool = False


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
