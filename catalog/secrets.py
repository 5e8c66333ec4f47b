"""Credentials masked wherever text leaves steward: events, URLs, errors and logs.

One set of rules, used for an OpenLineage event's decoded strings (every facet,
standard or custom), for the raw text of a body that is not JSON, for URLs
shown in messages and for every log record:

- URL userinfo: `scheme://user:PASSWORD@host` keeps the user and masks the
  password up to the last `@` before white space, so a password holding `@`,
  `/`, `?` or `#` is masked whole (an unencoded one cannot be parsed apart
  from the host any better).
- Well-known secret parameters, `NAME=VALUE` in a query string, a JDBC URL,
  a command line or an environment: `password`, `token`, `secret`, `key`,
  `sig`, `signature`, `credential`, `X-Amz-*`, `AWS_SECRET_ACCESS_KEY`, ...
  (any name ending in one of them); `=` may be written `%3D`.
- `"password": "..."` written as JSON inside a string, `Bearer`/`Basic`
  credentials, and in a decoded object any key named like a secret
  (`password`, `apiKey`, `clientSecret`, ...) whose value is a string.

JSON escapes (`\\u0040`, `\\u003d`) cannot hide a secret: events are masked
after decoding, and text is masked with its escapes decoded. Masking never
removes a user name, host or path: identity survives it.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

import re2

MASK = "***"

#: Names whose value is a secret: these, or any name ending in one of them ...
_SUFFIXES = (
    r"password|passwd|pwd|secret|token|signature|credentials?|"
    r"(?:api|access|secret|private|account|sas|master|client|auth|encryption|signing)[_.-]?key"
)
#: ... and these alone (`primary_key=` and `/key=5/` are not secrets).
_BARE = r"key|apikey|sig|pass|auth"
_USER_END = re.compile(r"[\s/?#@:'\"<>]")
#: The name of a `NAME=VALUE` pair whose value is a secret.
_PARAM_NAME = re.compile(rf"(?:[\w.-]*[_.-])?(?:{_SUFFIXES})|{_BARE}|x-amz-[\w-]+", re.I)
_EQUALS = re.compile(r"=|%3[dD]")
_VALUE_END = re.compile(r"[&\s'\"<>]")
_AUTHORITY_END = re.compile(r"[\s'\"<>]")
_NAME_CHARS = frozenset("_.-")
_JSON_PAIR = re.compile(
    r"(\"[\w.-]*?(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|"
    r"private[_-]?key|signature|credentials?)\"\s*:\s*)\"(?:[^\"\\]|\\.)*\"",
    re.I,
)
_SCHEME_AUTH = re.compile(r"\b(Bearer|Basic|Token)(\s+)[A-Za-z0-9._~+/=-]{6,}", re.I)
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")
#: Names that `"NAME": "VALUE"` (JSON inside a string) must hold to be masked.
_JSON_NAMES = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "key",
    "signature",
    "credential",
)
_SCHEMES = ("bearer", "basic", "token")
#: A key of a decoded object whose (string) value is a secret.
_SECRET_KEY = re.compile(
    r"(?:.*[_.-])?(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|"
    r"private[_-]?key|secret[_-]?key|signature|credentials?|sig|auth|authorization)",
    re.I,
)
#: Secrets this process was given (command line, environment): masked in every message.
_GIVEN: set[str] = set()
_SECRET_OPTION = re.compile(r"--?[\w-]*(?:key|token|password|secret)[\w-]*", re.I)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _unescape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char.isprintable() else match.group(0)


def _mask_userinfo(text: str) -> str:
    """`scheme://user:PASSWORD@host`: the password masked up to the last `@` before
    white space or a quote (a password may hold `@ / ? #`)."""
    out: list[str] = []
    done = 0
    at = text.find("://")
    while at != -1:
        if at > 0 and text[at - 1].isalnum() and at >= done:
            user_end = _USER_END.search(text, at + 3)
            if user_end is not None and text[user_end.start()] == ":":
                colon = user_end.start()
                end_match = _AUTHORITY_END.search(text, colon)
                end = end_match.start() if end_match else len(text)
                last = text.rfind("@", colon, end)
                if last != -1:
                    out += [text[done : colon + 1], MASK]
                    done = last
        at = text.find("://", max(at + 3, done))
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _mask_params(text: str) -> str:
    """`NAME=VALUE` with a secret's name: the value masked (a query string, a JDBC URL,
    a command line). A name follows white space or punctuation, never `/`: a Hive
    partition `/key=5/` is a path."""
    out: list[str] = []
    done = 0
    for match in _EQUALS.finditer(text):
        at = match.start()
        if at < done:
            continue
        start = at
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in _NAME_CHARS):
            start -= 1
        if start == at or (start > 0 and text[start - 1] in "/%"):
            continue
        if not _PARAM_NAME.fullmatch(text, start, at):
            continue
        end_match = _VALUE_END.search(text, match.end())
        end = end_match.start() if end_match else len(text)
        while end > match.end() and text[end - 1] in ":,;.)":  # the sentence's, not the value's
            end -= 1
        out.append(text[done : match.end()])
        out.append(MASK)
        done = end
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def mask_text(text: str) -> str:
    """`text` with every credential the rules find replaced by `***`."""
    if "\\u" in text:
        text = _ESCAPE.sub(_unescape, text)
    if "@" in text and "://" in text:
        text = _mask_userinfo(text)
    if "=" in text or "%3" in text:
        text = _mask_params(text)
    if '"' in text or " " in text:
        low = text.lower()
        if '"' in text and any(name in low for name in _JSON_NAMES):
            text = _JSON_PAIR.sub(rf'\1"{MASK}"', text)
        if any(scheme in low for scheme in _SCHEMES):
            text = _SCHEME_AUTH.sub(rf"\1\2{MASK}", text)
    return text


@lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether an object's key names a secret (`password`, `apiKey`, `client_secret`)."""
    return bool(_SECRET_KEY.fullmatch(_CAMEL.sub("_", key)))


