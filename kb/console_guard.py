"""The read-only console's first line of defence: a parser-level check of untrusted Cypher.

`check(text)` refuses, before anything runs, what could change or reveal more than the
knowledge base's data: write clauses, administration and schema commands, procedures
other than a few harmless read ones, file and URL access (LOAD CSV, functions outside
the built-in namespaces), several statements, and text whose meaning could differ
between this check and the server (non-ASCII characters or invisible and unicode
whitespace outside strings, comments glued inside a word, unterminated literals).

It works on tokens, so keywords inside strings, backtick-quoted names and comments are
not mistaken for clauses (`RETURN 'CREATE'` is fine) while a keyword hidden in odd
spacing or letter case is still seen. The check is strict on purpose: when in doubt it
refuses, and the error says what was refused and why. Pure Python, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ..errors import ReadOnlyViolation

# The harmless read procedures the console allows (compared case-insensitively).
ALLOWED_PROCEDURES = ("db.labels", "db.relationshipTypes", "db.propertyKeys")
# Namespaces of built-in functions that only compute (temporal, spatial, vector values).
ALLOWED_FUNCTION_NAMESPACES = frozenset(
    {"date", "datetime", "localdatetime", "localtime", "time", "duration", "point", "vector"}
)

WRITE = "a write"
ADMIN = "administration"
SCHEMA = "schema"
FILES = "file and URL access"

_WRITE_CLAUSES = frozenset(
    {"CREATE", "MERGE", "SET", "DELETE", "DETACH", "NODETACH", "REMOVE", "FOREACH", "INSERT"}
)
_ADMIN_WORDS = frozenset(
    {
        "ALTER",
        "DROP",
        "SHOW",
        "GRANT",
        "DENY",
        "REVOKE",
        "START",
        "STOP",
        "TERMINATE",
        "RENAME",
        "ENABLE",
        "DEALLOCATE",
        "REALLOCATE",
    }
)
_ADMIN_OBJECTS = frozenset(
    {
        "USER",
        "USERS",
        "ROLE",
        "ROLES",
        "DATABASE",
        "DATABASES",
        "COMPOSITE",
        "ALIAS",
        "ALIASES",
        "SERVER",
        "SERVERS",
        "PRIVILEGE",
        "PRIVILEGES",
        "TRANSACTION",
        "TRANSACTIONS",
        "SETTING",
        "SETTINGS",
        "PROCEDURES",
        "FUNCTIONS",
        "CURRENT",
        "HOME",
        "DEFAULT",
    }
)
_SCHEMA_OBJECTS = frozenset(
    {
        "INDEX",
        "INDEXES",
        "CONSTRAINT",
        "CONSTRAINTS",
        "RANGE",
        "TEXT",
        "POINT",
        "LOOKUP",
        "FULLTEXT",
        "VECTOR",
        "BTREE",
        "UNIQUE",
        "KEY",
        "EXISTENCE",
    }
)
# Administration words that are also common variable names (`(start)-->(stop)`): refused
# only when an administration object follows (START DATABASE, TERMINATE TRANSACTIONS).
_ADMIN_VERBS_ONLY_BEFORE_OBJECT = frozenset(
    {"START", "STOP", "ENABLE", "RENAME", "TERMINATE", "DEALLOCATE", "REALLOCATE"}
)
# Other words that always mean something the console refuses, and why.
_REFUSED_WORDS = {
    "LOAD": ("LOAD CSV", FILES),
    "USE": ("USE (choosing another database)", ADMIN),
    "TRANSACTIONS": ("CALL {...} IN TRANSACTIONS (batched writes)", WRITE),
    "PERIODIC": ("USING PERIODIC COMMIT (batched writes)", WRITE),
}
# Tokens after which a keyword is only a name: property access, label or type, parameter.
_NAME_CONTEXT = frozenset({".", ":", "$"})

_TOKEN = re.compile(
    r"""
      (?P<ws>[ \t\r\n]+)
    | (?P<line_comment>//[^\r\n]*)
    | (?P<block_comment>/\*.*?\*/)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<quoted>`(?:[^`]|``)*`)
    | (?P<unclosed>/\*|['"`])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>[0-9]+)
    | (?P<punct>[!-~])
    """,
    re.VERBOSE | re.DOTALL,
)
_UNTERMINATED = {"/*": "a comment", "'": "a string", '"': "a string", "`": "a `name`"}
_HIDDEN = ("ws", "line_comment", "block_comment")


@dataclass(frozen=True)
class Token:
    """One lexical token: its kind (a group of `_TOKEN`), text and offset."""

    kind: str
    text: str
    start: int

    @property
    def name(self) -> str:
        """A word's or a backtick-quoted name's identifier text."""
        if self.kind == "quoted":
            return self.text[1:-1].replace("``", "`")
        return self.text


def refuse(what: str, why: str) -> ReadOnlyViolation:
    """The console's refusal, naming what was refused and why."""
    return ReadOnlyViolation(f"the console is read-only: {what} ({why}) is refused; nothing ran")


