"""Secrets never reach the knowledge base: what counts as secret, defined once.

Capture passes every fact that may hold one through here before anything is stored
(journal, store, exports): the command line, environment variables and the user's
hyperparameters.

- A *name* is secret when it contains, in any case, one of `SECRET_NAME_PARTS`
  (`MY_API_KEY`, `--api-key`, `db.password`, `auth_header`); its value is replaced
  by `REDACTED`.
- Any *text* has every part shaped like a credential (`CREDENTIAL_SHAPES`: API keys
  and tokens of well-known services, AWS access key ids, JWTs, private keys, the
  value of a `name=value` / `name: value` pair whose name is secret, the password
  of a `scheme://user:password@host` URL) replaced by `REDACTED`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

REDACTED = "<redacted>"
SECRET_NAME_PARTS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH")

_SECRET_NAME = re.compile("|".join(SECRET_NAME_PARTS), re.IGNORECASE)
_SECRET_WORD = "[\\w.-]*(?:" + "|".join(SECRET_NAME_PARTS) + ")[\\w.-]*"

CREDENTIAL_SHAPES: tuple[str, ...] = (
    r"\bsk-[A-Za-z0-9_-]{16,}",  # OpenAI / Anthropic style keys: sk-..., sk-proj-..., sk-ant-...
    r"\bgh[pousr]_[A-Za-z0-9]{20,}",  # GitHub tokens
    r"\bgithub_pat_[A-Za-z0-9_]{20,}",
    r"\bglpat-[A-Za-z0-9_-]{20,}",  # GitLab
    r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",  # AWS access key ids
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"\bAIza[0-9A-Za-z_-]{35}",  # Google API keys
    r"\bhf_[A-Za-z0-9]{30,}",  # Hugging Face
    r"\bnpm_[A-Za-z0-9]{36}",  # npm
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWTs
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
)
_SHAPES = re.compile("|".join(f"(?:{shape})" for shape in CREDENTIAL_SHAPES))
# `token=abc`, `password: abc`, `?api_key=abc&` (the value, up to a separator)
_PAIR = re.compile(rf"(?i)(\b{_SECRET_WORD}\s*[=:]\s*)([^\s&;,'\"]+)")
# scheme://user:password@host
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]+:)([^/\s@]+)(@)")


def is_secret_name(name: str) -> bool:
    """Whether a value named `name` (a variable, flag or hyperparameter) is secret."""
    return bool(_SECRET_NAME.search(name))


def scrub(text: str) -> str:
    """`text` with every part shaped like a credential replaced by `REDACTED`."""
    text = _SHAPES.sub(REDACTED, text)
    text = _URL_PASSWORD.sub(rf"\g<1>{REDACTED}\g<3>", text)
    return _PAIR.sub(lambda m: m.group(1) + REDACTED, text)


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line's items with secrets redacted: the value after a secret flag
    (`--api-key VALUE`, `--api-key=VALUE`), of a secret `name=value` item (Hydra, Fire),
    and every credential-shaped part of any item."""
    out: list[str] = []
    hide_next = False
    for item in argv:
        if hide_next and not item.startswith("--"):
            out.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        name, eq, _ = item.partition("=")
        if item.startswith("-") and len(item) > 1 and is_secret_name(name.lstrip("-")):
            if eq:
                out.append(f"{name}={REDACTED}")
            else:
                out.append(item)
                hide_next = True
            continue
        if eq and name and not item.startswith("-") and is_secret_name(name):
            out.append(f"{name}={REDACTED}")
            continue
        out.append(scrub(item))
    return out


def redact_command_line(text: str) -> str:
    """A shell command line (as `shlex.join` writes it) with secrets redacted."""
    try:
        items = shlex.split(text)
    except ValueError:  # unbalanced quotes: not a shell line, scrub the text
        return scrub(text)
    return shlex.join(redact_argv(items))


def redact_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """Environment variables with the values of secret names, and credential-shaped
    parts of every other value, redacted."""
    return {
        name: REDACTED if is_secret_name(name) else scrub(value) for name, value in environ.items()
    }


def redact_value(name: str, value: Any) -> Any:
    """A user-given value named `name` with its secrets redacted.

    Under a secret name everything but numbers and booleans is redacted (so numeric
    hyperparameters such as `key_dim` or `max_tokens` stay); strings are scrubbed;
    mappings and sequences are redacted item by item (mapping keys name their items).
    """
    if isinstance(value, bool | int | float) or value is None:
        return value
    if is_secret_name(name):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value("", v) for v in value)
    return value