#: What a text must hold for `mask_value` of its decoded JSON to find anything: one of
#: these characters (`%` for an encoded `%3D`; `\\` for any JSON escape) ...
_HINT_CHARS = ("@", "\\", "%")
#: ... or, lowercased, one of these words (a secret's name, a scheme's) ...
_HINT_WORDS = (
    "bearer",
    "basic",
    "token",
    "pass",
    "pwd",
    "secret",
    "key",
    "sig",
    "cred",
    "auth",
)
#: The words sought at once: RE2 runs one automaton over the text where `in` ran ten
#: searches (0.19 s against 0.67 s for the heavy benchmark file's 110 MB, measured).
#: In the text's UTF-8 bytes, a lone surrogate written as its three bytes: RE2 would
#: encode a `str` itself, strictly, and fail on one (a log record may hold one).
_HINT_WORDS_SOUGHT = re2.compile("|".join(re.escape(word) for word in _HINT_WORDS).encode())
#: The same words in any case, for an ASCII text (most events): sought in the text as
#: it is, not in a lowercased copy (for the heavy benchmark file, 0.18 s against 0.28).
#: For ASCII, RE2's case folding takes exactly the letters `str.lower()` changes.
_HINT_WORDS_ANY_CASE = re2.compile(b"(?i)(?:" + _HINT_WORDS_SOUGHT.pattern + b")")
#: ... or `=` with a presigned URL's `x-amz-*` parameters.
_X_AMZ_ANY_CASE = re2.compile(b"(?i)x-amz-")

#: The letters a rule's `re.I` takes for ASCII ones that `str.lower()` does not make
#: ASCII (a long s for `s`, a dotless or dotted capital I for `i`; the Kelvin sign it
#: lowers to `k`): folded before the words are sought, so a secret's name spelt with
#: them is not passed over.
_FOLDED = str.maketrans({"\u017f": "s", "\u0131": "i", "\u0130": "i"})


def may_hold_secrets(text: str) -> bool:
    """False when no rule could apply to `text` or to any string of its decoded JSON.

    A lone `=` (SQL's `>=`, in most events from Airflow or Spark) is not enough:
    only a `NAME=VALUE` with a secret's name is masked, and every such name holds
    another hint, but for the `x-amz-*` parameters of a presigned URL. The
    characters are looked for first, in the text as it is: a search for one
    character is several times faster than for a word.
    """
    for char in _HINT_CHARS:
        if char in text:
            return True
    if text.isascii():
        data = text.encode("ascii")
        if _HINT_WORDS_ANY_CASE.search(data) is not None:
            return True
        return "=" in text and _X_AMZ_ANY_CASE.search(data) is not None
    low = text.translate(_FOLDED).lower()
    if _HINT_WORDS_SOUGHT.search(low.encode("utf-8", "surrogatepass")) is not None:
        return True
    return "=" in text and "x-amz-" in low


def mask_value(value: Any) -> Any:
    """A decoded JSON value with every string masked (keys too) and every value of a
    secret-named key replaced; the same object when nothing needed masking."""
    if isinstance(value, str):
        return _mask_string(value)
    if isinstance(value, dict):
        return _mask_dict(value)
    if isinstance(value, list):
        return _mask_list(value)
    return value


#: Strings up to this long are masked once and remembered: an event's keys, field
#: names, types and namespaces come back in every event.
_REMEMBERED = 256
_mask_short = lru_cache(maxsize=1 << 16)(mask_text)


def _mask_string(text: str) -> str:
    if len(text) > _REMEMBERED:
        return mask_text(text)
    masked = _mask_short(text)
    # The very object when nothing changed: the caller tells a change by identity.
    return text if masked == text else masked


_SCALARS = frozenset({int, float, bool, type(None)})


def _mask_other(key: Any, item: Any) -> Any:
    """An item of a dict (under `key`) or list (`key` None) of a type JSON does not decode to."""
    if isinstance(item, str) and isinstance(key, str) and is_secret_key(key):
        return MASK if item else item
    return mask_value(item)


# The two walks below test an item's exact type inline (one call a level, not two):
# they run over every string of every event received.