def _spoof_hint(text: str, pos: int) -> str:
    """The word around `pos` and, when different, how it reads once NFKC-normalised."""
    start, end = pos, pos + 1
    while start > 0 and not text[start - 1].isspace() and text[start - 1] not in "'\"`":
        start -= 1
    while end < len(text) and not text[end].isspace() and text[end] not in "'\"`":
        end += 1
    word = text[start:end]
    readable = "".join(
        c for c in unicodedata.normalize("NFKC", word) if unicodedata.category(c)[0] not in "CZ"
    )
    return f" in {word!r}, which reads as {readable!r}" if readable != word else ""


def _bad_character(text: str, pos: int) -> ReadOnlyViolation:
    char = text[pos]
    code = f"U+{ord(char):04X}"
    name = unicodedata.name(char, "unnamed")
    category = unicodedata.category(char)
    if category[0] in "ZC":  # separators, invisible format characters, controls
        what = f"the invisible or unicode whitespace character {code} ({name})"
    else:
        what = f"the non-ASCII character {char!r} ({code}, {name}){_spoof_hint(text, pos)}"
    return refuse(
        f"{what} outside a string or `name`",
        "it could hide or spoof a keyword; write Cypher in ASCII outside strings",
    )


def _comment_is_safe(comment: str) -> bool:
    """Whether every character of a comment ends it where every engine would: no
    control characters or unicode line separators (an engine ending `//` at U+2028
    would run what follows)."""
    return all(
        c == "\t" or (c in "\r\n" and not comment.startswith("//")) or c.isprintable()
        for c in comment
    )


