"""Run deg commands on a really full disk (a tmpfs filled to its last page), one at a time.

``python tests/full_disk.py SPEC.json`` inside a private mount namespace (``unshare -rm``, so no
root is needed and nothing leaks to the host): for each command, a fresh tmpfs gets a copy of
the prepared project, a filler file takes every free page, the command runs as its own
process, and the project is compared with what it was. Prints one JSON object a line:
``{"argv", "rc", "stderr", "changed", "leftovers"}``.

SPEC: ``{"project": DIR, "mount": DIR, "commands": [[arg, ...] or [[arg, ...], free_kb], ...]}``
(``free_kb``: room left before the disk is full); ``{P}`` in an argument is the project's
path on the full disk.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

FILLER = "filler.bin"
OWNER = ".deg.lock.owner"


def snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "/"
    return out


def fill(folder: Path, free_kb: int = 0) -> None:
    """Write zeros until the disk refuses, then give back ``free_kb``: the command meets
    ENOSPC on its first page past that."""
    chunk = b"\0" * 4096
    with open(folder / FILLER, "wb", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
        f.truncate(max(f.tell() - free_kb * 1024, 0))


def run_one(spec: dict, argv: list[str], free_kb: int) -> dict:
    mount = Path(spec["mount"])
    mount.mkdir(parents=True, exist_ok=True)
    files = [p for p in Path(spec["project"]).rglob("*") if p.is_file()]
    size = sum(p.stat().st_size + 4096 for p in files) + (16 << 20)  # room for the copy
    mount_tmpfs = ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)]
    subprocess.run(mount_tmpfs, check=True)
    try:
        project = mount / Path(spec["project"]).name
        shutil.copytree(spec["project"], project)
        fill(mount, free_kb)
        before = snapshot(project)
        args = [a.replace("{P}", str(project)) for a in argv]
        done = subprocess.run(
            [sys.executable, "-m", "deg_core.cli", *args], capture_output=True, text=True
        )
        after = snapshot(project)
        # the lock's note of its holder is rewritten by every command (and emptied by a full disk)
        keys = (before.keys() | after.keys()) - {OWNER}
        changed = sorted(k for k in keys if before.get(k) != after.get(k))
        leftovers = sorted(
            str(p.relative_to(mount))
            for p in mount.rglob("*")
            if p.name.endswith(".tmp") or p.name == ".deg_txn" or p.name.endswith(".partial")
        )
        return {
            "argv": argv,
            "rc": done.returncode,
            "stderr": done.stderr,
            "stdout": done.stdout,
            "changed": changed,
            "leftovers": leftovers,
        }
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    for command in spec["commands"]:
        argv, free_kb = command if isinstance(command[0], list) else (command, 0)
        print(json.dumps(run_one(spec, argv, free_kb)), flush=True)


if __name__ == "__main__":
    main()
