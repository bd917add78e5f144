"""Provision an Asterisk: a Debian sid root file system (debootstrap) or a system binary.

The tree is built once into the cache directory (outside the repository) and reused; a
second build takes milliseconds. Asterisk is later run *from* the tree without chroot,
through the tree's own dynamic loader, so running needs no root and leaves no mounts.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ivr.config import Settings

PACKAGES = (
    "asterisk",
    "asterisk-modules",
    "asterisk-core-sounds-en",
    "asterisk-core-sounds-en-wav",
)
READY_MARK = ".ivr-ready"
EXTERNAL_MODULES_DIR = "/usr/lib/asterisk/modules"  # pbx.external: the Asterisk image's path
RELINKED_MARK = ".ivr-relinked"


class PbxError(Exception):
    """A PBX operation failed; the message says what and what to do."""


@dataclass(frozen=True)
class AsteriskInstall:
    """Where the Asterisk binary, its modules and its sounds are, and how to run it."""

    binary: Path
    modules_dir: Path
    data_dir: Path  # astdatadir: sounds, keys, ...
    loader: Path | None = None  # the tree's ld-linux, when running from a tree
    library_path: str = ""

    def argv(self) -> list[str]:
        if self.loader is None:
            return [str(self.binary)]
        return [str(self.loader), "--library-path", self.library_path, str(self.binary)]

    @property
    def sounds_dir(self) -> Path:
        return self.data_dir / "sounds"


Log = Callable[[str], None]


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            mount_point = line.split()[4].replace("\\040", " ")
            if mount_point.startswith(prefix):
                found.append(mount_point)
    return sorted(found, key=len, reverse=True)


def unmount_all(root: Path) -> None:
    """Unmount everything below ``root`` (deepest first)."""
    if not root.exists():
        return
    for mount_point in _mounts_under(root):
        subprocess.run(["umount", "-l", mount_point], check=False, capture_output=True)
    left = _mounts_under(root)
    if left:
        raise PbxError(f"could not unmount {', '.join(left)}; unmount them by hand")


def _safe_rmtree(root: Path) -> None:
    unmount_all(root)
    shutil.rmtree(root, ignore_errors=True)


def _run(argv: list[str], log: Log, what: str, env: dict[str, str] | None = None) -> None:
    log(f"$ {' '.join(argv)}")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise PbxError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def relink_absolute_symlinks(tree: Path) -> int:
    """Make the tree's absolute symlinks relative, so they resolve inside the tree.

    Asterisk runs from the tree without chroot: a link such as ``sounds/en ->
    /etc/alternatives/asterisk-prompt-en`` must point into the tree, not the host.
    """
    mark = tree / RELINKED_MARK
    if mark.exists():
        return 0
    changed = 0
    for dirpath, dirnames, filenames in os.walk(tree):
        dirnames[:] = [d for d in dirnames if d not in ("proc", "sys", "dev")]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            if not path.is_symlink():
                continue
            target = os.readlink(path)
            if not target.startswith("/"):
                continue
            relative = os.path.relpath(str(tree) + target, dirpath)
            path.unlink()
            path.symlink_to(relative)
            changed += 1
    mark.write_text(f"{changed} links made relative\n")
    return changed


def find_install(settings: Settings) -> AsteriskInstall | None:
    """The Asterisk to run, or None when nothing is built or configured yet."""
    pbx = settings.pbx
    if pbx.external:  # paths on the external Asterisk's side (docker/asterisk.Dockerfile)
        return AsteriskInstall(
            binary=Path("/usr/sbin/asterisk"),
            modules_dir=Path(pbx.modules_dir or EXTERNAL_MODULES_DIR),
            data_dir=Path("/usr/share/asterisk"),
        )
    if pbx.asterisk_binary:
        binary = Path(pbx.asterisk_binary)
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            raise PbxError(f"pbx.asterisk_binary: {binary} is not an executable file")
        if pbx.modules_dir:
            modules = Path(pbx.modules_dir)
        else:
            guesses = glob.glob("/usr/lib/*/asterisk/modules") + ["/usr/lib/asterisk/modules"]
            modules = next((Path(g) for g in guesses if Path(g).is_dir()), Path(guesses[-1]))
        if not modules.is_dir():
            raise PbxError(
                f"pbx.modules_dir: {modules} does not exist; set it to the directory of "
                "Asterisk's modules (res_pjsip.so)"
            )
        return AsteriskInstall(
            binary=binary, modules_dir=modules, data_dir=Path("/usr/share/asterisk")
        )
    tree = settings.tree_dir
    if not (tree / READY_MARK).exists():
        return None
    loaders = sorted(glob.glob(str(tree / "usr/lib/*/ld-linux*.so.*")))
    if not loaders:
        raise PbxError(f"{tree}: no dynamic loader found; rebuild with `ivr pbx build --force`")
    loader = Path(loaders[0])
    triplet_dir = loader.parent
    modules = triplet_dir / "asterisk" / "modules"
    if not modules.is_dir():
        modules = tree / "usr/lib/asterisk/modules"
    lib_dirs = [triplet_dir, tree / "usr/lib", triplet_dir / "asterisk"]
    return AsteriskInstall(
        binary=tree / "usr/sbin/asterisk",
        modules_dir=modules,
        data_dir=tree / "usr/share/asterisk",
        loader=loader,
        library_path=":".join(str(d) for d in lib_dirs if d.is_dir()),
    )


def build(settings: Settings, log: Log, *, force: bool = False) -> AsteriskInstall:
    """Provision Asterisk (idempotent). Returns how to run it."""
    if settings.pbx.asterisk_binary:
        install = find_install(settings)
        assert install is not None
        log(f"using the system Asterisk {install.binary} (pbx.asterisk_binary)")
        return install
    tree = settings.tree_dir
    with _lock(tree.with_name(tree.name + ".lock")):
        if force and tree.exists():
            log(f"removing the cached tree {tree}")
            _safe_rmtree(tree)
        cached = find_install(settings)
        if cached is not None:
            relink_absolute_symlinks(tree)
            log(f"Asterisk tree is cached at {tree}")
            return cached
        _build_tree(settings, tree, log)
        install = find_install(settings)
        if install is None:  # pragma: no cover - _build_tree writes the mark
            raise PbxError(f"{tree}: the build left no usable tree")
        return install


def _build_tree(settings: Settings, tree: Path, log: Log) -> None:
    if os.geteuid() != 0:
        raise PbxError(
            "building the Asterisk tree needs root (debootstrap and chroot). Either run "
            "`sudo ivr pbx build` once (the tree is cached for everyone using "
            f"{settings.cache_dir}), or install an asterisk package and set "
            "IVR_PBX_ASTERISK_BINARY=/usr/sbin/asterisk (pbx.asterisk_binary), or set "
            "pbx.tree_dir to a tree built elsewhere."
        )
    debootstrap = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if debootstrap is None:
        raise PbxError("debootstrap is not installed: run `apt-get install debootstrap`")
    work = tree.with_name(tree.name + ".building")
    _safe_rmtree(work)
    work.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LC_ALL": "C",
        "HOME": "/root",
    }
    pbx = settings.pbx
    log(f"debootstrap {pbx.suite} into {work} from {pbx.mirror} (about half a minute)")
    _run(
        [debootstrap, "--variant=minbase", pbx.suite, str(work), pbx.mirror],
        log,
        "debootstrap",
        env,
    )
    policy = work / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    resolv = work / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    if Path("/etc/resolv.conf").exists():
        shutil.copyfile("/etc/resolv.conf", resolv)
    proc_dir = work / "proc"
    proc_dir.mkdir(exist_ok=True)
    _run(["mount", "-t", "proc", "proc", str(proc_dir)], log, "mount proc")
    try:
        chroot = ["chroot", str(work)]
        _run(
            chroot + ["apt-get", "-o", "Acquire::Check-Valid-Until=false", "update"],
            log,
            "apt-get update in the tree",
            env,
        )
        _run(
            chroot + ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES],
            log,
            "apt-get install asterisk in the tree (sid moves daily: if asterisk is "
            "uninstallable today, keep or restore a cached tree)",
            env,
        )
        _run(chroot + ["apt-get", "clean"], log, "apt-get clean", env)
    finally:
        unmount_all(work)
    version = subprocess.run(
        ["chroot", str(work), "dpkg-query", "-W", "-f=${Version}", "asterisk"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    relink_absolute_symlinks(work)
    (work / READY_MARK).write_text(f"asterisk {version}\nbuilt {time.ctime()}\n")
    if tree.exists():
        _safe_rmtree(tree)
    work.rename(tree)
    log(f"built Asterisk {version} in {time.monotonic() - started:.0f} s at {tree}")
