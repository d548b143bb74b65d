#!/usr/bin/env python3
"""Check docs/semantics.md against the engine's policy table.

Every system call named in `policy()` of flexsc/dispatch.rs must appear in
docs/semantics.md, in backquotes, in the section its policy belongs to
(Refuse: "## Refused: complete with `-ENOSYS`"; the others: "## Emulated"),
and every call named in the table of the Refused section must be refused
by `policy()`. Exits 1 with the differences, so the two cannot drift.
"""
import re
import sys
from pathlib import Path

top = Path(__file__).resolve().parent.parent
src = (top / "flexsc/dispatch.rs").read_text()
doc = (top / "docs/semantics.md").read_text()

# The `nr` module: CONST = __NR_name.
names = dict(re.findall(r"\b([A-Z_0-9]+) = __NR_([a-z_0-9]+)", src))
body = src[src.index("pub(crate) fn policy("):]
body = body[: body.index("\n}\n")]

# Match arms: `A | B | C [if guard] => Policy::X`.
want = {}
for arm, policy in re.findall(r"((?:[A-Z_0-9]+\s*\|?\s*)+)(?:if [^\n]*?)?=>\s*Policy::(\w+)", body):
    for const in re.findall(r"[A-Z_0-9]+", arm):
        if const in names:
            want.setdefault(names[const], set()).add("Refuse" if policy == "Refuse" else "Emulate")


def section(title):
    start = doc.index(title)
    end = doc.find("\n## ", start + 1)
    return doc[start : end if end >= 0 else len(doc)]


refused = set(re.findall(r"`([a-z_0-9]+)`", section("## Refused: complete with `-ENOSYS`")))
emulated = set(re.findall(r"`([a-z_0-9]+)`", section("## Emulated")))

errors = []
for call, kinds in sorted(want.items()):
    if "Refuse" in kinds and call not in refused:
        errors.append(f"{call}: refused by policy(), missing from the Refused table")
    if "Emulate" in kinds and call not in emulated:
        errors.append(f"{call}: emulated by policy(), missing from the Emulated table")
for call in sorted(refused):
    if call in names.values() and "Refuse" not in want.get(call, set()):
        errors.append(f"{call}: in the Refused table, but policy() does not refuse it")

if errors:
    print("docs/semantics.md and flexsc/dispatch.rs disagree:", file=sys.stderr)
    for e in errors:
        print("  " + e, file=sys.stderr)
    sys.exit(1)
print(f"ok: docs/semantics.md matches policy() ({len(want)} calls)")
