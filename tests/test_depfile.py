"""Depfiles (a rule's `depfile`): the files a command says it read join its record. The parser
as a unit, then real `weave` processes with a stand-in compiler (bash) that follows
`#include "X"` lines and writes a make-syntax depfile, as `cc -MMD -MF` does."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import Project, assert_user_error, wait_past_racy_window
from test_stamp import fast_path_used
from weavebuild import Project as ApiProject
from weavebuild.depfile import DepfileError, parse, project_paths
from weavebuild.filestate import RACY_WINDOW_NS

# -- the parser -------------------------------------------------------------------------------


def test_parse_gcc_output():
    text = "obj/a.o: src/a.c include/util.h \\\n include/other.h\ninclude/util.h:\n\ninclude/other.h:\n"
    assert parse(text) == ["src/a.c", "include/util.h", "include/other.h"]


def test_parse_escapes_comments_and_several_targets():
    text = "a.o b.o : my\\ file.h dollar$$sign.h \\#hash.h # a comment\nc.o: my\\ file.h\r\n"
    assert parse(text) == ["my file.h", "dollar$sign.h", "#hash.h"]
    assert parse("") == [] and parse("out.o:\n") == []
    assert parse("out.o: a.h\\\r\n b.h\n") == ["a.h", "b.h"]


def test_parse_keeps_backslashes_that_escape_nothing():
    """gcc writes a name's backslashes as they are, escaping only those before a space (and
    '#'): `inc/dbl\\\\back.h` is a file with two backslashes in its name (Ninja reads it so);
    read as one, the header was 'missing' at every build and the job reran."""
    assert parse("o: inc/dbl\\\\back.h") == ["inc/dbl\\\\back.h"]
    assert parse("o: a\\\\\\ b.h") == ["a\\ b.h"]  # 2N+1 before a space: N, and the space
    assert parse("o: a\\\\ b.h") == ["a\\", "b.h"]  # 2N: N, and the space separates
    assert parse("o: a\\b.h c\\\\\\#d.h") == ["a\\b.h", "c\\#d.h"]


def test_parse_ignores_a_backslash_at_the_very_end():
    assert parse("out.o: a.h \\") == ["a.h"]


def test_parse_refuses_a_line_without_a_target():
    with pytest.raises(DepfileError, match="line 2"):
        parse("a.o: a.h\njust words\n")


def test_project_paths(tmp_path):
    root = str(tmp_path)
    listed = ["src/a.c", "./include//u.h", f"{root}/include/v.h", "/usr/include/stdio.h", "obj/a.o", ".weave/x"]
    assert project_paths(listed, root, ["src/a.c", "obj/a.o"]) == ["include/u.h", "include/v.h", "/usr/include/stdio.h"]


def test_project_paths_through_dotdot_and_symlinks(tmp_path):
    root = tmp_path / "proj"
    (root / "include").mkdir(parents=True)
    (tmp_path / "link").symlink_to(root)
    listed = ["../proj/include/x.h", f"{tmp_path}/link/include/y.h", ".", "/usr/include/stdio.h"]
    assert project_paths(listed, str(root), []) == ["include/x.h", "include/y.h", "/usr/include/stdio.h"]
    assert project_paths(["include/x.h", f"{root}/include/y.h"], str(tmp_path / "link"), []) == ["include/x.h", "include/y.h"]


# -- builds ---------------------------------------------------------------------------------------

# A stand-in compiler: the output is the source with each `#include "X"` line replaced by
# include/X (one level), the depfile names the source and the headers it read. `SLOW_AFTER_READ`
# makes it wait (and say so in started.txt) after reading, before writing.
CC = r"""#!/bin/bash
set -euo pipefail
src=$1; out=$2; dep=$3
echo "cc $src" >> runs.log
deps="$src"
: > "$out.tmp"
while IFS= read -r line; do
  if [[ $line =~ ^\#include\ \"(.*)\"$ ]]; then
    header="include/${BASH_REMATCH[1]}"
    cat "$header" >> "$out.tmp"
    deps="$deps $header"
  else
    printf '%s\n' "$line" >> "$out.tmp"
  fi
done < "$src"
if [ -n "${SLOW_AFTER_READ:-}" ]; then touch started.txt; while [ ! -f release.txt ]; do sleep 0.05; done; fi
mv "$out.tmp" "$out"
[ -n "${NO_DEPFILE:-}" ] && exit 0
printf '%s: %s\n' "$out" "$deps" > "$dep"
"""

WEAVEFILE = """\
default = ["app.txt"]

[rules.compile]
inputs  = ["src/{name}.c", "cc.sh"]
outputs = ["obj/{name}.o"]
depfile = "{outputs[0]}.d"
cmd     = "bash cc.sh {inputs[0]} {outputs} {outputs[0]}.d"

[rules.link]
inputs  = ["obj/{name}.o"]
foreach = { name = "src/{name}.c" }
outputs = ["app.txt"]
cmd     = "echo link >> runs.log; cat {inputs} > app.txt"
"""


def _project(project: Project) -> None:
    project.weavefile(WEAVEFILE)
    project.write("cc.sh", CC, dedent=False)
    project.write("include/util.h", "int twice;\n")
    project.write("include/other.h", "int other;\n")
    project.write("src/main.c", '#include "util.h"\nint main;\n')
    project.write("src/util.c", '#include "util.h"\n#include "other.h"\nint body;\n')


def _ran(project: Project):
    """The jobs that ran since the last call, from runs.log lines ("cc src/main.c", "link")."""
    path = project.root / "runs.log"
    lines = path.read_text().splitlines() if path.exists() else []
    project.clear_runs()
    return sorted(lines)


def test_a_listed_header_change_reruns_the_jobs_that_read_it(project: Project) -> None:
    _project(project)
    result = project.run("build")
    assert result.rc == 0, result
    assert _ran(project) == ["cc src/main.c", "cc src/util.c", "link"]
    assert not project.exists("obj/main.o.d") and not project.exists("obj/util.o.d")  # read, then removed
    assert project.run("build").rc == 0 and _ran(project) == []
    project.write("include/other.h", "int other2;\n")
    plan = project.run("plan")
    assert "compile obj/util.o  (input changed: include/other.h)" in plan.out, plan
    assert "obj/main.o" not in plan.out.split("up to date")[0], plan
    assert project.run("build").rc == 0
    assert _ran(project) == ["cc src/util.c", "link"]
    assert project.read("app.txt") == "int twice;\nint main;\nint twice;\nint other2;\nint body;\n"
    assert project.run("build").rc == 0 and _ran(project) == []


def test_a_comment_in_a_header_stops_at_the_object_when_it_comes_out_the_same(project: Project) -> None:
    _project(project)
    project.write("cc.sh", CC.replace('cat "$header" >> "$out.tmp"', 'grep -v "^//" "$header" >> "$out.tmp" || true'), dedent=False)
    assert project.run("build").rc == 0
    _ran(project)
    project.write("include/util.h", "int twice2;\n")
    assert project.run("build").rc == 0
    assert _ran(project) == ["cc src/main.c", "cc src/util.c", "link"]
    project.write("include/other.h", "int other;\n// a comment\n")
    result = project.run("build")
    assert result.rc == 0 and "1 by early cutoff" in result.err + result.out, result
    assert _ran(project) == ["cc src/util.c"]


def test_a_new_include_is_picked_up_and_a_removed_one_forgotten(project: Project) -> None:
    _project(project)
    assert project.run("build").rc == 0
    _ran(project)
    project.write("src/main.c", '#include "util.h"\n#include "other.h"\nint main;\n')
    assert project.run("build").rc == 0
    assert _ran(project) == ["cc src/main.c", "link"]
    wait_past_racy_window(project.root)  # (a build within 50 ms of the writes stamps nothing racy)
    assert project.run("build").rc == 0 and _ran(project) == []  # stamps the new listing
    assert fast_path_used(project.root)
    project.write("include/other.h", "int changed;\n")
    assert project.run("build").rc == 0
    assert _ran(project) == ["cc src/main.c", "cc src/util.c", "link"]
    project.write("src/util.c", "int body;\n")  # no longer includes anything
    assert project.run("build").rc == 0
    _ran(project)
    project.write("include/util.h", "int again;\n")
    assert project.run("build").rc == 0
    assert _ran(project) == ["cc src/main.c", "link"]


def test_noop_is_proven_by_the_stamp_and_a_header_edit_voids_it(project: Project) -> None:
    _project(project)
    assert project.run("build").rc == 0
    assert fast_path_used(project.root)
    project.clear_runs()
    for round_ in range(2):  # twice: the stamp written after the first edit covers the headers too
        project.write("include/other.h", f"int other{round_};\n")
        result = ApiProject.load(str(project.root)).build()
        assert [item.job.key for item in result.ran] == ["compile[name=util]", "link"], round_
        assert fast_path_used(project.root)


def test_missing_or_malformed_depfile_fails_the_job(project: Project) -> None:
    _project(project)
    result = project.run("build", env={"NO_DEPFILE": "1"})
    assert result.rc == 1, result
    assert "exited 0 but did not write its depfile obj/main.o.d" in result.err, result
    assert not project.exists("obj/main.o")  # a failed job's outputs are removed
    project.write("cc.sh", CC.replace("printf '%s: %s\\n'", "printf '%s %s\\n'"), dedent=False)
    result = project.run("build")
    assert result.rc == 1 and "is not in make's syntax" in result.err, result
    # What a failed run's depfile listed is never read: it goes with the outputs (left, it
    # kept obj/ from being removed by `weave clean`); --keep-failed keeps both.
    assert not project.exists("obj/main.o.d") and not project.exists("obj/main.o")
    result = project.run("build", "--keep-failed")
    assert result.rc == 1 and project.exists("obj/main.o.d"), result


def test_a_stale_depfile_is_never_read(project: Project) -> None:
    _project(project)
    project.write("obj/main.o.d", "obj/main.o: include/other.h\n")  # main.c does not read it
    assert project.run("build").rc == 0
    _ran(project)
    project.write("include/other.h", "x\n")
    assert project.run("build").rc == 0
    assert _ran(project) == ["cc src/util.c", "link"]


def test_a_header_edited_while_the_job_runs_is_not_recorded(project: Project) -> None:
    _project(project)
    project.write("src/util.c", "int body;\n")  # only main.c includes a header
    env = dict(os.environ, SLOW_AFTER_READ="1")
    weave = subprocess.Popen(
        [sys.executable, "-m", "weavebuild", "build", "-j1", "obj/main.o"],
        cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not project.exists("started.txt"):
            assert time.monotonic() < deadline and weave.poll() is None, weave.communicate()
            time.sleep(0.05)
        project.write("include/util.h", "int edited;\n")
        project.write("release.txt", "")
        out, err = weave.communicate(timeout=60)
    finally:
        if weave.poll() is None:
            weave.kill()
    assert weave.returncode == 0, err
    assert "'include/util.h', which its depfile lists, changed while it ran" in err, err
    _ran(project)
    assert project.run("build", "obj/main.o").rc == 0
    assert _ran(project) == ["cc src/main.c"]  # not recorded: it runs again
    assert project.read("obj/main.o") == "int edited;\nint main;\n"


def _with_undeclared_generator(project: Project, source: str, header: str) -> None:
    """The stand-in project plus a rule `gen` making `header` from `source`, which the
    compile rule does not list among its inputs; `all` builds the app and the header."""
    _project(project)
    project.weavefile(
        WEAVEFILE
        + f"""
[rules.gen]
inputs  = ["{source}"]
outputs = ["{header}"]
cmd     = "cp {source} {header}"

[rules.all]
inputs = ["app.txt", "{header}"]
"""
    )


def test_a_generated_header_not_among_the_inputs_is_warned_about(project: Project) -> None:
    _with_undeclared_generator(project, "gen.txt", "include/gen.h")
    project.write("gen.txt", "int generated;\n")
    assert project.run("build", "include/gen.h").rc == 0
    project.write("src/main.c", '#include "gen.h"\nint main;\n')
    result = project.run("build", "all")
    assert result.rc == 0, result
    assert "its depfile lists include/gen.h, which gen include/gen.h makes; list it in the rule's order_only (or inputs)" in result.err


def test_a_generated_header_whose_maker_the_build_leaves_out_is_made_first_from_then_on(project: Project) -> None:
    """`weave build app.txt` needs no `gen`: a header it makes, read by a compile, went
    unmentioned, and after the header's source changed the build said 'nothing to do' with
    the old header compiled in. Now the build that finds it warns, and every later build of
    the same targets makes the header first, as Ninja does with its deps log: an edit of
    its source reaches the compile (plan and status say so too). The project's own headers
    (sources) bring in nothing."""
    _with_undeclared_generator(project, "gen.txt", "include/gen.h")
    project.write("gen.txt", "int generated;\n")
    assert project.run("build", "include/gen.h").rc == 0
    project.write("src/main.c", '#include "gen.h"\n#include "util.h"\nint main;\n')
    result = project.run("build", "app.txt")
    assert result.rc == 0, result
    assert (
        "weave: warning: compile obj/main.o: its depfile lists include/gen.h, which gen include/gen.h makes, but this "
        "build did not include that job (nothing asks for include/gen.h); from the next build on it is made first"
    ) in result.err, result
    assert result.err.count("warning") == 1 and "util.h" not in result.err, result
    quiet = project.run("build", "app.txt")
    assert quiet.rc == 0 and "warning" not in quiet.err and "nothing to do" in quiet.out, quiet
    project.write("gen.txt", "int generated2;\n")
    assert "upstream will rerun: gen include/gen.h" in project.run("plan", "app.txt").out
    assert project.run("status", "app.txt").rc == 1
    rebuilt = project.run("build", "app.txt")
    assert rebuilt.rc == 0 and "gen include/gen.h" in rebuilt.out and "compile obj/main.o" in rebuilt.out, rebuilt
    assert "int generated2;" in project.read("obj/main.o")
    assert "nothing to do" in project.run("build", "app.txt").out


def test_a_generated_header_made_in_the_same_build_but_unordered_is_made_first_by_narrower_builds(project: Project) -> None:
    """`all` builds the header and the app, so the build that finds the header in a depfile
    has its maker (only unordered); `weave build app.txt` later leaves the maker out. That
    narrower build said 'nothing to do' after the header's source changed: the header was
    noted for later builds only when its maker was not in the build at all."""
    _with_undeclared_generator(project, "gen.txt", "include/gen.h")
    project.write("gen.txt", "int generated;\n")
    assert project.run("build", "include/gen.h").rc == 0
    project.write("src/main.c", '#include "gen.h"\nint main;\n')
    found = project.run("build", "all")
    assert found.rc == 0 and "list it in the rule's order_only" in found.err, found
    assert "nothing to do" in project.run("build", "all").out
    project.write("gen.txt", "int generated2;\n")
    assert "upstream will rerun: gen include/gen.h" in project.run("plan", "app.txt").out
    rebuilt = project.run("build", "app.txt")
    assert rebuilt.rc == 0 and "gen include/gen.h" in rebuilt.out and "compile obj/main.o" in rebuilt.out, rebuilt
    assert "int generated2;" in project.read("obj/main.o")
    assert "nothing to do" in project.run("build", "app.txt").out


def test_a_renamed_compile_rule_keeps_what_its_depfiles_listed(project: Project) -> None:
    """Renaming the rule that has the depfile (and, in the same edit, changing a generated
    header's source): its jobs have no record under their new keys, so what their depfiles
    listed was forgotten, the header's maker was left out of `weave build app.txt`, and
    the build said 'nothing to do' with the old header compiled in. A renamed rule's job
    takes the latest success of the job that made its outputs, under the old name."""
    _with_undeclared_generator(project, "gen.txt", "include/gen.h")
    project.write("gen.txt", "int generated;\n")
    project.write("src/main.c", '#include "gen.h"\n#include "util.h"\nint main;\n')
    assert project.run("build", "include/gen.h").rc == 0
    assert project.run("build", "app.txt").rc == 0  # the header noted for later builds
    assert "nothing to do" in project.run("build", "app.txt").out
    _ran(project)
    project.weavefile(project.read("Weavefile").replace("[rules.compile]", "[rules.cc]"))
    project.write("gen.txt", "int generated2;\n")
    plan = project.run("plan", "app.txt")
    assert "would run 3 of 4 jobs" in plan.out and "upstream will rerun: gen include/gen.h" in plan.out, plan
    rebuilt = project.run("build", "app.txt")
    assert rebuilt.rc == 0, rebuilt
    assert _ran(project) == ["cc src/main.c", "link"]  # not util.c: renaming alone changes nothing
    assert "int generated2;" in project.read("obj/main.o")
    assert "nothing to do" in project.run("build", "app.txt").out
    project.write("include/util.h", "int thrice;\n")  # recorded under the new name now
    assert project.run("build", "app.txt").rc == 0
    assert _ran(project) == ["cc src/main.c", "cc src/util.c", "link"]
    # Renamed again, after a build that ran nothing (so the record was adopted under 'cc'):
    # the old names' rows made the donor ambiguous, and the header's maker was left out.
    project.weavefile(project.read("Weavefile").replace("[rules.cc]", "[rules.cc2]"))
    assert "nothing to do" in project.run("build", "app.txt").out
    project.weavefile(project.read("Weavefile").replace("[rules.cc2]", "[rules.cc3]"))
    project.write("gen.txt", "int generated3;\n")
    rebuilt = project.run("build", "app.txt")
    assert rebuilt.rc == 0 and "gen include/gen.h" in rebuilt.out, rebuilt
    assert "int generated3;" in project.read("obj/main.o")


def test_depfile_mistakes_are_user_errors(project: Project) -> None:
    project.write("a.c", "")
    base = '[rules.c]\ninputs = ["a.c"]\noutputs = ["a.o"]\ncmd = "cp a.c a.o"\n'
    project.weavefile(base + "depfile = 3\n")
    assert_user_error(project.run("build", "a.o"), "Weavefile:5", "key 'depfile'", "must be a path")
    project.weavefile(base + 'depfile = "../a.d"\n')
    assert_user_error(
        project.run("build", "a.o"), "Weavefile:5: rule 'c', key 'depfile'", "depfile '../a.d' of c is outside the project directory"
    )
    project.weavefile('default = ["a.o"]\n' + base + 'depfile = "{outputs}"\n'.replace("{outputs}", "{inputs[0]}"))
    assert_user_error(project.run("build"), "Weavefile:6: rule 'c', key 'depfile'", "is one of the job's inputs")
    project.weavefile('[rules.c]\ninputs = ["a.c"]\ncmd = "true"\ndepfile = "{outputs}"\n')
    assert_user_error(project.run("build", "c"), "key 'depfile'", "depfile '' of c is an empty path")
    # Another rule's input, even when the build does not need that rule: never the depfile.
    project.write("notes.txt", "keep\n")
    project.weavefile(base + 'depfile = "notes.txt"\n[rules.r]\ninputs = ["notes.txt"]\noutputs = ["r.txt"]\ncmd = "cp notes.txt r.txt"\n')
    assert_user_error(project.run("build", "a.o"), "key 'depfile'", "depfile 'notes.txt' of c is an input of rule 'r'")
    assert project.read("notes.txt") == "keep\n"
    project.weavefile('[rules.c]\ninputs = ["a.c"]\ndepfile = "a.d"\n')
    assert_user_error(project.run("build", "c"), "depfile", "needs a cmd")
    project.weavefile(base + 'depfile = "{outputs[5]}.d"\n')
    assert_user_error(project.run("build", "a.o"), "depfile")
    project.weavefile(base + 'depfile = "{inputs[0]}"\n')
    assert_user_error(project.run("build", "a.o"), "depfile 'a.c' of c is one of the job's inputs")
    project.weavefile(base + 'depfile = "{outputs[0]}"\n')  # (was accepted; a reader of it was then blamed)
    assert_user_error(project.run("build", "a.o"), "depfile 'a.o' of c is one of the job's outputs")
    project.weavefile(base + 'depfile = "Weavefile"\n')
    assert_user_error(project.run("build", "a.o"), "depfile 'Weavefile'")
    assert project.exists("Weavefile") and project.exists("a.c")


def test_adding_a_depfile_reruns_the_jobs_once(project: Project) -> None:
    _project(project)
    project.weavefile(WEAVEFILE.replace('depfile = "{outputs[0]}.d"\n', ""))
    assert project.run("build").rc == 0
    _ran(project)
    project.weavefile(WEAVEFILE)
    assert project.run("build").rc == 0
    assert _ran(project) == ["cc src/main.c", "cc src/util.c"]  # the same objects: no link
    assert project.run("build").rc == 0 and _ran(project) == []
    listed = project.run("list")
    assert 'depfile:   {outputs[0]}.d' in listed.out, listed


def test_a_version_2_store_gains_the_column_and_keeps_its_records(tmp_path):
    """A store from before depfiles (schema 2) is brought up to date in place: nothing reruns."""
    from weavebuild.store import Store

    root = tmp_path / "p"
    root.mkdir()
    (root / "Weavefile").write_text('[rules.x]\ninputs = ["a"]\noutputs = ["b"]\ncmd = "cp a b"\n')
    (root / "a").write_text("1\n")
    assert ApiProject.load(str(root)).build().ok
    db = root / ".weave" / "state.db"
    connection = sqlite3.connect(db)
    connection.executescript(  # the table as schema 2 had it (no DROP COLUMN before SQLite 3.35)
        "BEGIN;"
        "CREATE TABLE old AS SELECT signature, job_key, rule, recipe, inputs, outputs, duration, finished_at FROM records;"
        "DROP TABLE records; ALTER TABLE old RENAME TO records;"
        "CREATE INDEX records_by_job ON records(job_key); PRAGMA user_version = 2; COMMIT;"
    )
    connection.close()
    (root / ".weave" / "stamps").rename(root / ".weave" / "stamps.old")  # no fast path
    readonly = Store.open(str(root), readonly=True)  # `weave plan` before any build: read as it is
    try:
        assert readonly.load_jobs()["x"].discovered == []
    finally:
        readonly.close()
    result = ApiProject.load(str(root)).build()
    assert result.ran == [] and result.ok
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == 3
        assert "discovered" in [row[1] for row in connection.execute("PRAGMA table_info(records)")]
    finally:
        connection.close()


def test_watch_rebuilds_when_a_listed_header_changes(project: Project, tmp_path) -> None:
    from test_watch import Watch

    _project(project)
    watch = Watch(project)
    try:
        first = watch.wait_result()
        assert first[1] == "ok", watch.output()
        project.write("include/other.h", "int watched;\n")
        cycle = watch.wait_cycle_for("include/other.h", after=first[0])
        assert cycle[1] == "ok", watch.output()
        assert "int watched;" in project.read("app.txt")
        assert watch.interrupt() == 130
    finally:
        if watch.proc.poll() is None:
            watch.proc.kill()


# -- the contract over random projects ------------------------------------------------------------
# Random sources including random headers, under random edits of headers and sources (includes
# added and dropped) and touches. After every build the objects and the linked file equal a
# from-scratch build, and the jobs that ran are exactly those the model says: a compile runs iff
# no record of its source's content holds, one of the headers that record lists changed, or
# its object is not the one that record made; the link iff its objects changed.

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

HEADERS = ("a.h", "b.h", "c.h")


def _source_text(includes, body):
    return "".join(f'#include "{name}"\n' for name in includes) + body + "\n"


class CompileModel:
    def __init__(self, sources, headers):
        self.sources = dict(sources)  # name -> (includes, body)
        self.headers = dict(headers)  # name -> content
        self.records = {}  # (source, its text) -> (headers read with their content, object)
        self.objects = {}
        self.link_record = None

    def compile(self, name):
        includes, body = self.sources[name]
        return "".join(self.headers[h] for h in includes) + body + "\n"

    def build(self):
        ran = []
        for name in sorted(self.sources):
            text = _source_text(*self.sources[name])
            record = self.records.get((name, text))
            fresh = (
                record is not None
                and all(self.headers[h] == content for h, content in record[0])
                and self.objects.get(name) == record[1]
            )
            if not fresh:
                obj = self.compile(name)
                self.objects[name] = obj
                self.records[(name, text)] = (tuple((h, self.headers[h]) for h in dict.fromkeys(self.sources[name][0])), obj)
                ran.append(f"cc src/{name}.c")
        linked = tuple(self.objects[name] for name in sorted(self.sources))
        if linked != self.link_record:
            self.link_record = linked
            ran.append("link")
        return sorted(ran)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.lists(st.sampled_from(HEADERS), max_size=3), st.sampled_from(["x", "y"])), min_size=1, max_size=3),
    st.lists(
        st.one_of(
            st.tuples(st.just("header"), st.sampled_from(HEADERS), st.sampled_from(["1", "2", "3"])),
            st.tuples(st.just("touch"), st.sampled_from(HEADERS)),
            st.tuples(st.just("source"), st.integers(0, 2), st.lists(st.sampled_from(HEADERS), max_size=3), st.sampled_from(["x", "y"])),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_header_dependencies_correct_and_minimal(tmp_path_factory, sources, edits):
    root = tmp_path_factory.mktemp("depfile-prop")
    project = Project(root)
    project.weavefile(WEAVEFILE)
    project.write("cc.sh", CC, dedent=False)
    model = CompileModel({f"s{i}": spec for i, spec in enumerate(sources)}, {h: "0\n" for h in HEADERS})
    for name, content in model.headers.items():
        project.write(f"include/{name}", content)
    for name, (includes, body) in model.sources.items():
        project.write(f"src/{name}.c", _source_text(includes, body))

    def build_and_check():
        assert ApiProject.load(str(root)).build(jobs=2).ok
        assert _ran(project) == model.build(), edits
        for name in model.sources:
            assert project.read(f"obj/{name}.o") == model.compile(name)
        assert project.read("app.txt") == "".join(model.compile(name) for name in sorted(model.sources))

    build_and_check()
    for edit in edits:
        if edit[0] == "header":
            project.write(f"include/{edit[1]}", edit[2] + "\n")
            model.headers[edit[1]] = edit[2] + "\n"
        elif edit[0] == "touch":
            path = root / "include" / edit[1]
            stat = path.stat()
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
        else:
            name = sorted(model.sources)[edit[1] % len(model.sources)]
            model.sources[name] = (edit[2], edit[3])
            project.write(f"src/{name}.c", _source_text(edit[2], edit[3]))
        build_and_check()
    assert ApiProject.load(str(root)).build().ran == []


def test_an_undeclared_generated_header_never_hides_a_stale_job_behind_the_stamp(project: Project) -> None:
    # The generator is not among the compile's inputs: the compile may read the old header in
    # a build (it is warned about), but no build may then claim everything is up to date.
    _with_undeclared_generator(project, "VERSION", "include/version.h")
    project.write("VERSION", "int v1;\n")
    project.write("src/main.c", '#include "version.h"\nint main;\n')
    assert project.run("build", "include/version.h").rc == 0
    for _ in range(2):
        assert project.run("build", "all").rc == 0
    _ran(project)
    project.write("VERSION", "int v2;\n")
    project.run("build", "all")  # the header is made anew after the compile was decided
    for _ in range(3):
        assert project.run("build", "all").rc == 0
    assert "int v2;" in project.read("obj/main.o")
    status = project.run("status", "all")
    assert status.rc == 0, status


def test_depfile_collisions_are_user_errors(project: Project) -> None:
    _project(project)
    project.weavefile(WEAVEFILE.replace('depfile = "{outputs[0]}.d"', 'depfile = "obj/deps.d"'))
    assert_user_error(
        project.run("build"), "rule 'compile', key 'depfile'", "depfile 'obj/deps.d'", "is the depfile of", "each job needs its own"
    )
    # A depfile path where another file lies (read by a rule this build does not need): the
    # job does not write it, and weave neither reads nor removes what is there.
    project.write("notes.d", "keep me\n")
    project.weavefile(WEAVEFILE.replace('depfile = "{outputs[0]}.d"', 'depfile = "notes.d"'))
    # Older than the run by more than the racy window (a file changed within it of the job's
    # start may be the job's own): on a fast machine weave started within 50 ms of the write.
    written = os.stat(project.root / "notes.d").st_ctime_ns
    while time.time_ns() - written <= 2 * RACY_WINDOW_NS:
        time.sleep(0.01)
    result = project.run("build", "obj/main.o")
    assert result.rc == 1 and "did not write its depfile notes.d (the file there is older than this run)" in result.err, result
    assert project.read("notes.d") == "keep me\n"


def test_a_depfile_read_by_another_job_is_refused(project: Project) -> None:
    project.write("a.c", "")
    project.write("notes.d", "keep me\n")
    project.weavefile(
        """\
        [rules.c]
        inputs = ["a.c"]
        outputs = ["a.o"]
        depfile = "notes.d"
        cmd = "cp a.c a.o"
        [rules.r]
        inputs = ["notes.d", "a.o"]
        outputs = ["r.txt"]
        cmd = "cat notes.d > r.txt"
        """
    )
    assert_user_error(project.run("build", "r.txt"), "depfile 'notes.d' of c is an input of rule 'r'")
    assert project.read("notes.d") == "keep me\n"


def test_a_depfile_through_a_symlink_out_of_the_project_is_refused(project: Project, tmp_path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.d").write_text("precious\n")
    (project.root / "deps").symlink_to(elsewhere)
    project.write("a.c", "")
    project.weavefile('[rules.c]\ninputs = ["a.c"]\noutputs = ["a.o"]\ndepfile = "deps/a.d"\ncmd = "cp a.c a.o"\n')
    result = project.run("build", "a.o")
    assert result.rc == 1 and "resolves outside the project directory (through a symlink)" in result.err, result
    assert (elsewhere / "a.d").read_text() == "precious\n"


def test_touch_refuses_a_depfile_job_that_never_listed_its_files(project: Project) -> None:
    _project(project)
    project.weavefile(WEAVEFILE.replace('depfile = "{outputs[0]}.d"\n', ""))
    assert project.run("build").rc == 0
    project.weavefile(WEAVEFILE)
    touched = project.run("touch")
    assert touched.rc == 1 and "has not been read yet: build it once" in touched.err, touched
    _ran(project)
    assert project.run("build").rc == 0
    assert _ran(project) == ["cc src/main.c", "cc src/util.c"]  # they run once, to list their headers
    project.write("include/util.h", "int touched;\n")
    assert project.run("build").rc == 0
    assert _ran(project) == ["cc src/main.c", "cc src/util.c", "link"]


def test_a_listed_file_that_is_missing_is_one_warning(project: Project) -> None:
    _project(project)
    project.write("cc.sh", CC.replace("printf '%s: %s\\n' \"$out\" \"$deps\"", "printf '%s: %s gone.h\\n' \"$out\" \"$deps\""), dedent=False)
    result = project.run("build", "obj/main.o")
    assert result.rc == 0, result
    assert result.err.count("warning") == 1 and "'gone.h', which its depfile lists, is missing" in result.err, result
    _ran(project)
    assert project.run("build", "obj/main.o").rc == 0
    assert _ran(project) == ["cc src/main.c"]  # not recorded: it runs again
    assert "obj/main.o" in project.run("plan", "obj/main.o").out


def test_a_new_header_replaced_by_an_older_file_while_read_is_caught(project: Project) -> None:
    _project(project)
    project.write("src/util.c", "int body;\n")
    assert project.run("build", "obj/util.o").rc == 0
    project.write("src/util.c", '#include "other.h"\nint body;\n')  # a header it never read before
    env = dict(os.environ, SLOW_AFTER_READ="1")
    weave = subprocess.Popen(
        [sys.executable, "-m", "weavebuild", "build", "obj/util.o"],
        cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not project.exists("started.txt"):
            assert time.monotonic() < deadline and weave.poll() is None, weave.communicate()
            time.sleep(0.05)
        replacement = project.root / "replacement.h"
        replacement.write_text("int replaced;\n")
        os.utime(replacement, ns=(1_000_000_000, 1_000_000_000))  # as `cp -p` or `tar x` leave it
        os.replace(replacement, project.root / "include" / "other.h")
        project.write("release.txt", "")
        out, err = weave.communicate(timeout=60)
    finally:
        if weave.poll() is None:
            weave.kill()
    assert weave.returncode == 0, err
    assert "'include/other.h', which its depfile lists, changed while it ran" in err, err
    os.unlink(project.root / "started.txt")
    assert project.run("build", "obj/util.o").rc == 0
    assert project.read("obj/util.o") == "int replaced;\nint body;\n"


def test_a_job_up_to_date_by_an_older_record_keeps_what_it_listed(project: Project) -> None:
    # Build, switch a var and back: the job is up to date by its older record, whose listing
    # must still void the stamp when a listed header changes.
    _project(project)
    project.weavefile(
        WEAVEFILE.replace('default = ["app.txt"]\n', 'default = ["app.txt"]\n\n[vars]\nmode = "a"\n').replace(
            'cmd     = "bash cc.sh', 'cmd     = "MODE={vars.mode} bash cc.sh'
        )
    )
    assert project.run("build").rc == 0
    assert project.run("build", "--set", "mode=b").rc == 0
    assert project.run("build").rc == 0  # up to date by the first records
    assert project.run("build").rc == 0
    _ran(project)
    project.write("include/other.h", "int other2;\n")
    assert project.run("build").rc == 0
    assert _ran(project) == ["cc src/util.c", "link"]


def test_a_temporary_directory_whose_files_a_depfile_lists_is_kept(project: Project) -> None:
    project.weavefile(
        """\
        default = ["lib.txt"]
        [rules.gen]
        inputs  = ["VERSION"]
        outputs = ["gen/"]
        temp    = true
        cmd     = "mkdir -p gen && cp VERSION gen/version.h"
        [rules.compile]
        inputs  = ["src/a.c", "gen/"]
        outputs = ["obj/a.o"]
        depfile = "obj/a.d"
        cmd     = "cat gen/version.h src/a.c > obj/a.o && echo 'obj/a.o: src/a.c gen/version.h' > obj/a.d"
        [rules.lib]
        inputs  = ["obj/a.o"]
        outputs = ["lib.txt"]
        cmd     = "cp obj/a.o lib.txt"
        """
    )
    project.write("VERSION", "3\n")
    project.write("src/a.c", "body\n")
    assert project.run("build").rc == 0
    for _ in range(2):
        result = project.run("build")
        assert result.rc == 0 and "nothing to do" in result.out, result
    assert project.exists("gen/version.h")


def test_a_depfile_in_an_included_file_is_reported_there(project: Project) -> None:
    project.write("a.c", "")
    project.weavefile('default = ["a.o"]\ninclude = ["rules/c.toml"]\n')
    project.write("rules/c.toml", '[rules.c]\ninputs = ["a.c"]\noutputs = ["a.o"]\ncmd = "cp a.c a.o"\ndepfile = "a.c"\n')
    assert_user_error(project.run("build"), "rules/c.toml:5: rule 'c', key 'depfile'", "is one of the job's inputs")


def test_a_listed_special_file_is_named_as_such(project: Project) -> None:
    project.write("a.c", "")
    os.mkfifo(project.root / "ff")
    project.weavefile('[rules.c]\ninputs = ["a.c"]\noutputs = ["a.o"]\ndepfile = "a.d"\ncmd = "cp a.c a.o && echo \'a.o: ff /\' > a.d"\n')
    result = project.run("build", "a.o")
    assert result.rc == 0, result
    assert "'ff', which its depfile lists, cannot be read (it is a FIFO)" in result.err, result
    assert "'/'" not in result.err  # a directory outside the project is no file it read


def test_a_depfile_left_by_a_weave_killed_after_its_job_ended_is_removed(project):
    """The job wrote its depfile and ended, then weave was killed before reading it: the
    outputs match the job's record, so it is up to date, and no run will read that depfile
    again. The next build (which checks every job after such a crash, not the no-op stamp)
    removes it, as a build that saw the job end would have."""
    project.write("main.c", "src\n")
    project.write("x.h", "h1\n")
    project.weavefile(
        """
        [rules.cc]
        inputs  = ["main.c"]
        outputs = ["main.o"]
        depfile = "main.o.d"
        cmd     = "cat main.c x.h > main.o; echo 'main.o: main.c x.h' > main.o.d; if [ -e killweave ]; then rm -f killweave; kill -9 $PPID; fi"
        """
    )
    assert project.run("build").rc == 0 and not project.exists("main.o.d")
    project.write("killweave", "")
    killed = project.run("build", "-B", "main.o")
    assert killed.rc == -9, killed
    assert project.exists("main.o.d")
    after = project.run("build")
    assert after.rc == 0 and after.started == [], after
    assert not project.exists("main.o.d")


def test_a_generated_header_a_compile_listed_is_made_first_and_the_compile_rerun_in_one_build(project: Project) -> None:
    """The compile's rule does not declare include/version.h, but its last run listed it: as
    Ninja's deps log does, that orders the header's maker first, and the compile is checked
    again after it. The build that remade the header left the object built from the old one
    (exit 0, a stale app) until the next build."""
    _with_undeclared_generator(project, "VERSION", "include/version.h")
    project.write("VERSION", "int v1;\n")
    project.write("src/main.c", '#include "version.h"\nint main;\n')
    assert project.run("build", "include/version.h").rc == 0
    assert project.run("build", "all").rc == 0
    assert "int v1;" in project.read("obj/main.o")
    _ran(project)
    project.write("VERSION", "int v2;\n")
    plan = project.run("plan", "all")
    assert plan.rc == 0, plan
    assert re.search(r"compile obj/main\.o +\(upstream will rerun: gen include/version\.h\)", plan.out), plan.out
    # numbered as the build runs them: the header's maker first
    numbered = re.findall(r"^\s*\[(\d+)/\d+\] +(\S+ \S+)", plan.out, re.M)
    assert [name for _, name in numbered][:2] == ["gen include/version.h", "compile obj/main.o"], plan.out
    result = project.run("build", "all")
    assert result.rc == 0, result
    assert "int v2;" in project.read("obj/main.o")  # compiled after the header was made
    assert "cc src/main.c" in _ran(project)
    assert "which gen include/version.h makes" not in result.err, result.err  # ordered: no warning
    assert "nothing to do" in project.run("build", "all").out.lower()


def test_a_header_with_backslashes_in_its_name_is_up_to_date_on_the_next_build(project: Project) -> None:
    project.write("inc/dbl\\\\back.h", "#define A 1\n")
    project.weavefile(
        r"""
        [rules.compile]
        inputs = ["m.c"]
        outputs = ["m.o"]
        depfile = "m.o.d"
        cmd = '''cat m.c 'inc/dbl\\back.h' > m.o; printf 'm.o: m.c inc/dbl\\\\back.h\n' > m.o.d'''
        """
    )
    project.write("m.c", "int main;\n")
    first = project.run("build")
    assert first.rc == 0 and "warning" not in first.err, first
    again = project.run("build")
    assert again.rc == 0 and "nothing to do" in again.out.lower() and "warning" not in again.err, again
    project.write("inc/dbl\\\\back.h", "#define A 2\n")
    edited = project.run("build")
    assert edited.rc == 0 and "[1/1] compile" in edited.out, edited


def test_a_listed_file_whose_maker_depends_on_the_job_adds_no_cycle(project: Project) -> None:
    """a's depfile lists b.txt, which b makes from a's output: ordering b before a would close
    a cycle, so that listed file orders nothing (a is checked against it as before), and the
    builds go on as without it."""
    project.weavefile(
        """
        default = ["b.txt"]
        [rules.a]
        inputs = ["a.src"]
        outputs = ["a.txt"]
        depfile = "a.d"
        cmd = "cat a.src > a.txt; if [ -e b.txt ]; then cat b.txt >> a.txt; echo 'a.txt: a.src b.txt' > a.d; else echo 'a.txt: a.src' > a.d; fi"
        [rules.b]
        inputs = ["a.txt"]
        outputs = ["b.txt"]
        cmd = "cp a.txt b.txt"
        """
    )
    project.write("a.src", "1\n")
    assert project.run("build").rc == 0
    assert project.run("build", "-B", "a.txt").rc == 0  # a now lists b.txt
    project.write("a.src", "2\n")
    result = project.run("build", timeout=60)
    assert result.rc == 0, result
    assert project.read("b.txt").startswith("2\n")
    plan = project.run("plan", timeout=60)
    assert plan.rc == 0, plan


def test_a_listed_header_is_ordered_though_its_job_follows_a_cycle_and_inside_a_directory_output(project: Project) -> None:
    """A and B list each other's outputs (a cycle, whose edges go); X, after A, lists gen's
    header: that edge stays (every edge of a job after a cycle went). And a header inside a
    directory output is made by the directory's job: ordered too, and the job checked after
    it reads the new header (the digest taken before the directory was remade was kept, so
    the run was taken for one whose header changed while it ran)."""
    project.weavefile(
        """
        default = ["x.out", "b.out", "c.out", "gen/ver.h", "tree/"]
        [rules.gen]
        inputs = ["ver.in"]
        outputs = ["gen/ver.h"]
        cmd = "cat ver.in > gen/ver.h"
        [rules.tree]
        inputs = ["ver.in"]
        outputs = ["tree/"]
        cmd = "mkdir -p tree; cat ver.in > tree/ver.h"
        [rules.A]
        inputs = ["a.src"]
        outputs = ["a.out"]
        depfile = "a.out.d"
        cmd = "cat a.src > a.out; echo 'a.out: b.out' > a.out.d"
        [rules.B]
        inputs = ["b.src"]
        outputs = ["b.out"]
        depfile = "b.out.d"
        cmd = "cat b.src > b.out; echo 'b.out: a.out' > b.out.d"
        [rules.X]
        inputs = ["a.out", "x.src"]
        outputs = ["x.out"]
        depfile = "x.out.d"
        cmd = "cat gen/ver.h > x.out; echo 'x.out: gen/ver.h' > x.out.d"
        [rules.C]
        inputs = ["c.src"]
        outputs = ["c.out"]
        depfile = "c.out.d"
        cmd = "cat tree/ver.h > c.out; echo 'c.out: tree/ver.h' > c.out.d"
        """
    )
    for name, text in (("ver.in", "v1\n"), ("a.src", "a\n"), ("b.src", "b\n"), ("x.src", "x\n"), ("c.src", "c\n")):
        project.write(name, text)
    assert project.run("build", "gen/ver.h", "tree/").rc == 0
    for _ in range(3):  # (one at a time: A and B each read what the other writes)
        assert project.run("build", "-j", "1").rc == 0
    assert "nothing to do" in project.run("build", "-j", "1").out
    project.write("ver.in", "v2\n")
    plan = project.run("plan")
    assert re.search(r"X x\.out +\(upstream will rerun: gen gen/ver\.h\)", plan.out), plan.out
    assert re.search(r"C c\.out +\(upstream will rerun: tree tree/\)", plan.out), plan.out
    result = project.run("build", "-j", "4")
    assert result.rc == 0 and "warning" not in result.err, result
    assert project.read("x.out") == "v2\n" and project.read("c.out") == "v2\n"


def test_a_file_in_a_directory_output_remade_after_a_job_listed_it_is_read_again_next_build(project: Project) -> None:
    """r lists gen/a.txt, which m's directory output gen/ holds; nothing orders them in the
    build that first lists it, and here m (reading r's output) remakes gen/ after r read it.
    That build must not vouch for r with a no-op stamp: the next build reruns r, which then
    reads what m made. (Whether a stamp got written before depended on timing: the depfile
    fuzzer's case said 'nothing to do', for good, in a third of its runs under load; here the
    build is asserted to leave no stamp at all, and to warn.)"""
    project.weavefile(
        """
        default = ["r.txt", "gen/"]
        [rules.r]
        inputs = ["r.src"]
        outputs = ["r.txt"]
        depfile = "r.d"
        cmd = "cat r.src gen/a.txt > r.txt; echo 'r.txt: gen/a.txt' > r.d"
        [rules.m]
        inputs = ["r.txt"]
        outputs = ["gen/"]
        cmd = "mkdir -p gen; echo generated > gen/a.txt"
        """
    )
    project.write("r.src", "r\n")
    project.write("gen/a.txt", "dummy\n")  # there before the first build, as a stale copy would be
    first = project.run("build")
    assert first.rc == 0, first
    assert project.read("gen/a.txt") == "generated\n"
    stamps = project.root / ".weave" / "stamps"
    assert not (stamps.is_dir() and any(stamps.iterdir())), list(stamps.iterdir())
    second = project.run("build")
    assert second.rc == 0, second
    assert project.read("r.txt") == "r\ngenerated\n", second
    assert "its depfile lists gen/a.txt, which m gen/ makes" in first.err, first.err
    assert "nothing to do" in project.run("build").out
    assert any(stamps.iterdir())  # (a settled build does stamp: the check above can see one)


# -- order_only: make's `| prerequisites`, Ninja's `||` ------------------------------------------

ORDER_ONLY = """\
default = ["app"]
[rules.version_h]
inputs = ["VERSION"]
outputs = ["build/gen/version.h"]
cmd = "echo version_h >> runs.log; cp VERSION {outputs}"

[rules.compile]
foreach = { name = "src/{name}.c" }
inputs = ["src/{name}.c"]
outputs = ["build/{name}.o"]
order_only = ["build/gen/version.h"]
depfile = "build/{wildcards.name}.d"
cmd = '''
echo compile-{wildcards.name} >> runs.log
if grep -q VERSIONED {inputs}; then
  cat {inputs} build/gen/version.h > {outputs}; echo '{outputs}: {inputs} build/gen/version.h' > build/{wildcards.name}.d
else
  cat {inputs} > {outputs}; echo '{outputs}: {inputs}' > build/{wildcards.name}.d
fi
'''

[rules.link]
inputs = ["build/a.o", "build/b.o"]
outputs = ["app"]
cmd = "echo link >> runs.log; cat {inputs} > {outputs}"
"""


def test_order_only_paths_are_made_first_and_rerun_only_what_reads_them(project: Project) -> None:
    """A Makefile's `$(OBJS): | build/gen/version.h` with -MMD: every compile waits for the
    generated header (the first build has no depfile to say who reads it), and a new version
    recompiles only the file that includes it, as make does; declaring it an input instead
    would recompile every file."""
    project.write("VERSION", "1\n")
    project.write("src/a.c", "VERSIONED a\n")
    project.write("src/b.c", "plain b\n")
    project.weavefile(ORDER_ONLY)
    result = project.run("build", "-j", "4")
    assert result.rc == 0, result
    runs = project.runs_log()
    assert runs[0] == "version_h" and sorted(runs[1:3]) == ["compile-a", "compile-b"] and runs[3] == "link", runs
    assert project.read("app") == "VERSIONED a\n1\nplain b\n"
    project.clear_runs()
    project.write("VERSION", "2\n")
    plan = project.run("plan")
    assert "compile build/a.o" in plan.out and "upstream will rerun: version_h build/gen/version.h" in plan.out, plan
    assert plan.out.split("up to date (1):")[1].split() == ["compile", "build/b.o"], plan  # not 'upstream will rerun'
    assert project.run("build", "-j", "4").rc == 0
    assert project.runs_log() == ["version_h", "compile-a", "link"]
    assert project.read("app") == "VERSIONED a\n2\nplain b\n"
    project.clear_runs()
    assert "nothing to do" in project.run("build").out
    # A target that needs only one compile still has the header made first.
    shutil.rmtree(project.root / "build")
    (project.root / ".weave").rename(project.root / "old-state")
    assert project.run("build", "build/b.o").rc == 0
    assert project.runs_log() == ["version_h", "compile-b"]


def test_order_only_mistakes_are_user_errors(project: Project) -> None:
    project.write("VERSION", "1\n")
    project.write("src/a.c", "VERSIONED a\n")
    project.write("src/b.c", "plain b\n")
    line = 'order_only = ["build/gen/version.h"]'
    for written, fragments in (
        ('order_only = ["build/gen/*.h"]', ("key 'order_only'", "contains a glob character")),
        ('order_only = ["../elsewhere.h"]', ("key 'order_only'", "is outside the project directory")),
        ('order_only = ["/abs/x.h"]', ("key 'order_only'", "is an absolute path", "write it relative to the project")),
        ("order_only = 5", ("key 'order_only'", "must be a path or a list of paths, got an integer")),
        ('order_only = ["build/{name}.o/x"]', ("order_only 'build/a.o/x' of compile[name=a] is inside one of its outputs",)),
        ('order_only = ["build/{other}.h"]', ("key 'order_only'", "uses wildcard '{other}', which the rule does not have")),
        ('order_only = ["build/{name}.o"]', ("key 'order_only'", "order_only 'build/a.o' of compile[name=a] is one of its outputs")),
        ('order_only = { h = "build/gen/version.h" }', ("key 'order_only'", "must be a path or a list of paths")),
        ('order_only = ["nosuch.h"]', ("Weavefile:11:", "missing source 'nosuch.h'", "rule 'compile' (job compile[name=a]) (in its order_only)")),
    ):
        project.weavefile(ORDER_ONLY.replace(line, written))
        assert_user_error(project.run("build"), *fragments)
    temp = ORDER_ONLY.replace('cmd = "echo version_h', 'temp = true\ncmd = "echo version_h')
    project.weavefile(temp)
    assert_user_error(project.run("build"), "order_only 'build/gen/version.h'", "is a temporary output of rule 'version_h'")
    assert not project.exists("app")


def test_an_order_only_file_inside_a_directory_output_reruns_its_reader_in_the_same_build(project: Project) -> None:
    """The header is a file of another job's directory output: when that job remade it, the
    reader (whose depfile lists it) was found up to date by early cutoff with the header's old
    digest, and ran only at the next build."""
    project.weavefile(
        'default = ["use.out"]\n'
        '[rules.tree]\ninputs = ["tree.in"]\noutputs = ["gen/"]\ncmd = "mkdir -p gen/sub && cp tree.in gen/sub/t.h"\n'
        '[rules.use]\ninputs = ["u.txt"]\noutputs = ["use.out"]\norder_only = ["gen/sub/t.h"]\ndepfile = "use.d"\n'
        "cmd = \"cat u.txt gen/sub/t.h > use.out; echo 'use.out: u.txt gen/sub/t.h' > use.d\"\n"
    )
    project.write("u.txt", "u\n")
    project.write("tree.in", "t1\n")
    assert project.run("build").rc == 0
    project.write("u.txt", "u2\n")
    assert project.run("build").rc == 0
    project.write("tree.in", "t3\n")
    result = project.run("build")
    assert result.rc == 0 and "2 ran" in result.out, result
    assert project.read("use.out") == "u2\nt3\n"
    assert "nothing to do" in project.run("build").out


def test_order_only_sources_and_vars_are_not_the_jobs_own(project: Project) -> None:
    """A var used only in an order_only path is not in the job's recipe (--set of it reran the
    job); a list var gives a path per item; a deleted order_only source is a missing source
    for the build too (its no-op stamp did not hold it: build said 'nothing to do' where plan
    refused); weave list shows the key."""
    project.write("a.in", "a\n")
    project.write("static.h", "s\n")
    project.weavefile(
        '[vars]\nhdr = "g1.h"\nhs = ["x.h", "y.h"]\n'
        '[rules.g]\noutputs = ["g1.h", "g2.h", "x.h", "y.h"]\ncmd = "echo g >> runs.log; touch {outputs}"\n'
        '[rules.a]\ninputs = ["a.in"]\noutputs = ["a.out"]\norder_only = ["{vars.hdr}", "{vars.hs}", "static.h"]\n'
        'cmd = "echo a >> runs.log; cp a.in a.out"\n'
    )
    assert project.run("build", "a.out").rc == 0 and project.runs_log() == ["g", "a"]
    project.clear_runs()
    result = project.run("build", "a.out", "--set", "hdr=g2.h")
    assert result.rc == 0 and project.runs_log() == [], result
    assert "order_only: g1.h x.h y.h static.h" in project.run("list").out
    (project.root / "static.h").unlink()
    for command in ("build", "status", "plan"):
        assert_user_error(project.run(command, "a.out"), "missing source 'static.h'", "(in its order_only)")
    project.write("static.h", "s2\n")  # back, other bytes: nothing to rerun
    result = project.run("build", "a.out")
    assert result.rc == 0 and project.runs_log() == [], result


def test_a_listed_file_that_became_unreadable_names_the_rule_that_lists_it(project: Project) -> None:
    """A header a depfile listed, replaced by a FIFO: checking the job reads it, and the
    error did not say which rule needed it (as it does for a declared input)."""
    project.write("a.c", "a\n")
    project.write("h.h", "h\n")
    project.weavefile(
        '[rules.c]\ninputs = ["a.c"]\noutputs = ["a.o"]\ndepfile = "a.d"\n'
        "cmd = \"cat a.c h.h > a.o; echo 'a.o: a.c h.h' > a.d\"\n"
    )
    assert project.run("build", "a.o").rc == 0
    (project.root / "h.h").unlink()
    os.mkfifo(project.root / "h.h")
    assert_user_error(project.run("build", "a.o", timeout=60), "cannot read 'h.h': it is a FIFO, needed by rule 'c'")


def test_a_depfile_made_as_a_fifo_fails_the_job_instead_of_hanging(project: Project) -> None:
    """Reading a FIFO waits for a writer forever, and SIGTERM could not stop it."""
    project.weavefile('[rules.a]\noutputs = ["x"]\ndepfile = "x.d"\ncmd = "touch x; mkfifo x.d"\n')
    result = project.run("build", timeout=60)
    assert result.rc == 1 and "its depfile x.d is not a regular file" in result.err, result


def test_a_generated_header_ordered_by_order_only_still_reaches_the_job_once_order_only_goes(project: Project) -> None:
    """The compile listed the header while order_only made its maker a dependency, so it was
    never noted as generated; with order_only dropped, `weave build m.o` left the maker out
    and a change of the header's source never reached the object."""
    project.weavefile(
        """
        [rules.gen]
        inputs = ["VERSION"]
        outputs = ["gen/v.h"]
        cmd = "cp VERSION gen/v.h"
        [rules.cc]
        inputs = ["m.c"]
        outputs = ["m.o"]
        order_only = ["gen/v.h"]
        depfile = "m.d"
        cmd = "cat m.c gen/v.h > m.o && printf 'm.o: m.c gen/v.h\\\\n' > m.d"
        """
    )
    project.write("VERSION", "v1\n")
    project.write("m.c", "main\n")
    assert project.run("build", "m.o").rc == 0
    project.weavefile(project.read("Weavefile").replace('order_only = ["gen/v.h"]\n', ""))
    assert "nothing to do" in project.run("build", "m.o").out
    project.write("VERSION", "v2\n")
    rebuilt = project.run("build", "m.o")
    assert rebuilt.rc == 0 and "gen gen/v.h" in rebuilt.out and "cc m.o" in rebuilt.out, rebuilt
    assert project.read("m.o") == "main\nv2\n"
