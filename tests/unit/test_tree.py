from __future__ import annotations

import os
from pathlib import Path

import pytest

from ivr.config import load_settings
from ivr.pbx import tree


def test_building_without_root_names_the_alternatives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(
        environ={"IVR_DATA_DIR": str(tmp_path), "IVR_PBX_TREE_DIR": str(tmp_path / "tree")}
    )
    monkeypatch.setattr(tree.os, "geteuid", lambda: 1000)
    with pytest.raises(tree.PbxError) as err:
        tree.build(settings, lambda line: None)
    message = str(err.value)
    assert "needs root" in message
    assert "sudo ivr pbx build" in message
    assert "IVR_PBX_ASTERISK_BINARY" in message
    assert not (tmp_path / "tree").exists()


def test_system_binary_must_exist(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "IVR_DATA_DIR": str(tmp_path),
            "IVR_PBX_ASTERISK_BINARY": str(tmp_path / "asterisk"),
        }
    )
    with pytest.raises(tree.PbxError, match="pbx.asterisk_binary: .* is not an executable"):
        tree.build(settings, lambda line: None)


def test_system_binary_is_used_as_is(tmp_path: Path) -> None:
    binary = tmp_path / "asterisk"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (tmp_path / "mods").mkdir()
    settings = load_settings(
        environ={
            "IVR_DATA_DIR": str(tmp_path),
            "IVR_PBX_ASTERISK_BINARY": str(binary),
            "IVR_PBX_MODULES_DIR": str(tmp_path / "mods"),
        }
    )
    install = tree.build(settings, lambda line: None)
    assert install.argv() == [str(binary)]
    assert install.modules_dir == tmp_path / "mods"


def test_absolute_links_become_relative_inside_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/share/snd/real").mkdir(parents=True)
    (root / "usr/share/snd/real/hello.wav").write_text("x")
    (root / "etc/alternatives").mkdir(parents=True)
    os.symlink("/usr/share/snd/real", root / "etc/alternatives/snd")
    os.symlink("/etc/alternatives/snd", root / "usr/share/snd/en")
    os.symlink("relative-stays", root / "usr/share/snd/rel")
    assert tree.relink_absolute_symlinks(root) == 2
    assert (root / "usr/share/snd/en/hello.wav").read_text() == "x"
    assert os.readlink(root / "usr/share/snd/rel") == "relative-stays"
    assert tree.relink_absolute_symlinks(root) == 0  # done once
