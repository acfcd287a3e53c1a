"""The state store: `.weave/state.db`, an SQLite database in WAL mode.

Owns the persistent format: file digests keyed by stat fingerprint, job success records keyed
by signature (so a content-addressed output cache can later restore outputs by signature), the
latest signature of each job, and run history. Knows SQL and nothing of graphs or scheduling.
Invariant: losing or corrupting this store may only cause extra work, never a wrong result;
a store that cannot be read is moved aside and replaced by an empty one.
"""

from __future__ import annotations

import itertools
import os
import stat
import time

try:  # the C module under the sqlite3 package, whose import also loads datetime (for adapters
    # weave never uses): ~2 ms of every start, a fifth of what a no-op does beyond Python's own
    import _sqlite3 as sqlite3
except ImportError:  # pragma: no cover - an interpreter that lays it out otherwise
    import sqlite3  # type: ignore[no-redef]

from .errors import StoreError
from .paths import STATE_DIR

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    import re
    from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

    # (size, mtime_ns, inode, ctime_ns, digest, hashed_at_ns)
    FileRow = Tuple[int, int, int, int, str, int]

SCHEMA_VERSION = 3
APPLICATION_ID = 0x57454156  # 'WEAV': tells our database from any other SQLite file
DB_NAME = "state.db"
KEEP_RUNS = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ino INTEGER, ctime_ns INTEGER,
    digest TEXT, hashed_at_ns INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    signature TEXT PRIMARY KEY, job_key TEXT NOT NULL, rule TEXT NOT NULL,
    recipe TEXT NOT NULL, inputs TEXT NOT NULL, outputs TEXT NOT NULL,
    duration REAL, finished_at REAL, discovered TEXT
);
CREATE INDEX IF NOT EXISTS records_by_job ON records(job_key);
CREATE TABLE IF NOT EXISTS jobs (
    job_key TEXT PRIMARY KEY, signature TEXT NOT NULL, duration REAL, finished_at REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL, ended REAL, argv TEXT, targets TEXT,
    outcome TEXT, ran INTEGER, failed INTEGER, up_to_date INTEGER
);
CREATE TABLE IF NOT EXISTS attempts (
    run_id INTEGER, job_key TEXT, rule TEXT, attempt INTEGER, started REAL, duration REAL,
    exit_code INTEGER, status TEXT, peak_rss INTEGER, cpu_time REAL, log TEXT
);
CREATE INDEX IF NOT EXISTS attempts_by_run ON attempts(run_id);
CREATE TABLE IF NOT EXISTS stamps (key TEXT PRIMARY KEY, data BLOB) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS made_elsewhere (path TEXT PRIMARY KEY) WITHOUT ROWID;
"""


def _text(name: str) -> Any:
    """`name` (a path or job key) as SQLite stores it. TEXT must be UTF-8; a name from a file
    system that holds other bytes keeps them as lone surrogates (Python's surrogateescape), and
    is stored as a BLOB of those bytes instead: it reads back as the same name, and no BLOB
    equals a TEXT, so it cannot collide with another name."""
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape")
    return name


def _name(stored: Any) -> Any:
    """The inverse of _text (other values pass through)."""
    return stored.decode("utf-8", "surrogateescape") if isinstance(stored, bytes) else stored


# Rows of the digest cache with the types weave writes: one damaged by hand or by a bad disk
# (a NULL time, a blob digest) is left out, as if never cached (the file is read again),
# instead of crashing every command that meets it. SQLite keeps the lookups by path on the
# index through the subquery.
_FILES_QUERY = (
    "SELECT path, size, mtime_ns, ino, ctime_ns, digest, hashed_at_ns FROM (SELECT * FROM files WHERE"
    " typeof(size) = 'integer' AND typeof(mtime_ns) = 'integer' AND typeof(ino) = 'integer'"
    " AND typeof(ctime_ns) = 'integer' AND typeof(hashed_at_ns) = 'integer' AND typeof(digest) IN ('text', 'null'))"
)


_JSON_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _json_escape(match: re.Match) -> str:
    char = match.group()
    short = _JSON_SHORT.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code > 0xFFFF:  # as a UTF-16 surrogate pair, as JSON spells it
        code -= 0x10000
        return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def _json_plain(text: str) -> bool:
    """Whether JSON text (json.dumps's, ASCII) holds `text` as it is: printable ASCII without
    '"' and '\\', told by C string scans (a regex search over a fan-in's 10k paths costs as
    much as the JSON encoder)."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def json_strings(items: Iterable[str]) -> str:
    """A list of strings as JSON text, the same as json.dumps gives (ASCII, every other
    character escaped): what the no-op build records of its command line, without importing
    json (~2 ms of its start-up)."""
    return "[" + ", ".join('"' + (item if _json_plain(item) else _escape_json(item)) + '"' for item in items) + "]"


def _recipe_outputs(recipe: object) -> Optional[List[str]]:
    """The output paths a record's recipe (JSON text) names, or None if it cannot be read."""
    import json

    try:
        paths = json.loads(recipe).get("outputs", [])  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError):
        return None
    if not isinstance(paths, list) or not all(isinstance(path, str) for path in paths):
        return None
    return paths


def _escape_json(text: str) -> str:
    # Everything but printable ASCII, '"' and '\\' (a class spelled up to U+10FFFF would cost
    # 60M instructions to compile; compiled on first use: command lines rarely need it; and
    # re imported here, not by every no-op build).
    import re

    return re.sub(r'[^ -~]|["\\]', _json_escape, text)


def json_pairs(pairs: Sequence[Tuple[str, str]], encode: Callable[[object], str]) -> str:
    """(path, digest) pairs as JSON text, the same as `encode` (json.JSONEncoder().encode)
    gives: written directly when no string needs escaping (nearly always), which a record
    of a fan-in job over 10k files needs (~90M instructions through the encoder, ~25 ms of
    a one-change rebuild)."""
    try:
        flat = "".join(itertools.chain.from_iterable(pairs))
    except TypeError:  # not all strings: the encoder says what it makes of them
        return encode(pairs)
    if not _json_plain(flat) or any(len(pair) != 2 for pair in pairs):
        return encode(pairs)
    return "[" + ", ".join([f'["{a}", "{b}"]' for a, b in pairs]) + "]"


class Record:
    """A job's success: the recipe and input digests it ran with and the outputs it made, and
    the digests of the other files its depfile said it read (`discovered`)."""

    __slots__ = ("signature", "job_key", "rule", "recipe", "inputs", "outputs", "duration", "finished_at", "discovered")

    def __init__(
        self,
        signature: str,
        job_key: str,
        rule: str,
        recipe: Dict[str, Any],
        inputs: List[Tuple[str, str]],
        outputs: List[str],
        duration: float,
        finished_at: float,
        discovered: Optional[List[Tuple[str, str]]] = None,
    ):
        self.signature = signature
        self.job_key = job_key
        self.rule = rule
        self.recipe = recipe
        self.inputs = inputs
        self.outputs = outputs
        self.duration = duration
        self.finished_at = finished_at
        # None for a job without a depfile; a list (maybe empty) for one with a depfile
        self.discovered = discovered


class JobRow:
    """The latest success of a job (by job key): its signature, output digests and, for a job
    with a depfile, the (path, digest) of each file it listed. `renamed_from`: the key it was
    recorded under, for a job that takes the latest success of its rule's old name."""

    __slots__ = ("signature", "outputs", "duration", "_discovered", "renamed_from")

    def __init__(
        self, signature: str, outputs: Optional[str], duration: Optional[float], discovered: object = None
    ):
        self.signature = signature
        self.outputs = outputs.split(" ") if outputs else []
        self.duration = duration
        self._discovered = discovered  # JSON text as stored (decoded on first use), or a list
        self.renamed_from: Optional[str] = None

    def renamed(self, old_key: str) -> JobRow:
        """This success as the latest of a renamed rule's job (recorded as `old_key`'s)."""
        row = JobRow(self.signature, None, self.duration, self._discovered)
        row.outputs = list(self.outputs)
        row.renamed_from = old_key
        return row

    @property
    def has_listing(self) -> bool:
        """Whether the run recorded what its depfile listed (if only nothing)."""
        return self._discovered is not None

    @property
    def discovered(self) -> List[Tuple[str, str]]:
        value = self._discovered
        if isinstance(value, str):
            import json

            try:
                value = [tuple(item) for item in json.loads(value)]
            except (ValueError, TypeError):
                value = None  # unreadable: as if the job had never listed its files
            self._discovered = value
        return value or []  # type: ignore[return-value]


class Store:
    """Open with `Store.open(project_root)`; every write is one short transaction."""

    def __init__(
        self, connection: Optional[sqlite3.Connection], path: str, warnings: List[str], readonly: bool = False
    ):
        self.connection = connection
        self.path = path
        self.warnings = warnings
        self.readonly = readonly
        self.broken = False
        # Damage found after opening (a page the open-time check did not read): the file is
        # moved aside when the store closes, so that the next build starts afresh instead of
        # every build running without records.
        self.damaged = False
        # True while the store holds no record at all (a first build): record() then answers
        # without a query per job. Builds hold the project lock, so no one else adds records.
        self._no_records: Optional[bool] = None

    # -- opening -----------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str, readonly: bool = False) -> Store:
        """Open (creating if needed) the store of the project at `root`.

        A store that is corrupt, truncated, foreign or from an unknown version is moved aside
        (`state.db.corrupt-<time>`) with a warning, and an empty one takes its place.
        """
        state_dir = os.path.join(root, STATE_DIR)
        path = os.path.join(state_dir, DB_NAME)
        warnings: List[str] = []
        if readonly and not os.path.exists(path):
            return cls(None, path, warnings)
        try:
            os.makedirs(state_dir, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create {state_dir}: {exc.strerror}") from None
        # A store weave may not read or write is not a damaged one: never moved aside (its
        # history would be lost for a permission).
        refused = None
        try:
            mode = os.stat(path).st_mode
        except OSError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):
            # (SQLite would wait on a FIFO forever; nor is a directory a store to move aside)
            raise StoreError(
                f"cannot use {os.path.relpath(path)}: it is not a regular file",
                hint="something else is in the way there: remove it (weave makes its store again)",
            )
        if mode is not None and not os.access(path, os.R_OK if readonly else os.R_OK | os.W_OK):
            refused = path
        elif not readonly and not os.access(state_dir, os.W_OK | os.X_OK):
            refused = state_dir  # SQLite writes its journal files beside the store
        elif not readonly:
            refused = _writable_sidecars(path)
        if refused is not None:
            raise StoreError(
                f"cannot {'read' if readonly else 'read and write'} {os.path.relpath(refused)}: permission denied",
                hint="check its permissions (and its owner): weave keeps its records there",
            )
        try:
            connection = cls._connect(path, readonly)
        except _Unusable as exc:
            if readonly:
                warnings.append(f"state store {path} is unusable ({exc}); treating everything as never built")
                return cls(None, path, warnings, readonly=True)
            try:
                aside = _move_aside(path)
            except OSError as move_error:
                raise StoreError(f"cannot move aside unusable state store {path}: {move_error}") from None
            warnings.append(
                f"state store was unusable ({exc}); moved it to {os.path.basename(aside)} "
                "and started afresh: jobs will rerun as if never built"
            )
            try:
                connection = cls._connect(path, readonly)
            except _Unusable as again:
                raise StoreError(f"cannot create state store {path}: {again}") from None
        return cls(connection, path, warnings, readonly=readonly)

    @staticmethod
    def _connect(path: str, readonly: bool) -> sqlite3.Connection:
        connection = None
        try:
            if readonly:
                uri = "file:" + path.replace("?", "%3f").replace("#", "%23") + "?mode=ro"
                if not os.access(os.path.dirname(path), os.W_OK):
                    # A read-only .weave/: SQLite cannot make the shared-memory file a reader of
                    # a WAL store needs. Read the file as it is (a closed store has its WAL
                    # checkpointed into it).
                    uri += "&immutable=1"
                connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                connection = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
            connection.execute("PRAGMA busy_timeout = 30000")
            application_id = connection.execute("PRAGMA application_id").fetchone()[0]
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables and application_id != APPLICATION_ID:
                raise _Unusable("not a weave state store")
            if tables and version == 2 and not readonly:
                # 2 -> 3 adds a column that older records leave empty.
                connection.executescript(
                    "BEGIN; ALTER TABLE records ADD COLUMN discovered TEXT;"
                    f" PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )
                version = SCHEMA_VERSION
            if tables and version == 2 and readonly:
                # Read as it is (the next build adds the column): the records seen through a
                # view that has the column, empty.
                connection.execute("CREATE TEMP VIEW records AS SELECT *, NULL AS discovered FROM main.records")
                version = SCHEMA_VERSION
            if tables and version != SCHEMA_VERSION:
                # Older versions are rebuilt rather than migrated: the store is a cache of
                # facts that a build re-derives, so rebuilding costs only extra work.
                raise _Unusable(f"schema version {version}, expected {SCHEMA_VERSION}")
            if not readonly:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("PRAGMA synchronous = NORMAL")
                if not tables:
                    connection.executescript(
                        "BEGIN;"
                        + _SCHEMA
                        + f"PRAGMA application_id = {APPLICATION_ID};"
                        + f"PRAGMA user_version = {SCHEMA_VERSION};"
                        + "COMMIT;"
                    )
            # Touch every table so that a truncated or corrupt file fails here, not mid-build.
            for table in ("files", "records", "jobs"):
                if tables or not readonly:
                    connection.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()
            return connection
        except sqlite3.DatabaseError as exc:
            if connection is not None:
                connection.close()
            raise _Unusable(str(exc)) from None

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            finally:
                self.connection = None
        if self.damaged and not self.readonly:
            self.damaged = False
            try:
                aside = _move_aside(self.path)
            except OSError as exc:
                self.warnings.append(f"cannot move aside the damaged state store {self.path}: {exc}")
                return
            self.warnings.append(
                f"moved the damaged state store to {os.path.basename(aside)}: the next build starts "
                "afresh and runs every job once"
            )

    def _fail(self, exc: Exception) -> None:
        if _is_damage(exc):
            self.damaged = True
        if not self.broken:
            self.broken = True
            note = ""
            if "readonly" in str(exc):  # a file of the store (or its -wal, -shm) is not writable
                note = f" (check the permissions of {self.path} and of its -wal and -shm files beside it)"
            self.warnings.append(
                f"state store error ({exc}){note}; continuing without it: later builds may redo work"
            )

    # -- reading -----------------------------------------------------------------------------
    def _fetch(self, query: str, params: Sequence[Any] = ()) -> Optional[list]:
        """The rows of `query`; None without a store, or when reading it fails (reported)."""
        if self.connection is None:
            return None
        try:
            return self.connection.execute(query, params).fetchall()
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            return None

    def _fetch_in(self, query: str, column: str, names: Sequence[str]) -> Optional[list]:
        """The rows of `query` whose `column` is one of `names`, in chunks (SQLite limits the
        number of parameters of a statement)."""
        rows: list = []
        for start in range(0, len(names), 500):
            chunk = [_text(name) for name in names[start : start + 500]]
            found = self._fetch(f"{query} WHERE {column} IN ({','.join('?' * len(chunk))})", chunk)
            if found is None:
                return None
            rows += found
        return rows

    def load_files(self, paths: Optional[Sequence[str]] = None) -> Dict[str, FileRow]:
        """The digest cache: every row, or the rows of `paths` (those the store has)."""
        rows = self._fetch(_FILES_QUERY) if paths is None else self._fetch_in(_FILES_QUERY, "path", paths)
        return {} if rows is None else {_name(row[0]): row[1:] for row in rows}

    def file_rows_under(self, directory: str) -> Dict[str, FileRow]:
        """The digest cache's rows of the files under `directory` (its whole tree), in one
        range query on the key (names stored as bytes, not UTF-8, are not among them)."""
        if self.broken:
            return {}
        prefix = directory.rstrip("/") + "/"
        rows = self._fetch(f"{_FILES_QUERY} WHERE path >= ? AND path < ?", (prefix, prefix[:-1] + "0"))  # '0' sorts right after '/'
        return {} if rows is None else {_name(row[0]): row[1:] for row in rows}

    def file_row(self, path: str) -> Optional[FileRow]:
        """The digest cache's row of `path`, if the store has one."""
        if self.broken:
            return None
        rows = self._fetch(f"{_FILES_QUERY} WHERE path = ?", (_text(path),))
        return tuple(rows[0][1:]) if rows else None  # type: ignore[return-value]

    def load_jobs(self, keys: Optional[Sequence[str]] = None) -> Dict[str, JobRow]:
        """The latest success of every job (or of the jobs in `keys`)."""
        # (a value of another type than weave writes is taken as none: the job reruns)
        query = (
            "SELECT j.job_key, CASE WHEN typeof(j.signature) = 'text' THEN j.signature END,"
            " CASE WHEN typeof(r.outputs) = 'text' THEN r.outputs END,"
            " CASE WHEN typeof(j.duration) IN ('real', 'integer') THEN j.duration END,"
            " CASE WHEN typeof(r.discovered) = 'text' THEN r.discovered END FROM jobs j "
            "LEFT JOIN records r ON r.signature = j.signature"
        )
        rows = self._fetch(query) if keys is None else self._fetch_in(query, "j.job_key", keys)
        return {} if rows is None else {_name(row[0]): JobRow(row[1], row[2], row[3], row[4]) for row in rows}

    def has_records(self) -> bool:
        """Whether any job success is recorded (asked once: a first build has none)."""
        if self.connection is None:
            return False
        if self._no_records is None:
            try:
                self._no_records = bool(
                    self.connection.execute("SELECT NOT EXISTS (SELECT 1 FROM records)").fetchone()[0]
                )
            except sqlite3.DatabaseError as exc:
                self._fail(exc)
                return False
        return not self._no_records

    def record(self, signature: str) -> Optional[Record]:
        import json

        if not self.has_records():
            return None
        assert self.connection is not None
        try:
            row = self.connection.execute(
                "SELECT signature, job_key, rule, recipe, inputs, outputs, duration, finished_at, discovered "
                "FROM records WHERE signature = ?",
                (signature,),
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            return None
        if row is None:
            return None
        try:
            return Record(
                row[0],
                _name(row[1]),
                row[2],
                json.loads(row[3]),
                [tuple(item) for item in json.loads(row[4])],  # type: ignore[misc]
                row[5].split(" ") if row[5] else [],
                row[6] or 0.0,
                row[7] or 0.0,
                [tuple(item) for item in json.loads(row[8])] if row[8] else None,  # type: ignore[misc]
            )
        except (ValueError, TypeError) as exc:
            self._fail(exc)
            return None

    def durations(self) -> Dict[str, float]:
        if self.connection is None:
            return {}
        try:
            rows = self.connection.execute(
                "SELECT job_key, duration FROM jobs WHERE typeof(duration) IN ('real', 'integer')"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            return {}
        return {_name(key): duration for key, duration in rows}

    # -- writing -----------------------------------------------------------------------------
    def commit(
        self,
        records: Sequence[Record] = (),
        files: Iterable[Tuple[str, FileRow]] = (),
        forget_files: Iterable[str] = (),
        forget_jobs: Iterable[str] = (),
        attempts: Sequence[Tuple[Any, ...]] = (),
        forget_records: Iterable[str] = (),
        forget_latest: Iterable[str] = (),
        adopt: Sequence[Tuple[str, str]] = (),
    ) -> None:
        """Write records, file digests and attempt rows in one transaction (all or nothing).
        `adopt`: (job key, signature of one of its records) to make that record its latest."""
        import json

        if self.connection is None or self.broken:
            return
        connection = self.connection
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                forget_jobs = list(forget_jobs)
                forget_records = list(forget_records)
                forget_latest = list(forget_latest)
                if forget_latest:  # which record is each job's latest; its records stay
                    connection.executemany("DELETE FROM jobs WHERE job_key = ?", [(_text(key),) for key in forget_latest])
                if records or forget_jobs or forget_records or adopt:
                    # Records changed: no no-op stamp may outlive them (see stamp.py).
                    connection.execute("DELETE FROM stamps")
                if forget_records:
                    connection.executemany(
                        "DELETE FROM records WHERE signature = ?", [(signature,) for signature in forget_records]
                    )
                if forget_jobs:
                    keys = [(_text(key),) for key in forget_jobs]
                    connection.executemany("DELETE FROM jobs WHERE job_key = ?", keys)
                    connection.executemany("DELETE FROM records WHERE job_key = ?", keys)
                forget_files = list(forget_files)
                if forget_files:
                    connection.executemany(
                        "DELETE FROM files WHERE path = ?", [(_text(path),) for path in forget_files]
                    )
                connection.executemany(
                    "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(_text(path),) + tuple(row) for path, row in files],
                )
                if records:
                    self._no_records = False
                    # What json.dumps(..., sort_keys=True) gives, without a new encoder per call.
                    encode_recipe = json.JSONEncoder(sort_keys=True).encode
                    encode = json.JSONEncoder().encode
                    connection.executemany(
                        "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [
                            (
                                r.signature,
                                _text(r.job_key),
                                r.rule,
                                encode_recipe(r.recipe),
                                json_pairs(r.inputs, encode),
                                " ".join(r.outputs),
                                r.duration,
                                r.finished_at,
                                json_pairs(r.discovered, encode) if r.discovered is not None else None,
                            )
                            for r in records
                        ],
                    )
                    connection.executemany(
                        "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?)",
                        [(_text(r.job_key), r.signature, r.duration, r.finished_at) for r in records],
                    )
                if adopt:
                    connection.executemany(  # under the job's key (a renamed rule's record has the old one)
                        "INSERT OR REPLACE INTO jobs SELECT ?, signature, duration, finished_at "
                        "FROM records WHERE signature = ?",
                        [(_text(key), signature) for key, signature in adopt],
                    )
                if attempts:
                    connection.executemany(
                        "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _attempt_rows(attempts)
                    )
                connection.execute("COMMIT")
            except BaseException:
                # SQLite ends the transaction itself on some errors (a full disk): a ROLLBACK
                # then fails, and its "no transaction is active" would hide the real cause.
                if connection.in_transaction:
                    try:
                        connection.execute("ROLLBACK")
                    except sqlite3.DatabaseError:
                        pass
                raise
        except sqlite3.DatabaseError as exc:
            self._fail(exc)

    def stamp(self, key: str) -> Optional[bytes]:
        """The token of the no-op stamp stored under `key`, if any (see stamp.py): the stamp
        file is valid only while its token is here, and record changes delete every token."""
        if self.connection is None:
            return None
        try:
            row = self.connection.execute("SELECT data FROM stamps WHERE key = ?", (_text(key),)).fetchone()
        except sqlite3.DatabaseError:
            return None
        return row[0] if row else None

    def write_stamp(self, key: str, token: bytes) -> None:
        if self.connection is None or self.broken:
            return
        try:
            self.connection.execute("INSERT OR REPLACE INTO stamps VALUES (?, ?)", (_text(key), token))
        except sqlite3.DatabaseError as exc:
            self._fail(exc)

    def made_elsewhere(self) -> Set[str]:
        """Files a job's depfile listed that a rule makes whose job the build did not include
        (a generated header no declared input asks for): later builds include that job."""
        if self.connection is None:
            return set()
        try:
            return {_name(row[0]) for row in self.connection.execute("SELECT path FROM made_elsewhere")}
        except sqlite3.DatabaseError:  # (a store older than the table, opened read-only)
            return set()

    def add_made_elsewhere(self, paths: Iterable[str]) -> None:
        if self.connection is None or self.broken:
            return
        try:  # (one statement: autocommitted whole)
            self.connection.executemany("INSERT OR IGNORE INTO made_elsewhere VALUES (?)", [(_text(p),) for p in paths])
        except sqlite3.DatabaseError as exc:
            self._fail(exc)

    def recorded_outputs(self) -> List[Tuple[str, str, List[Tuple[str, str]]]]:
        """(signature, job key, [(output path, its digest then)]) of every record kept (each
        job's last few), oldest first: a job whose output paths depend on vars has made
        different files over time."""

        if self.connection is None:
            return []
        try:
            rows = self.connection.execute(
                "SELECT signature, job_key, recipe, outputs FROM records ORDER BY finished_at"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            return []
        found: List[Tuple[str, str, List[Tuple[str, str]]]] = []
        for signature, job_key, recipe, outputs in rows:
            paths = _recipe_outputs(recipe)
            digests = outputs.split(" ") if isinstance(outputs, str) and outputs else []  # as commit() writes them
            if paths is not None and len(paths) == len(digests):  # (an unreadable record names nothing)
                found.append((signature, _name(job_key), list(zip(paths, digests))))
        return found

    def latest_outputs(self, naming: Optional[Sequence[str]] = None) -> List[Tuple[str, List[str], float]]:
        """(job key, the outputs its recipe names, a directory with its slash, when it
        finished) of each job's latest success; with `naming`, only (at least) those whose
        recipe names one of these paths, found by SQLite in the recipe's text, so that few
        recipes are decoded."""
        query = "SELECT j.job_key, r.recipe, j.finished_at FROM jobs j JOIN records r ON r.signature = j.signature"
        if naming is None:
            rows = self._fetch(query) or []
        else:
            rows = []
            for start in range(0, len(naming), 200):
                chunk = [json_strings([path])[1:-1] for path in naming[start : start + 200]]
                rows += self._fetch(f"{query} WHERE " + " OR ".join(["instr(r.recipe, ?) > 0"] * len(chunk)), chunk) or []
        found: List[Tuple[str, List[str], float]] = []
        for key, recipe, finished_at in rows:
            outputs = _recipe_outputs(recipe)
            if outputs is not None:
                found.append((_name(key), outputs, finished_at if isinstance(finished_at, (int, float)) else 0.0))
        return found

    def prune_records(self, job_keys: Iterable[str], keep: int = 8) -> None:
        """Keep only the newest `keep` records of each job, bounding the store's growth."""
        if self.connection is None or self.broken:
            return
        try:
            # Plain `?` placeholders: numbered ones (`?1`) bound from a sequence are deprecated
            # from Python 3.12 and an error from 3.14.
            self.connection.executemany(
                "DELETE FROM records WHERE job_key = ? AND signature NOT IN "
                "(SELECT signature FROM records WHERE job_key = ? ORDER BY finished_at DESC LIMIT ?)",
                [(key, key, keep) for key in map(_text, job_keys)],
            )
        except sqlite3.DatabaseError as exc:
            self._fail(exc)

    # -- run history -------------------------------------------------------------------------
    def start_run(self, argv: Sequence[str], targets: Sequence[str], started: Optional[float] = None) -> Optional[int]:
        """Record a run that began at `started` (wall clock; now if None)."""
        if self.connection is None or self.broken:
            return None
        try:
            cursor = self.connection.execute(
                "INSERT INTO runs (started, argv, targets, outcome) VALUES (?, ?, ?, 'running')",
                (started if started is not None else time.time(), json_strings(argv), json_strings(targets)),
            )
            return cursor.lastrowid
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            return None

    def end_run(self, run_id: Optional[int], outcome: str, ran: int, failed: int, up_to_date: int) -> None:
        if run_id is None or self.connection is None or self.broken:
            return
        try:
            self.connection.execute(
                "UPDATE runs SET ended = ?, outcome = ?, ran = ?, failed = ?, up_to_date = ? WHERE id = ?",
                (time.time(), outcome, ran, failed, up_to_date, run_id),
            )
            # Bound the history: keep the newest KEEP_RUNS runs and their attempts.
            if run_id % 50 == 0:
                self.connection.execute("DELETE FROM attempts WHERE run_id <= ?", (run_id - KEEP_RUNS,))
                self.connection.execute("DELETE FROM runs WHERE id <= ?", (run_id - KEEP_RUNS,))
        except sqlite3.DatabaseError as exc:
            self._fail(exc)

    def add_attempts(self, rows: Sequence[Tuple[Any, ...]]) -> None:
        """Rows of (run_id, job_key, rule, attempt, started, duration, exit_code, status,
        peak_rss, cpu_time, log)."""
        if not rows or self.connection is None or self.broken:
            return
        try:
            self.connection.executemany(
                "INSERT INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _attempt_rows(rows)
            )
        except sqlite3.DatabaseError as exc:
            self._fail(exc)

    def runs(self, limit: int = 20) -> List[Tuple[Any, ...]]:
        if self.connection is None:
            return []
        try:
            return self.connection.execute(
                "SELECT id, started, ended, argv, targets, outcome, ran, failed, up_to_date "
                "FROM runs ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        except sqlite3.DatabaseError:
            return []

    def last_attempts(self, runs: int = 20) -> Dict[str, Tuple[int, str, Optional[int], Optional[str]]]:
        """Each job's last attempt in the newest `runs` runs: (run id, status, exit code, log)."""
        if self.connection is None:
            return {}
        try:
            rows = self.connection.execute(
                "SELECT job_key, run_id, status, exit_code, log FROM attempts "
                "WHERE run_id > (SELECT coalesce(max(id), 0) FROM runs) - ? ORDER BY run_id, started",
                (runs,),
            ).fetchall()
        except sqlite3.DatabaseError:
            return {}
        return {_name(row[0]): (row[1], row[2], row[3], _name(row[4])) for row in rows}

    def attempts(self, run_id: int) -> List[Tuple[Any, ...]]:
        if self.connection is None:
            return []
        try:
            rows = self.connection.execute(
                "SELECT job_key, rule, attempt, started, duration, exit_code, status, peak_rss, "
                "cpu_time, log FROM attempts WHERE run_id = ? ORDER BY started",
                (run_id,),
            ).fetchall()
        except sqlite3.DatabaseError:
            return []
        return [(_name(row[0]),) + row[1:9] + (_name(row[9]),) for row in rows]


def _attempt_rows(rows: Sequence[Tuple[Any, ...]]) -> List[Tuple[Any, ...]]:
    """Attempt rows with their job key (1) and log path (10) as _text stores them."""
    return [
        row[:1] + (_stored(row[1]),) + row[2:10] + (_stored(row[10]),) if len(row) == 11 else row  # else SQLite refuses it
        for row in rows
    ]


def _stored(value: Any) -> Any:
    return _text(value) if isinstance(value, str) else value


def _writable_sidecars(path: str) -> Optional[str]:
    """Make the store's -wal and -shm files writable where the store is: a reader (plan,
    status) that opened a read-only store had SQLite make them with its mode, and once the
    store's own mode is fixed they still refused every write. None when all is well, else the
    file that stays read-only."""
    for suffix in ("-wal", "-shm"):
        sidecar = path + suffix
        if os.path.exists(sidecar) and not os.access(sidecar, os.R_OK | os.W_OK):
            try:
                os.chmod(sidecar, os.stat(path).st_mode & 0o666)
            except OSError:
                return sidecar
            if not os.access(sidecar, os.R_OK | os.W_OK):
                return sidecar
    return None


def _move_aside(path: str) -> str:
    """Rename the store (and its WAL files) to `path.corrupt-TIME`; the new name."""
    aside = f"{path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
    for suffix in ("", "-wal", "-shm"):
        try:
            os.replace(path + suffix, aside + suffix)
        except FileNotFoundError:
            pass
    return aside


def _is_damage(exc: Exception) -> bool:
    """Whether an error reading or writing the store says the file itself is damaged (not
    busy, full or read-only): SQLite finds it corrupt, or a row holds what weave never writes
    (text that is not UTF-8, a record that is not JSON), or a table has other columns. Such a
    store is moved aside (close), or every later build would meet the same row and redo
    everything."""
    if isinstance(exc, (ValueError, TypeError)) and not isinstance(exc, sqlite3.Error):
        return True  # a row that does not decode
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None and code & 0xFF in (11, 26):  # SQLITE_CORRUPT, SQLITE_NOTADB
        return True
    text = str(exc).lower()
    return any(sign in text for sign in _DAMAGE_SIGNS)


_DAMAGE_SIGNS = (
    "malformed",
    "not a database",
    "no such table",
    "no such column",
    "could not decode to utf-8",  # a text column holding other bytes
    "columns but",  # "table records has 10 columns but 9 values were supplied"
)


class _Unusable(Exception):
    pass