def tokenize(text: str) -> list[Token]:
    """Every token of `text`, comments and whitespace included; refuses what cannot be
    read unambiguously."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _bad_character(text, pos)
        kind = match.lastgroup or "punct"
        if kind == "unclosed":
            what = _UNTERMINATED[match.group()]
            raise refuse(f"{what} that is never closed", "the text cannot be read safely")
        if kind in ("line_comment", "block_comment") and not _comment_is_safe(match.group()):
            raise refuse(
                "a comment with control characters or unicode line separators",
                "engines could end it at different places",
            )
        tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


def _glued_comment(tokens: list[Token]) -> str | None:
    """A comment written inside a word (`CR/**/EATE`), which reads as two words to the
    engine but looks like one to a person: the word with its comment, or None."""
    for before, comment, after in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if (
            comment.kind == "block_comment"
            and before.kind in ("word", "number", "quoted")
            and after.kind in ("word", "number", "quoted")
        ):
            return before.text + comment.text + after.text
    return None


def _next_words(tokens: list[Token], index: int, count: int = 3) -> list[str]:
    return [t.text.upper() for t in tokens[index + 1 : index + 1 + count] if t.kind == "word"]


def _classify(word: str, following: list[str]) -> tuple[str, str]:
    """What a clause keyword starts (e.g. `CREATE USER`) and its class."""
    if word in _WRITE_CLAUSES and word != "CREATE":
        return word, WRITE
    for object_word in following:
        if object_word in _ADMIN_OBJECTS:
            return f"{word} {object_word}", ADMIN
        if object_word in _SCHEMA_OBJECTS:
            return f"{word} {object_word}", SCHEMA
        if object_word not in ("OR", "REPLACE", "IF", "NOT", "EXISTS", "ALL"):
            break
    return word, WRITE if word in _WRITE_CLAUSES else ADMIN


def _dotted_name(tokens: list[Token], index: int) -> tuple[str, int]:
    """The dotted name starting at `tokens[index]` (`db.labels`) and the index after it."""
    parts = [tokens[index].name]
    index += 1
    while (
        index + 1 < len(tokens)
        and tokens[index].text == "."
        and tokens[index + 1].kind in ("word", "quoted")
    ):
        parts.append(tokens[index + 1].name)
        index += 2
    return ".".join(parts), index


def _check_call(tokens: list[Token], index: int) -> None:
    """`CALL {...}` and `CALL (x) {...}` are subqueries (checked like the rest); any
    other CALL names a procedure, allowed only from `ALLOWED_PROCEDURES`."""
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    if following is None or following.text in ("{", "("):
        return
    if following.kind not in ("word", "quoted"):
        raise refuse("CALL without a procedure name", "a procedure")
    name, _ = _dotted_name(tokens, index + 1)
    if name.lower() not in {p.lower() for p in ALLOWED_PROCEDURES}:
        raise refuse(
            f"CALL {name}",
            f"a procedure; the console allows only {', '.join(ALLOWED_PROCEDURES)}",
        )


def _check_function(tokens: list[Token], index: int) -> int:
    """A namespaced function call (`apoc.load.json(...)`) is allowed only from the
    built-in computing namespaces; returns the index after the name."""
    name, after = _dotted_name(tokens, index)
    if (
        "." in name
        and after < len(tokens)
        and tokens[after].text == "("
        and name.split(".")[0].lower() not in ALLOWED_FUNCTION_NAMESPACES
    ):
        raise refuse(
            f"the function {name}()",
            f"{FILES} or other side effects; allowed function namespaces: "
            f"{', '.join(sorted(ALLOWED_FUNCTION_NAMESPACES))}",
        )
    return after


def check(text: str) -> str:
    """Refuse (ReadOnlyViolation) Cypher the console must not run; return the statement
    to run (`text` without a final `;`)."""
    if not text or not text.strip():
        raise ReadOnlyViolation("empty query")
    tokens = tokenize(text)
    glued = _glued_comment(tokens)
    if glued is not None:
        raise refuse(f"a comment inside a word ({glued!r})", "it hides what the word is")
    code = [t for t in tokens if t.kind not in _HIDDEN]
    semicolons = [i for i, t in enumerate(code) if t.text == ";"]
    if semicolons and semicolons != [len(code) - 1]:
        raise refuse("several statements separated by ';'", "only one statement runs")
    if semicolons:
        text, code = text[: code[-1].start], code[:-1]
    if not code:
        raise ReadOnlyViolation("empty query")
    index = 0
    while index < len(code):
        token = code[index]
        previous = code[index - 1].text if index else ""
        if token.kind not in ("word", "quoted") or previous in _NAME_CONTEXT:
            index += 1
            continue
        word = token.text.upper() if token.kind == "word" else ""
        if word in _WRITE_CLAUSES or word in _ADMIN_WORDS:
            what, why = _classify(word, _next_words(code, index))
            if what != word or word not in _ADMIN_VERBS_ONLY_BEFORE_OBJECT:
                raise refuse(what, why)
        if word in _REFUSED_WORDS:
            raise refuse(*_REFUSED_WORDS[word])
        if word == "CALL":
            _check_call(code, index)
            named = index + 1 < len(code) and code[index + 1].kind in ("word", "quoted")
            index = _dotted_name(code, index + 1)[1] if named else index + 1
            continue
        index = _check_function(code, index)
    return text
