"""Sample sheets: a TSV or CSV file that the Weavefile includes, read as vars.

Snakemake workflows read a `samples.tsv` with pandas and look values up per sample; here an
included sheet gives the same as TOML would: its first column, the rows' names, becomes a list
var named after the file (`samples.tsv` -> `samples`), and each other column a table var named
by its header, one entry per row (`{vars.fq1[wildcards.sample]}`). Every value is text, as
the file writes it.
"""

from __future__ import annotations

from .errors import ManifestError
from .manifest import NAME_RE, SHEET_SUFFIXES  # (manifest imports this module only for a sheet)

TYPE_CHECKING = False  # not typing's: importing typing costs every start (annotations are strings)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Dict, List


def read_sheet(text: str, path: str, name: str) -> Dict[str, Any]:
    """The vars of sheet `name` (project-relative) holding `text`; `path` as messages show it.

    Blank lines and lines whose first field starts with '#' are skipped; fields are stripped
    of surrounding spaces; a row with fewer fields than the header has empty ones at its end,
    as pandas reads it. Errors name the file and line."""
    import csv
    import io
    import os

    stem, suffix = os.path.splitext(os.path.basename(name))
    if not NAME_RE.match(stem):
        raise ManifestError(
            f"the sheet's name '{stem}' is not a var name",
            path=path,
            hint="its first column becomes a list var named after the file: rename it to letters,"
            " digits and '_' (e.g. samples.tsv)",
        )
    # strict: a quote left open is an error at its row, not the rest of the file in one field
    reader = csv.reader(io.StringIO(text), delimiter=SHEET_SUFFIXES[suffix.lower()], strict=True)
    header: List[str] = []
    keys: List[str] = []
    key_lines: Dict[str, int] = {}
    columns: Dict[str, Dict[str, str]] = {}
    line = end = 0  # the first and last line of the row being read (a quoted field may span lines)
    try:
        for fields in reader:
            line, end = end + 1, reader.line_num
            fields = [field.strip() for field in fields]
            if not any(fields) or fields[0].startswith("#"):
                continue
            if not header:
                header = fields
                _check_header(header, stem, path, line)
                columns = {column: {} for column in header[1:]}
                continue
            if len(fields) > len(header):
                raise ManifestError(
                    f"this row has {len(fields)} fields, the header {len(header)}",
                    path=path,
                    line=line,
                    hint="give each column a header (the first line), or remove the extra fields (a"
                    " separator at the end of a line makes one more, empty field)",
                )
            key = fields[0]
            if not key:
                raise ManifestError(
                    "this row's first field is empty: it names the row", path=path, line=line,
                    hint="the first column names each row (the sample), as its table vars' keys",
                )
            if key in key_lines:
                raise ManifestError(
                    f"row '{key}' is also on line {key_lines[key]}",
                    path=path,
                    line=line,
                    hint="each row's first field names it once; a sheet keyed by two columns"
                    " (sample and unit) needs one field naming both (S1_u1)",
                )
            key_lines[key] = line
            keys.append(key)
            fields += [""] * (len(header) - len(fields))
            for column, value in zip(header[1:], fields[1:]):
                columns[column][key] = value
    except csv.Error as exc:
        line = end + 1  # the row the reader could not finish starts after the last one read
        why = "a quoted field is not closed" if "end of data" in str(exc) else str(exc)
        raise ManifestError(
            f"cannot be read as a sheet: {why}",
            path=path,
            line=line,
            hint='a field in double quotes ends at the next quote: "a, b"; a quote inside it is written twice',
        ) from None
    if not header:
        raise ManifestError(
            "holds no header line", path=path,
            hint="the first line names the columns: the rows' name, then one table var per column",
        )
    return {stem: keys, **columns}


def _check_header(header: List[str], stem: str, path: str, line: int) -> None:
    seen: Dict[str, int] = {}
    for number, column in enumerate(header[1:], 2):
        if not NAME_RE.match(column):
            raise ManifestError(
                f"column {number}'s header '{column}' is not a var name",
                path=path,
                line=line,
                hint="each column but the first becomes a table var named by its header: letters,"
                " digits and '_', not starting with a digit",
            )
        if column == stem:
            raise ManifestError(
                f"column '{column}' has the sheet's own name",
                path=path,
                line=line,
                hint=f"the list of rows is the var '{stem}': rename the column or the file",
            )
        if column in seen:
            raise ManifestError(
                f"column '{column}' is named twice (columns {seen[column]} and {number})",
                path=path,
                line=line,
                hint="each column's header names a var: rename one",
            )
        seen[column] = number
