#!/usr/bin/env python3
"""The man page and the bash completion cover the binary's whole command line
(docs/operations.md "Installing").

The command tree comes from the binary itself: `cairn --help`, then `cairn CMD --help` for every
subcommand, recursively (CLI11's "Subcommands:" and "Options:" sections; hidden flags are not
listed there and need no documentation).
- packaging/cairn.1 has a `.SS` heading "cairn CMD" for every command and nested command, and
  names every flag of it in its section; `man` renders it without warnings.
- packaging/cairn.bash-completion, sourced in bash with the binary on PATH, completes every
  command from a prefix, nested commands, exactly the flags of each command, skips flag values
  while finding the command, and completes directories after --dir.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

PACKAGING = os.path.join(harness.REPO, "packaging")
MAN = os.path.join(PACKAGING, "cairn.1")
COMPLETION = os.path.join(PACKAGING, "cairn.bash-completion")
GLOBAL_FLAGS = {"--dir", "--json", "--help"}


def help_of(binary: str, path: tuple) -> tuple:
    """(subcommands, flags) that `cairn PATH --help` lists."""
    cp = subprocess.run([binary, *path, "--help"], capture_output=True, text=True, timeout=30,
                        env=dict(os.environ, LC_ALL="C"))
    assert cp.returncode == 0, (path, cp.returncode, cp.stderr)
    subs, flags, section = [], set(), None
    for line in cp.stdout.splitlines():
        if line.startswith("Subcommands:"):
            section = "subs"
        elif line.startswith("Options:"):
            section = "opts"
        elif line and not line[0].isspace():
            section = None
        elif section == "subs":
            m = re.match(r"  ([a-z][a-z0-9-]*)( |$)", line)
            if m:
                subs.append(m.group(1))
        elif section == "opts":
            m = re.match(r" +(?:-[a-zA-Z],)?(--[a-zA-Z0-9][a-zA-Z0-9-]*)", line)
            if m:
                flags.add(m.group(1))
    return subs, flags


def command_tree(binary: str) -> dict:
    """{path tuple: (subcommands, flags)} for the top level () and every (nested) command."""
    tree, todo = {}, [()]
    while todo:
        path = todo.pop()
        tree[path] = help_of(binary, path)
        todo.extend(path + (s,) for s in tree[path][0])
    return tree


class CliDocsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bin = harness.cairn_bin()
        cls.tree = command_tree(cls.bin)
        with open(MAN) as f:
            cls.man = f.read()

    def test_tree_is_what_we_think(self):
        # The parser above reads this CLI11's format: a regression would make the checks below
        # vacuous, so the tree must hold what docs/cli.md lists.
        top = self.tree[()][0]
        for cmd in ("init", "peer", "backup", "restore", "source", "key", "cluster", "version"):
            self.assertIn(cmd, top)
        self.assertIn("add", self.tree[("source",)][0])
        self.assertIn("--copies", self.tree[("backup",)][1])
        self.assertIn("--dir", self.tree[()][1])
        self.assertGreater(len(self.tree), 25)

    def man_section(self, path: tuple) -> str:
        """Text of the man page from the `.SS` of `cairn PATH` to the next heading."""
        name = " ".join(("cairn",) + path)
        m = re.search(r'^\.SS "?' + re.escape(name) + r'\b[^\n]*\n(.*?)(?=^\.S[HS] |\Z)',
                      self.man, re.M | re.S)
        self.assertIsNotNone(m, f"no .SS {name} in {MAN}")
        return m.group(1)

    def test_man_page_lists_every_command_and_flag(self):
        for path, (subs, flags) in sorted(self.tree.items()):
            if not path:
                for flag in flags - {"--help"}:
                    self.assertRegex(self.man, re.escape(flag.replace("-", r"\-")) + r"(?![a-zA-Z0-9]|\\-)",
                                     f"global {flag}")
                continue
            text = self.man_section(path)
            for flag in sorted(flags - GLOBAL_FLAGS):
                # The whole flag: "--read-data" is not found in "--read-data-subset".
                self.assertRegex(text, re.escape(flag.replace("-", r"\-")) + r"(?![a-zA-Z0-9]|\\-)",
                                 f"{' '.join(path)}: {flag} not in its man section")

    def test_man_page_renders_without_warnings(self):
        if shutil.which("man") is None:
            self.skipTest("no man")
        cp = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", MAN], capture_output=True,
                            text=True, timeout=60, env=dict(os.environ, MANWIDTH="80",
                                                           MAN_KEEP_FORMATTING="0"))
        self.assertEqual(cp.returncode, 0, cp.stderr)
        self.assertEqual(cp.stderr.strip(), "")
        self.assertIn("cairn backup", cp.stdout)

    def complete(self, *words) -> list:
        script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
                  '_cairn; printf "%s\\n" "${COMPREPLY[@]}"')
        env = dict(os.environ, PATH=os.path.dirname(self.bin) + ":" + os.environ["PATH"])
        cp = subprocess.run(["bash", "-c", script, "bash", COMPLETION, "cairn", *words],
                            capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(cp.returncode, 0, cp.stderr)
        return sorted(w for w in cp.stdout.split("\n") if w)

    def test_completion(self):
        top = self.tree[()][0]
        self.assertEqual(self.complete(""), sorted(top))
        for cmd in top:
            self.assertIn(cmd, self.complete(cmd[:2]))
        self.assertEqual(self.complete("ba"), ["backup"])
        for path, (subs, flags) in self.tree.items():
            if not path:
                continue
            if subs:
                self.assertEqual(self.complete(*path, ""), sorted(subs), path)
            self.assertEqual(self.complete(*path, "--"), sorted(flags | GLOBAL_FLAGS), path)
        # Flag values are skipped while finding the command.
        self.assertEqual(self.complete("--dir", "/tmp", "ba"), ["backup"])
        self.assertEqual(self.complete("backup", "--copies", "2", "--ta"), ["--tag"])
        self.assertEqual(self.complete("source", "--json", "add", "--sch"), ["--schedule"])
        # A directory after --dir.
        with tempfile.TemporaryDirectory(prefix="cairn-compl-") as tmp:
            os.mkdir(os.path.join(tmp, "peerdir"))
            open(os.path.join(tmp, "peerfile"), "w").close()
            self.assertEqual(self.complete("status", "--dir", os.path.join(tmp, "peer")),
                             [os.path.join(tmp, "peerdir")])


if __name__ == "__main__":
    unittest.main(verbosity=2)