def _mask_dict(value: dict[Any, Any]) -> dict[Any, Any]:
    out: dict[Any, Any] | None = None
    for i, (key, item) in enumerate(value.items()):
        new_key = _mask_string(key) if isinstance(key, str) else key
        new: Any
        kind = type(item)
        if kind is str:
            secret = isinstance(key, str) and is_secret_key(key)
            new = (MASK if item else item) if secret else _mask_string(item)
        elif kind is dict:
            new = _mask_dict(item)
        elif kind is list:
            new = _mask_list(item)
        elif kind in _SCALARS:
            new = item
        else:
            new = _mask_other(key, item)
        if out is None and (new is not item or new_key is not key):
            out = dict(list(value.items())[:i])
        if out is not None:
            out[new_key] = new
    return value if out is None else out


def _mask_list(value: list[Any]) -> list[Any]:
    items: list[Any] | None = None
    for i, item in enumerate(value):
        new: Any
        kind = type(item)
        if kind is str:
            new = _mask_string(item)
        elif kind is dict:
            new = _mask_dict(item)
        elif kind is list:
            new = _mask_list(item)
        elif kind in _SCALARS:
            new = item
        else:
            new = _mask_other(None, item)
        if items is None and new is not item:
            items = value[:i]
        if items is not None:
            items.append(new)
    return value if items is None else items


def mask_message(text: str) -> str:
    """A message (an error, a log line): `mask_text`, and every secret this process
    was given (`remember_given`) wherever it appears, even in pieces."""
    text = mask_text(text)
    for secret in _GIVEN_ORDER:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


_GIVEN_ORDER: list[str] = []


def remember_given(args: list[str], environ: dict[str, str]) -> None:
    """Note the secrets in a command line and the environment: the userinfo of every
    URL (a password, in its pieces, or a lone API key) and the value of every option
    or `STEWARD_*` variable named like a secret. A driver may quote a piece of a
    password it could not parse (taking its tail for the host); no message shows it."""
    found: list[str] = []
    values = list(args) + [v for k, v in environ.items() if k.startswith("STEWARD_")]
    for i, arg in enumerate(args):
        name, eq, value = arg.partition("=")
        if _SECRET_OPTION.fullmatch(name):
            found.append(value if eq else (args[i + 1] if i + 1 < len(args) else ""))
    for key, value in environ.items():
        if key.startswith("STEWARD_") and re.search(r"KEY|TOKEN|PASSWORD|SECRET", key):
            found.append(value)
    for value in values:
        if "://" in value:
            found.extend(secret_pieces(value))
    _GIVEN.update(v for v in found if len(v) >= 3)
    _GIVEN_ORDER[:] = sorted(_GIVEN, key=len, reverse=True)


class MaskingFormatter(logging.Formatter):
    """A log formatter whose every line (tracebacks too) goes through `mask_message`,
    control characters escaped (a name in a log line cannot drive the terminal)."""

    def format(self, record: logging.LogRecord) -> str:
        from catalog.output import safe

        return safe(mask_message(super().format(record)))


def mask_log_records() -> None:
    """Mask the message of every log record made from now on, in this process."""
    make = logging.getLogRecordFactory()
    if getattr(make, "masks", False):
        return

    def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format: logging reports it when it is written
            return record
        shown = mask_message(message)
        if shown != message:
            record.msg, record.args = shown, None
        return record

    masked_record.masks = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masked_record)


def mask_url(url: str) -> str:
    """A URL for a message: its password (or a lone API key as userinfo) and secret
    parameters masked, whether or not it parses (a `[`, a bad port)."""
    text = mask_text(url)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    end = len(rest)
    for stop in " \t\n'\"":
        if stop in rest:
            end = min(end, rest.index(stop))
    at = rest.rfind("@", 0, end)
    if at == -1 or ":" in rest[:at] or "/" in rest[:at]:
        return text  # no userinfo, or user:***@ already
    return f"{scheme}://{MASK}@{rest[at + 1 :]}"


#: Schemes whose lone userinfo is a user name, not a key: kept in messages.
_USER_SCHEMES = frozenset({"postgres", "postgresql", "mysql", "mariadb", "oracle", "mssql"})


def secret_pieces(url: str) -> list[str]:
    """The parts of a URL's userinfo a driver might quote on their own in an error
    (the tail of a password holding `@` taken as the host, say)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return []
    end = len(rest)
    for stop in " \t\n'\"":
        if stop in rest:
            end = min(end, rest.index(stop))
    at = rest.rfind("@", 0, end)
    if at == -1:
        return []
    user, colon, password = rest[:at].partition(":")
    if not colon:  # a lone API key (qdrant://KEY@host), but a database's user name
        if scheme.lower().split("+")[0] in _USER_SCHEMES:
            return []
        return [user] if len(user) >= 3 and "/" not in user else []
    pieces = {password, *re.split(r"[@/?#:]", password)}
    return sorted((p for p in pieces if len(p) >= 3), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """`text` (a driver's error about `url`) masked, and every piece of the URL's
    password removed wherever it appears."""
    text = mask_message(text)
    for piece in secret_pieces(url):
        if len(piece) >= 3:
            text = text.replace(piece, MASK)
    return text
