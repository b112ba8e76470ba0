"""The one exception root of ProvKB and its specialisations."""


class ProvKBError(Exception):
    """Root of every error ProvKB raises on purpose."""


class ConfigError(ProvKBError):
    """A setting is missing or malformed."""


class StoreMisconfigured(ConfigError):
    """The server answers but the settings are wrong for it (no such database): retrying
    cannot help, so writers keep the records in the journal and say so."""


class StoreUnavailable(ProvKBError):
    """The knowledge base cannot be reached (server down, wrong address or credentials)."""


class StoreBusy(StoreUnavailable):
    """Concurrent writers kept conflicting past the driver's retries; nothing was
    written, trying again later can succeed."""


class EmbeddedServerError(StoreUnavailable):
    """The embedded ArcadeDB server could not be started, found or stopped."""


class QueryError(ProvKBError):
    """A query is unknown, malformed, misses a parameter or failed on the server."""


class RecordTooLarge(QueryError):
    """A record is too big to send to the store in one statement; it was not written
    (permanent: retrying the same record cannot help)."""


class ReadOnlyViolation(QueryError):
    """A query given to the read-only console was refused: it could write, administer,
    reach files or URLs, or run more than one statement (nothing ran)."""


class DanglingRelation(QueryError):
    """A write's relations refer to nodes that are not in the knowledge base; the whole
    transaction was rolled back, nothing was written (a store that has just restarted,
    or a concurrent creator of those nodes on ArcadeDB, can answer so for a valid write)."""


class ClaimConflict(QueryError):
    """A concurrent writer created the same unique record first (a steering request's
    claim token, a study item version, a node of a write); this transaction was rolled
    back, nothing was written. Whoever won holds the record."""


class ConsoleTimeout(QueryError):
    """A console query ran past its time limit and was cancelled, on the server too."""


class ProvImportError(ProvKBError):
    """A PROV document could not be imported; nothing was written."""


class ImportConflict(ProvImportError):
    """An import would change records already stored; it was refused, nothing was written.

    `conflicts` lists them all (objects with record, property, stored and file values)."""

    def __init__(self, message: str, conflicts: list | None = None) -> None:
        super().__init__(message)
        self.conflicts = list(conflicts or [])


class JournalError(ProvKBError):
    """A capture journal or its quarantine cannot be read or written (disk full,
    read-only, no permission); the message says which file and why."""


class ExportError(ProvKBError):
    """A PROV document could not be exported."""


class UnknownFormat(ExportError, ProvImportError):
    """A format name or file extension the format registry (kb/formats.py) does not
    know, or an export-only format given to import; the message names the known ones."""


class PredictionError(ProvKBError):
    """A prediction cannot be made or recorded as asked (issue 17): a stored model file
    that is missing or changed since it was saved, an input the model cannot take, labels
    that are not class labels. Nothing was recorded; the message names the problem."""


class SessionRefused(ProvKBError):
    """A next search session cannot start from its parent study (no finished trials,
    `top` larger than them, an unknown or clashing name...): nothing was created."""


class SteeringRejected(ProvKBError):
    """A steering request cannot be applied; it was recorded as rejected, nothing changed.

    `requests` lists the requests of the call (the rejected ones with their reasons)."""

    def __init__(self, message: str, requests: list | None = None) -> None:
        super().__init__(message)
        self.requests = list(requests or [])


class StudyEditRefused(ProvKBError):
    """A trial-queue edit is not allowed (item started or finished, or changed meanwhile)."""


class StaleStudyEdit(StudyEditRefused):
    """A queue edit named an item as the person saw it (pending, at a version) and the
    item is no longer so: it started, finished or was removed, or another edit made a
    newer version. Nothing changed. `item_id`, `seen_version`, `status` and `version`
    say what was named and what the item is now."""

    def __init__(
        self,
        message: str,
        item_id: int | None = None,
        seen_version: int | None = None,
        status: str | None = None,
        version: int | None = None,
    ) -> None:
        super().__init__(message)
        self.item_id, self.seen_version = item_id, seen_version
        self.status, self.version = status, version


class ReproduceError(ProvKBError):
    """`provkb reproduce` cannot write a script for a run (no such run, or the output
    path is unusable); nothing was written."""


class ScanError(ProvKBError):
    """A training script cannot be scanned (`provkb scan`): the file cannot be read."""
